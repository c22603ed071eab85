"""The notifier dispatcher on the real broker.

- A webhook that answers 503 for 90 s: alerts written before and during the outage, across a
  SIGTERM and restart of the alert worker in the middle of it, are each accepted exactly once.
- An alert older than the max age, and a record that is not an alert, go to the alerts
  dead-letter topic with their reason and are counted.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.dispatch import NotifierDispatcher
from brandmon.contracts.alerts import Alert
from brandmon.kafka_io import JsonProducer, ensure_topics
from brandmon.metrics import Metrics
from brandmon.settings import Settings
from brandmon.web import measure_lag
from tests.alerts.recorder import Recorder
from tests.alerts.test_notifiers import incident
from tests.helpers import WorkerProcess, read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

OUTAGE_SECONDS = 90.0
#: The secret part of the webhook URL: no 8 characters of it may reach a log or a page.
SECRET_PATH = "/hook/WEBHOOKs3cr3tPATHtoken42"


class OutageServer:
    """A webhook receiver that accepts (202) until begin_outage(), then answers 503 for
    `seconds`, then accepts again; it records the status it gave each alert_id."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.down_from: float | None = None
        self.answers: list[tuple[str, int, float]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = 503 if server.down() else 202
                server.answers.append((body["alert_id"], status, time.monotonic()))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def down(self) -> bool:
        start = self.down_from
        return start is not None and time.monotonic() < start + self.seconds

    def begin_outage(self) -> None:
        self.down_from = time.monotonic()

    def url(self, path: str) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def accepted(self) -> Counter[str]:
        return Counter(alert_id for alert_id, status, _ in self.answers if status == 202)

    def refused(self) -> int:
        return sum(1 for _, status, _ in self.answers if status == 503)

    def __enter__(self) -> OutageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()


def alerts(prefix: str, count: int) -> list[Alert]:
    trigger, _ = incident()
    return [
        trigger.model_copy(
            update={
                "alert_id": f"{prefix}-{i}",
                "brand": f"brand{i}",
                "dedup_key": f"brandmon/brand{i}/{prefix}",
            }
        )
        for i in range(count)
    ]


def produce(settings: Settings, batch: list[Alert]) -> None:
    producer = JsonProducer(settings)
    for alert in batch:
        producer.send(settings.topic_alerts, alert.model_dump_json().encode(), key=alert.brand)
    producer.flush()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def pieces(secret: str) -> set[str]:
    return {secret[i : i + 8] for i in range(len(secret) - 7)}


def assert_no_piece(text: str, secret: str, where: str) -> None:
    leaked = sorted(p for p in pieces(secret) if p in text)
    assert not leaked, f"{where} shows pieces of the secret: {leaked}"


def test_pages_survive_a_90_second_outage_and_a_restart(
    test_settings: Settings, alert_worker_factory: Callable[..., WorkerProcess]
) -> None:
    settings = test_settings
    ensure_topics(settings, [settings.topic_alerts])
    with OutageServer(OUTAGE_SECONDS) as hook:
        env = {
            "BRANDMON_ALERTS__WEBHOOK_URL": hook.url(SECRET_PATH),
            "BRANDMON_ALERTS__ALLOW_INSECURE_HTTP": "true",
            "BRANDMON_ALERTS__NOTIFIER_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
            "BRANDMON_ALERTS__NOTIFIER_BACKOFF_INITIAL_SECONDS": "0.2",
            "BRANDMON_ALERTS__NOTIFIER_BACKOFF_MAX_SECONDS": "3",
            "BRANDMON_TOPIC_ALERTS_DLQ": f"{settings.topic_alerts}.dlq",
            "BRANDMON_LOG_LEVEL": "INFO",
        }
        before, during = alerts("before", 3), alerts("during", 12)
        everything = {a.alert_id for a in before + during}

        # the channel works: the first alerts are delivered and their offsets committed
        produce(settings, before)
        first = alert_worker_factory(**env)
        first.wait_ready()
        wait_until(lambda: len(hook.accepted()) == 3, 60, "the alerts before the outage")

        # 503 from now on for 90 s; the worker is stopped (SIGTERM) and started again within it
        hook.begin_outage()
        produce(settings, during[:5])
        wait_until(lambda: hook.refused() >= 3, 30, "the webhook to refuse a few attempts")
        assert first.terminate(timeout=60) == 0, first.log()[-3000:]
        produce(settings, during[5:9])
        second = alert_worker_factory(**env)
        second.wait_ready()
        produce(settings, during[9:])
        assert hook.down(), "the restart took longer than the outage: nothing was tested"

        def all_accepted() -> bool:
            assert second.alive(), second.log()[-3000:]
            return set(hook.accepted()) == everything

        wait_until(all_accepted, OUTAGE_SECONDS + 90, "every alert to be accepted")
        time.sleep(3)  # anything sent twice would arrive now

        accepted = hook.accepted()
        assert set(accepted) == everything
        assert [n for n in accepted.values() if n != 1] == [], accepted  # exactly once each
        assert hook.refused() >= 10
        assert hook.down_from is not None
        up_at = hook.down_from + OUTAGE_SECONDS
        assert all(
            at >= up_at
            for alert_id, status, at in hook.answers
            if status == 202 and not alert_id.startswith("before")
        )

        # every channel done with every record: the group's position is at the end
        wait_until(
            lambda: (
                set(measure_lag(settings, settings.notifier_group, settings.topic_alerts).values())
                == {0}
            ),
            20,
            "the notifier group's committed offsets to reach the end of the alerts topic",
        )
        assert second.metric("brandmon_notifier_delivered_total", channel="webhook") == 12
        assert second.metric("brandmon_notifier_failures_total", channel="webhook")
        assert not second.metric(
            "brandmon_notifier_dead_letters_total", channel="webhook", reason="expired"
        )

        # the URL's secret part is in no log line, metric or health page
        pages = [httpx.get(second.url(p), timeout=5).text for p in ("/metrics", "/ready")]
        logs = first.log() + second.log()
        assert "HTTP Request: POST" in logs  # httpx did log each request, masked
        secret = SECRET_PATH.removeprefix("/hook/")
        for where, text in (("the logs", logs), ("/metrics", pages[0]), ("/ready", pages[1])):
            assert_no_piece(text, secret, where)
        assert json.loads(pages[1])["ready"] is True


def test_stale_and_unreadable_alerts_are_dead_lettered(test_settings: Settings) -> None:
    trigger, _ = incident()
    stale = trigger.model_copy(update={"alert_id": "stale-1"})
    fresh = trigger.model_copy(update={"alert_id": "fresh-1"})
    dlq = f"{test_settings.topic_alerts}.dlq"
    ensure_topics(test_settings, [test_settings.topic_alerts, dlq])

    producer = Producer(test_settings.confluent_config())
    now_ms = int(time.time() * 1000)
    topic = test_settings.topic_alerts
    producer.produce(topic, stale.model_dump_json(), key="acme", timestamp=now_ms - 7_200_000)
    producer.produce(topic, b"{not an alert", key="acme")
    producer.produce(topic, fresh.model_dump_json(), key="acme")
    assert producer.flush(30) == 0

    metrics = Metrics(CollectorRegistry())
    with Recorder() as hook:
        settings = test_settings.model_copy(
            update={
                "topic_alerts_dlq": dlq,
                "alerts": AlertSettings(
                    webhook_url=SecretStr(hook.url("/hook")),
                    allow_insecure_http=True,
                    log_notifier=False,
                    notifier_max_age_seconds=3600,
                ),
            }
        )
        dispatcher = NotifierDispatcher(settings, metrics)

        async def scenario() -> tuple[bool, str]:
            task = asyncio.create_task(dispatcher.run())
            deadline = time.monotonic() + 60
            while not hook.requests and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            health = dispatcher.healthy()
            await asyncio.sleep(1.5)  # a commit or two
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return health

        ok, detail = asyncio.run(scenario())

    assert ok, detail
    assert "delivering to webhook" in detail
    assert dispatcher.healthy() == (False, "notifier dispatcher stopped")
    assert [r.body["alert_id"] for r in hook.requests] == ["fresh-1"]

    letters = [
        json.loads(r.value or b"") for r in read_topic(settings, dlq, expected=2, timeout=30)
    ]
    by_reason = {letter["reason"]: letter for letter in letters}
    assert set(by_reason) == {"expired", "unreadable"}
    expired = by_reason["expired"]
    assert (expired["channel"], expired["alert_id"], expired["attempts"]) == (
        "webhook",
        "stale-1",
        0,
    )
    assert Alert.model_validate(expired["alert"]) == stale
    assert expired["source"]["topic"] == topic
    unreadable = by_reason["unreadable"]
    assert (unreadable["channel"], unreadable["value"]) == ("all", "{not an alert")

    def sample(name: str, **labels: str) -> float:
        return metrics.registry.get_sample_value(name, labels) or 0.0

    assert sample("brandmon_notifier_dead_letters_total", channel="webhook", reason="expired") == 1
    assert sample("brandmon_notifier_dead_letters_total", channel="all", reason="unreadable") == 1
    assert sample("brandmon_notifier_delivered_total", channel="webhook") == 1
    lag = measure_lag(settings, settings.notifier_group, topic)
    assert set(lag.values()) == {0}, lag  # all three finished, committed on the way out
