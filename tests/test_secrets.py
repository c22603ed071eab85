"""No secret value, or any 8-character piece of one, in CLI errors, logs, /metrics or health.

Three secrets, each through every output that could show it: a SASL password, a PagerDuty
routing key and a webhook URL (whose secret part is its path: the scheme and host of a
webhook are public, see brandmon.redaction).
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import ValidationError
from typer.testing import CliRunner

import brandmon.redaction as redaction
from brandmon.alerts.dispatch import (
    ChannelWorker,
    DeadLetter,
    InFlight,
    NotifierDispatcher,
    RetryPolicy,
)
from brandmon.alerts.notifiers import configured_channels
from brandmon.cli import app
from brandmon.metrics import Metrics
from brandmon.redaction import Redactor, secret_material
from brandmon.settings import Settings, load_settings
from tests.alerts.recorder import Recorder, dead_url
from tests.alerts.test_notifiers import incident

SASL_PASSWORD = "SASLpw-7f3a9c2e1b8d4f60"
ROUTING_KEY = "R0UTINGkey-e93b1c7a5d2f4086"
WEBHOOK_PATH = "/services/T0SECRET1/B0SECRET2/WEBHOOKtoken93a7c1e5"
SLACK_PATH = "/services/T1SLACK01/B1SLACK02/SLACKtoken55d0e7f3"

runner = CliRunner()


def pieces(secret: str) -> set[str]:
    return {secret[i : i + 8] for i in range(len(secret) - 7)}


def assert_clean(text: str, *secrets: str) -> None:
    for secret in secrets:
        leaked = sorted(p for p in pieces(secret) if p in text)
        assert not leaked, f"pieces of a secret shown: {leaked}\n{text}"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No BRANDMON_* from outside; undo the process-wide log masking load_settings installs."""
    import os

    for name in list(os.environ):
        if name.startswith("BRANDMON_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(redaction, "_active", [])
    yield


# --- CLI errors --------------------------------------------------------------------------


CASES = {
    "sasl password": (
        {"BRANDMON_SASL_PASSWORD": SASL_PASSWORD, "BRANDMON_SASL_USERNAME": "brandmon"},
        SASL_PASSWORD,
        "BRANDMON_SASL_PASSWORD",
    ),
    # a check across the alerts group: its input is the whole group, routing key included
    "routing key": (
        {"BRANDMON_ALERTS__PAGERDUTY_ROUTING_KEY": ROUTING_KEY, "BRANDMON_ALERTS__Z_CRITICAL": "1"},
        ROUTING_KEY,
        "BRANDMON_ALERTS__*: z_critical must be >= z_warning",
    ),
    "webhook url": (
        {"BRANDMON_ALERTS__WEBHOOK_URL": "http://hooks.example.com" + WEBHOOK_PATH},
        WEBHOOK_PATH,
        "BRANDMON_ALERTS__WEBHOOK_URL: webhook_url must be an https:// URL",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize(
    "command", [["alerts", "test-notify"], ["alerts", "scenarios"], ["consume", "posts"]]
)
def test_invalid_settings_name_the_variable_and_no_secret(case: str, command: list[str]) -> None:
    env, secret, expected = CASES[case]
    result = runner.invoke(app, command, env=env)
    assert result.exit_code == 2, result.output
    assert "invalid settings" in result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert_clean(result.output, secret)


def test_invalid_settings_of_the_alert_worker_process() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "BRANDMON_ALERTS__SLACK_WEBHOOK_URL": "http://hooks.slack.com" + SLACK_PATH,
        "BRANDMON_ALERTS__PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "BRANDMON_SASL_PASSWORD": SASL_PASSWORD,
        "BRANDMON_SECURITY_PROTOCOL": "SASL_SSL",
        "BRANDMON_TOPIC_PARTITIONS": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "brandmon.cli", "alerts", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "BRANDMON_TOPIC_PARTITIONS" in done.stderr
    assert "BRANDMON_ALERTS__SLACK_WEBHOOK_URL" in done.stderr
    assert_clean(done.stdout + done.stderr, SLACK_PATH, ROUTING_KEY, SASL_PASSWORD)


def test_pydantics_own_error_text_hides_the_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRANDMON_SASL_PASSWORD", SASL_PASSWORD)
    monkeypatch.setenv("BRANDMON_ALERTS__PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
    monkeypatch.setenv("BRANDMON_ALERTS__Z_CRITICAL", "1")
    with pytest.raises(ValidationError) as err:
        Settings()
    assert_clean(str(err.value) + repr(err.value), SASL_PASSWORD, ROUTING_KEY)


# --- logs --------------------------------------------------------------------------------


def test_a_failing_notifier_logs_no_secret(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    trigger, _ = incident()
    with Recorder(default_status=503) as pagerduty, Recorder(default_status=400) as slack:
        for name, value in {
            "BRANDMON_SECURITY_PROTOCOL": "SASL_SSL",
            "BRANDMON_SASL_MECHANISM": "PLAIN",
            "BRANDMON_SASL_PASSWORD": SASL_PASSWORD,
            "BRANDMON_ALERTS__ALLOW_INSECURE_HTTP": "true",
            "BRANDMON_ALERTS__PAGERDUTY_URL": pagerduty.url("/v2/enqueue"),
            "BRANDMON_ALERTS__PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
            "BRANDMON_ALERTS__SLACK_WEBHOOK_URL": slack.url(SLACK_PATH),
            "BRANDMON_ALERTS__WEBHOOK_URL": dead_url(WEBHOOK_PATH),
        }.items():
            monkeypatch.setenv(name, value)
        settings = load_settings()  # as every command does: masks the secrets in all logs
        metrics = Metrics(CollectorRegistry())
        letters: list[DeadLetter] = []

        async def keep(letter: DeadLetter) -> None:
            letters.append(letter)

        async def scenario() -> None:
            async with httpx.AsyncClient() as client:
                policy = RetryPolicy(initial=0.01, maximum=0.02, max_age=0.2)
                for notifier in configured_channels(settings.alerts, lambda: client):
                    item = InFlight("alerts", 0, 1, time.time(), None, None, trigger)
                    worker = ChannelWorker(notifier, policy, metrics, keep)
                    assert await worker.handle(item)
                # an error whose own text quotes the URL, logged with its traceback
                response = await client.post(
                    settings.alerts.slack_webhook_url.get_secret_value(),  # type: ignore[union-attr]
                    json={},
                )
                try:
                    response.raise_for_status()
                except httpx.HTTPStatusError:
                    logging.getLogger("brandmon.test").exception("slack said no")
            # a library that logs its connection settings
            logging.getLogger("aiokafka").error("sasl config %r", settings.confluent_config())

        asyncio.run(scenario())

    assert {(letter.channel, letter.reason) for letter in letters} == {
        ("pagerduty", "expired"),
        ("slack", "rejected"),
        ("webhook", "expired"),
    }
    text = caplog.text
    assert "HTTP Request: POST" in text  # httpx logged every request (masked)
    assert "Client error '400 Bad Request' for url" in text  # and the error with its URL
    assert "transport error (ConnectError)" in text
    assert_clean(text, SASL_PASSWORD, ROUTING_KEY, WEBHOOK_PATH, SLACK_PATH)
    # /metrics and the dispatcher's health and dead letters
    page = generate_latest(metrics.registry).decode()
    assert "brandmon_notifier_dead_letters_total" in page
    health = NotifierDispatcher(settings, metrics).healthy()[1]
    dead = b"".join(letter.to_json() for letter in letters).decode()
    assert_clean(page + health + dead, SASL_PASSWORD, ROUTING_KEY, WEBHOOK_PATH, SLACK_PATH)


def test_test_notify_output_shows_no_secret() -> None:
    with Recorder(default_status=500) as pagerduty, Recorder(default_status=403) as slack:
        env = {
            "BRANDMON_ALERTS__ALLOW_INSECURE_HTTP": "true",
            "BRANDMON_ALERTS__NOTIFIER_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
            "BRANDMON_ALERTS__PAGERDUTY_URL": pagerduty.url("/v2/enqueue"),
            "BRANDMON_ALERTS__PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
            "BRANDMON_ALERTS__SLACK_WEBHOOK_URL": slack.url(SLACK_PATH),
            "BRANDMON_ALERTS__WEBHOOK_URL": dead_url(WEBHOOK_PATH),
        }
        result = runner.invoke(app, ["alerts", "test-notify"], env=env)
    assert result.exit_code == 1, result.output
    assert "pagerduty: FAILED (trigger: HTTP 500)" in result.output
    assert "slack: FAILED (trigger: HTTP 403)" in result.output
    assert "webhook: FAILED (trigger: transport error (ConnectError))" in result.output
    assert_clean(result.output, ROUTING_KEY, WEBHOOK_PATH, SLACK_PATH)


# --- the redactor itself -----------------------------------------------------------------


def test_every_piece_of_eight_is_masked() -> None:
    redact = Redactor([ROUTING_KEY, "short"])
    assert redact(f"key={ROUTING_KEY}!") == "key=***!"
    assert redact(f"cut {ROUTING_KEY[3:14]} and {ROUTING_KEY[-9:]}") == "cut *** and ***"
    assert redact("a short one") == "a *** one"
    assert redact("R0UTINGk") == "***" and redact("R0UTING") == "R0UTING"
    assert not Redactor([]) and Redactor([])("anything") == "anything"


def test_a_urls_secret_is_what_follows_the_host() -> None:
    url = "https://hooks.slack.com" + SLACK_PATH
    assert secret_material(url) == SLACK_PATH
    assert secret_material("https://user:pa55w0rd99@hook.example.com/x?token=abc") == (
        "pa55w0rd99 /x?token=abc"
    )
    assert secret_material("https://tok3n-in-host.example.com/") == (
        "https://tok3n-in-host.example.com/"
    )
    redact = Redactor([url])
    assert redact(f"POST {url} 503") == "POST https://hooks.slack.com*** 503"
