"""Notification channels against a real HTTP server on 127.0.0.1 that records requests; Slack and
log escaping of producer text; the https rule for notifier URLs."""

from __future__ import annotations

import asyncio
import functools
import logging

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.notifiers import (
    DeliveryError,
    LogNotifier,
    configured_channels,
    http_channels,
    slack_escape,
    slack_message,
)
from brandmon.contracts.alerts import Alert
from brandmon.redaction import log_safe
from tests.alerts.recorder import Recorder, dead_url
from tests.alerts.streams import Run, traffic

ROUTING_KEY = "PDKEY-s3cr3t-0123456789abcdef"
LOCAL = {"log_notifier": False, "allow_insecure_http": True}


@functools.cache
def incident() -> tuple[Alert, Alert]:
    """A real trigger and resolve from the engine."""
    run = Run()
    run.feed(traffic(range(60), 100, 0.15))
    run.feed(traffic(range(60, 70), 200, 0.6))
    run.feed(traffic(range(70, 90), 100, 0.15))
    trigger, resolve = run.alerts
    return trigger, resolve


def hostile(alert: Alert, brand: str) -> Alert:
    """`alert` as if a producer had chosen the brand (the summary and key quote it)."""
    return alert.model_copy(
        update={
            "brand": brand,
            "summary": alert.summary.replace(alert.brand, brand),
            "dedup_key": alert.dedup_key.replace(alert.brand, brand),
            "sample_post_ids": ["<!here>", "a&b"],
        }
    )


async def _send_all(settings: AlertSettings, alerts: list[Alert]) -> dict[str, list[str]]:
    """Send each alert once on every HTTP channel: channel -> error reasons."""
    errors: dict[str, list[str]] = {}
    async with httpx.AsyncClient(timeout=settings.notifier_timeout_seconds) as client:
        for notifier in http_channels(settings, lambda: client):
            errors[notifier.channel] = []
            for alert in alerts:
                try:
                    await notifier.send(alert)
                except DeliveryError as err:
                    errors[notifier.channel].append(f"{err.reason} retryable={err.retryable}")
    return errors


def send_all(settings: AlertSettings, alerts: list[Alert]) -> dict[str, list[str]]:
    return asyncio.run(_send_all(settings, alerts))


def test_pagerduty_events_v2_payload() -> None:
    trigger, resolve = incident()
    with Recorder() as rec:
        settings = AlertSettings(
            pagerduty_url=rec.url("/v2/enqueue"),
            pagerduty_routing_key=SecretStr(ROUTING_KEY),
            pagerduty_source="brandmon-test",
            **LOCAL,
        )
        assert send_all(settings, [trigger, resolve]) == {"pagerduty": []}
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


def test_slack_and_webhook_bodies() -> None:
    trigger, _ = incident()
    with Recorder() as rec:
        settings = AlertSettings(
            slack_webhook_url=SecretStr(rec.url("/slack")),
            webhook_url=SecretStr(rec.url("/hook")),
            **LOCAL,
        )
        assert send_all(settings, [trigger]) == {"slack": [], "webhook": []}
    bodies = {r.path: r.body for r in rec.requests}
    assert bodies["/hook"] == trigger.model_dump(mode="json")
    assert Alert.model_validate(bodies["/hook"]) == trigger
    assert trigger.summary in bodies["/slack"]["text"]
    assert bodies["/slack"]["blocks"][0]["type"] == "section"


def test_failures_say_whether_a_retry_may_help() -> None:
    trigger, _ = incident()
    with Recorder(statuses=[500, 503, 429, 400, 404]) as rec:
        settings = AlertSettings(webhook_url=SecretStr(rec.url("/hook")), **LOCAL)
        errors = send_all(settings, [trigger] * 6)
    assert errors["webhook"] == [
        "HTTP 500 retryable=True",
        "HTTP 503 retryable=True",
        "HTTP 429 retryable=True",
        "HTTP 400 retryable=False",
        "HTTP 404 retryable=False",
    ]
    assert len(rec.requests) == 6  # the sixth was accepted (202)


def test_transport_errors_are_retryable_and_name_no_url() -> None:
    trigger, _ = incident()
    url = dead_url("/hook/WEBHOOKs3cr3tABC")
    settings = AlertSettings(webhook_url=SecretStr(url), **LOCAL)
    (error,) = send_all(settings, [trigger])["webhook"]
    assert error == "transport error (ConnectError) retryable=True"


def test_configured_channels_include_the_log_unless_disabled() -> None:
    hook = {"webhook_url": SecretStr("https://hooks.example.com/x/y/z")}
    client = httpx.AsyncClient()
    try:
        assert [n.channel for n in configured_channels(AlertSettings(**hook), lambda: client)] == [
            "webhook",
            "log",
        ]
        off = AlertSettings(**hook, log_notifier=False)
        assert [n.channel for n in configured_channels(off, lambda: client)] == ["webhook"]
    finally:
        asyncio.run(client.aclose())


# --- producer text: Slack and the log ------------------------------------------------------


def test_slack_escape_is_slacks_three_characters() -> None:
    assert slack_escape("<!channel> & <@U123> <https://x|y>") == (
        "&lt;!channel&gt; &amp; &lt;@U123&gt; &lt;https://x|y&gt;"
    )
    assert slack_escape("Nestlé *bold* _it_") == "Nestlé *bold* _it_"


def test_slack_message_cannot_ping_a_channel() -> None:
    trigger, _ = incident()
    alert = hostile(trigger, "<!channel> Acme & <@U0LEAD>")
    message = slack_message(alert)
    texts = [message["text"], message["blocks"][0]["text"]["text"]]
    texts += [f["text"] for f in message["blocks"][1]["fields"]]
    texts += [e["text"] for e in message["blocks"][2]["elements"]]
    joined = "\n".join(texts)
    for raw in ("<!channel>", "<@U0LEAD>", "<!here>", " & ", "a&b"):
        assert raw not in joined
    assert "&lt;!channel&gt; Acme &amp; &lt;@U0LEAD&gt;" in message["text"]
    assert "*Brand*\n&lt;!channel&gt; Acme &amp; &lt;@U0LEAD&gt;" in joined
    assert "Samples: &lt;!here&gt;, a&amp;b" in joined


def test_log_safe_escapes_what_could_forge_or_hide_a_line() -> None:
    assert log_safe("acme\n2026-01-01 ERROR forged") == "acme\\n2026-01-01 ERROR forged"
    assert log_safe("a\r\tb\x1b[31mred\x00") == "a\\r\\tb\\x1b[31mred\\x00"
    assert log_safe("x\u2028y\u2029z\x85") == "x\\u2028y\\u2029z\\x85"
    assert log_safe("evil\u202egnp.exe\u200b") == "evil\\u202egnp.exe\\u200b"
    assert log_safe("back\\slash") == "back\\\\slash"
    assert log_safe("Nestlé 🍫 東京 <b>") == "Nestlé 🍫 東京 <b>"


def test_log_notifier_keeps_each_alert_on_one_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    trigger, _ = incident()
    alert = hostile(trigger, "acme\n2026-01-05 00:00:00 INFO brandmon: all clear\r\x1b[2K")
    asyncio.run(LogNotifier().send(alert))
    (record,) = caplog.records
    message = record.getMessage()
    assert "\n" not in message and "\r" not in message and "\x1b" not in message
    assert "acme\\n2026-01-05 00:00:00 INFO brandmon: all clear\\r\\x1b[2K" in message
    assert len(caplog.text.splitlines()) == 1


# --- https only ----------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["pagerduty_url", "slack_webhook_url", "webhook_url"])
def test_notifier_urls_must_be_https(field: str) -> None:
    url = "http://hooks.example.com/services/T0SECRET/B0SECRET/abcdefgh"
    with pytest.raises(ValidationError) as err:
        AlertSettings(**{field: url})
    (error,) = err.value.errors()
    assert error["loc"] == (field,)
    text = error["msg"]  # what load_settings prints (it never prints the input)
    assert f"{field} must be an https:// URL" in text
    assert "BRANDMON_ALERTS__ALLOW_INSECURE_HTTP" in text
    assert "T0SECRET" not in text and "abcdefgh" not in text
    allowed = AlertSettings(**{field: url, "allow_insecure_http": True})
    value = getattr(allowed, field)
    assert (value.get_secret_value() if isinstance(value, SecretStr) else value) == url
    assert getattr(AlertSettings(**{field: url.replace("http:", "https:")}), field)


@pytest.mark.parametrize(
    "url", ["hooks.example.com/x", "ftp://hooks.example.com/x", "https:///x", "", "not a url"]
)
def test_notifier_urls_must_be_absolute(url: str) -> None:
    with pytest.raises(ValidationError, match="not an absolute http"):
        AlertSettings(webhook_url=url, allow_insecure_http=True)


def test_default_pagerduty_url_is_https() -> None:
    assert AlertSettings().pagerduty_url.startswith("https://")
