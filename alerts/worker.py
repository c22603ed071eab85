"""`brandmon alerts worker`: the alert aggregator as its own Faust app and process.

It consumes posts.scored in its own consumer group (BRANDMON_ALERTS_APP_ID), keeps per-brand
state in a changelog-backed table, writes alerts and brand.sentiment, and serves /metrics,
/live and /ready on BRANDMON_ALERTS_WEB_PORT. It is separate from the score worker so the two
scale apart and a table's recovery never touches the score agent's offsets.
"""

from __future__ import annotations

import logging

import faust

from alerts.agent import register_alert_agent
from alerts.hub import NotifierHub
from brandmon.kafka_io import check_broker, ensure_topics
from brandmon.metrics import Metrics
from brandmon.settings import Settings
from brandmon.web import add_pages
from stream.app import create_app

log = logging.getLogger(__name__)


def build_alert_app(settings: Settings) -> tuple[faust.App, Metrics]:
    """Check the broker, declare the topics, and wire the alert agent and pages."""
    metrics = Metrics()
    check_broker(settings)
    ensure_topics(
        settings,
        [settings.topic_scored, settings.topic_alerts, settings.topic_brand_sentiment],
    )
    app = create_app(
        settings,
        app_id=settings.alerts_app_id,
        web_port=settings.alerts_web_port,
        datadir=str(settings.data_dir / "alerts"),
    )
    hub = NotifierHub.from_settings(settings.alerts, metrics)
    register_alert_agent(app, settings, metrics, hub)
    add_pages(app, metrics, {"channels": ",".join(hub.channels)})
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
    faust.Worker(
        app, loglevel=settings.log_level.lower(), override_logging=True
    ).execute_from_commandline()
