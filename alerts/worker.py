"""`brandmon alerts worker`: the alert aggregator as its own Faust app and process.

It consumes posts.scored in its own consumer group (BRANDMON_ALERTS_APP_ID), keeps per-brand
state in a changelog-backed table, writes alerts and brand.sentiment, and serves /metrics,
/live and /ready on BRANDMON_ALERTS_WEB_PORT. In the same process the notifier dispatcher
(alerts/dispatch.py) delivers the `alerts` topic to the channels from its own consumer group
(BRANDMON_NOTIFIER_GROUP_ID, default <alerts app id>-notify); /ready includes its health.
It is separate from the score worker so the two scale apart and a table's recovery never
touches the score agent's offsets.
"""

from __future__ import annotations

import faulthandler
import logging

import faust

from brandmon.alerts.agent import register_alert_agent
from brandmon.alerts.dispatch import NotifierDispatcher
from brandmon.faust_app import create_app
from brandmon.kafka_io import check_broker, ensure_topics
from brandmon.metrics import Metrics
from brandmon.settings import Settings
from brandmon.web import Health, add_health

log = logging.getLogger(__name__)


def build_alert_app(settings: Settings) -> tuple[faust.App, Metrics]:
    """Check the broker, declare the topics, and wire the alert agent and pages."""
    metrics = Metrics()
    check_broker(settings)
    ensure_topics(
        settings,
        [
            settings.topic_scored,
            settings.topic_scored_dlq,
            settings.topic_alerts,
            settings.topic_brand_sentiment,
            settings.topic_alerts_dlq,
        ],
    )
    app = create_app(
        settings,
        app_id=settings.alerts_app_id,
        web_port=settings.alerts_web_port,
        datadir=str(settings.data_dir / "alerts"),
    )
    agent = register_alert_agent(app, settings, metrics)
    # notifications run off the agent's path: a Faust task, cancelled (and drained) on SIGTERM
    dispatcher = NotifierDispatcher(settings, metrics)
    app.task(dispatcher.run)
    health = Health(
        app,
        settings,
        metrics,
        group=settings.alerts_app_id,
        topic=settings.topic_scored,
        agents=[agent.progress],
        # the score worker's lag is the one the rules and dashboard read; this stage's own
        # backlog shows as brandmon_agent_stalled{agent="alerts"}
        publish_lag=False,
        checks=[dispatcher.healthy],
        about={"channels": ",".join(dispatcher.channels)},
    )
    add_health(health)
    return app, metrics


def run_alert_worker(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT; raises before starting when no broker answers."""
    app, _ = build_alert_app(settings)
    log.info(
        "alert worker %s on %s, buckets of %d s",
        settings.alerts_app_id,
        settings.bootstrap_servers,
        settings.alerts.bucket_seconds,
    )
    # a crash in native code (librdkafka, ONNX Runtime) leaves the Python stacks in the log
    # instead of a silent exit
    faulthandler.enable()
    faust.Worker(
        app, loglevel=settings.log_level.lower(), override_logging=True
    ).execute_from_commandline()
