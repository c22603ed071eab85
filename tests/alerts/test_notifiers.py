"""Notifiers and NotifierHub against a real HTTP server on 127.0.0.1 that records requests."""

from __future__ import annotations

import asyncio
import functools
import logging
import time

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from alerts.config import AlertSettings
from alerts.hub import NotifierHub
from alerts.schema import Alert
from brandmon.metrics import Metrics
from tests.alerts.recorder import Recorder, dead_url
from tests.alerts.streams import Run, traffic

ROUTING_KEY = "PDKEY-s3cr3t-0123456789abcdef"
FAST = {
    "log_notifier": False,
    "notifier_backoff_initial_seconds": 0.01,
    "notifier_backoff_max_seconds": 0.05,
    "notifier_drain_seconds": 5.0,
}


@functools.cache
def incident() -> tuple[Alert, Alert]:
    """A real trigger and resolve from the engine."""
    run = Run()
    run.feed(traffic(range(60), 100, 0.15))
    run.feed(traffic(range(60, 70), 200, 0.6))
    run.feed(traffic(range(70, 90), 100, 0.15))
    trigger, resolve = run.alerts
    return trigger, resolve


def count(metrics: Metrics, name: str, channel: str) -> float:
    value = metrics.registry.get_sample_value(name, {"channel": channel})
    return value or 0.0


async def _deliver(settings: AlertSettings, alerts: list[Alert], expect: int, rec: Recorder | None):
    metrics = Metrics(CollectorRegistry())
    async with NotifierHub.from_settings(settings, metrics) as hub:
        for alert in alerts:
            hub.publish(alert)
        deadline = time.monotonic() + 10
        while rec is not None and len(rec.requests) < expect and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    return metrics


def test_pagerduty_events_v2_payload() -> None:
    trigger, resolve = incident()
    with Recorder() as rec:
        settings = AlertSettings(
            pagerduty_url=rec.url("/v2/enqueue"),
            pagerduty_routing_key=SecretStr(ROUTING_KEY),
            pagerduty_source="brandmon-test",
            **FAST,
        )
        metrics = asyncio.run(_deliver(settings, [trigger, resolve], 2, rec))
    first, second = rec.requests
    assert first.path == "/v2/enqueue"
    assert first.headers["Content-Type"] == "application/json"
    body = first.body
    assert body["routing_key"] == ROUTING_KEY
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == trigger.dedup_key
    payload = body["payload"]
    assert payload["summary"] == trigger.summary
    assert payload["source"] == "brandmon-test"
    assert payload["severity"] == "critical"
    assert payload["custom_details"]["counts"]["voices"] == trigger.counts.voices
    assert payload["custom_details"]["sample_post_ids"] == trigger.sample_post_ids
    assert second.body["event_action"] == "resolve"
    assert second.body["dedup_key"] == trigger.dedup_key
    assert count(metrics, "brandmon_notifier_failures_total", "pagerduty") == 0


def test_slack_and_webhook_bodies() -> None:
    trigger, _ = incident()
    with Recorder() as rec:
        settings = AlertSettings(
            slack_webhook_url=SecretStr(rec.url("/slack")),
            webhook_url=SecretStr(rec.url("/hook")),
            **FAST,
        )
        asyncio.run(_deliver(settings, [trigger], 2, rec))
    bodies = {r.path: r.body for r in rec.requests}
    assert bodies["/hook"] == trigger.model_dump(mode="json")
    assert Alert.model_validate(bodies["/hook"]) == trigger
    assert trigger.summary in bodies["/slack"]["text"]
    assert bodies["/slack"]["blocks"][0]["type"] == "section"


def test_server_errors_are_retried_until_success() -> None:
    trigger, _ = incident()
    with Recorder(statuses=[500, 503]) as rec:
        settings = AlertSettings(webhook_url=SecretStr(rec.url("/hook")), **FAST)
        metrics = asyncio.run(_deliver(settings, [trigger], 3, rec))
    assert len(rec.requests) == 3
    assert {r.body["alert_id"] for r in rec.requests} == {trigger.alert_id}
    assert count(metrics, "brandmon_notifier_failures_total", "webhook") == 2
    assert count(metrics, "brandmon_notifier_dropped_total", "webhook") == 0


def test_client_errors_are_not_retried() -> None:
    trigger, _ = incident()
    with Recorder(statuses=[400]) as rec:
        settings = AlertSettings(webhook_url=SecretStr(rec.url("/hook")), **FAST)
        metrics = asyncio.run(_deliver(settings, [trigger], 1, rec))
        time.sleep(0.1)
    assert len(rec.requests) == 1
    assert count(metrics, "brandmon_notifier_dropped_total", "webhook") == 1


def test_dead_endpoint_is_counted_and_never_blocks_publish() -> None:
    trigger, _ = incident()
    settings = AlertSettings(
        webhook_url=SecretStr(dead_url()), notifier_queue_size=5, notifier_max_attempts=2, **FAST
    )

    async def scenario() -> tuple[Metrics, float]:
        metrics = Metrics(CollectorRegistry())
        async with NotifierHub.from_settings(settings, metrics) as hub:
            started = time.perf_counter()
            for _ in range(200):
                hub.publish(trigger)
            elapsed = time.perf_counter() - started
        return metrics, elapsed

    metrics, elapsed = asyncio.run(scenario())
    assert elapsed < 0.5  # 200 publishes to a dead endpoint: no waiting (a few ms)
    assert count(metrics, "brandmon_notifier_dropped_total", "webhook") == 200
    assert count(metrics, "brandmon_notifier_failures_total", "webhook") == 10  # 5 x 2 attempts


def test_publish_before_start_is_an_error() -> None:
    trigger, _ = incident()
    hub = NotifierHub.from_settings(AlertSettings(), Metrics(CollectorRegistry()))
    with pytest.raises(RuntimeError, match="start"):
        hub.publish(trigger)


def test_secrets_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    trigger, _ = incident()
    slack_secret = "T0000/B0000/SLACKs3cr3tXYZ"
    hook_secret = "WEBHOOKs3cr3tABC"
    with Recorder(statuses=[500]) as rec:
        settings = AlertSettings(
            pagerduty_url=rec.url("/v2/enqueue"),
            pagerduty_routing_key=SecretStr(ROUTING_KEY),
            slack_webhook_url=SecretStr(rec.url(f"/services/{slack_secret}")),
            webhook_url=SecretStr(dead_url(f"/hook/{hook_secret}")),
            notifier_max_attempts=2,
            **{**FAST, "log_notifier": True},
        )
        asyncio.run(_deliver(settings, [trigger], 3, rec))
    assert len(rec.requests) == 3  # pagerduty 500 then 202, slack 202
    messages = [r.getMessage() for r in caplog.records]
    assert any(r.name == "httpx" for r in caplog.records)  # httpx did log the requests
    assert any("webhook" in m and "failed" in m for m in messages)
    for secret in (ROUTING_KEY, slack_secret, hook_secret):
        assert secret not in caplog.text
        assert not any(secret in m for m in messages)
    assert ROUTING_KEY not in repr(settings) and slack_secret not in str(settings)


def test_hub_can_be_stopped_and_started_again() -> None:
    trigger, resolve = incident()
    with Recorder() as rec:
        settings = AlertSettings(webhook_url=SecretStr(rec.url("/hook")), **FAST)
        metrics = Metrics(CollectorRegistry())
        hub = NotifierHub.from_settings(settings, metrics)

        async def twice() -> None:
            for alert in (trigger, resolve):
                async with hub:
                    hub.publish(alert)

        asyncio.run(twice())
    assert [r.body["action"] for r in rec.requests] == ["trigger", "resolve"]
