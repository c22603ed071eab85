"""A worker process running only the alert agent (for the Kafka integration test).

python -m tests.alerts.alert_worker     # configured by BRANDMON_* variables
"""

from __future__ import annotations

import faust

from alerts.agent import register_alert_agent
from alerts.hub import NotifierHub
from brandmon.kafka_io import check_broker, ensure_topics
from brandmon.metrics import Metrics
from brandmon.settings import Settings
from stream.app import create_app


def main() -> None:
    settings = Settings()
    metrics = Metrics()
    check_broker(settings)
    ensure_topics(
        settings,
        [settings.topic_scored, settings.topic_alerts, settings.topic_brand_sentiment],
    )
    app = create_app(settings)
    hub = NotifierHub.from_settings(settings.alerts, metrics)
    register_alert_agent(app, settings, metrics, hub)
    faust.Worker(app, loglevel="info", override_logging=True).execute_from_commandline()


if __name__ == "__main__":
    main()
