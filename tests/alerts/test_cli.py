"""`brandmon alerts test-notify` and `brandmon alerts scenarios`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from brandmon.alerts.cli import CHANNEL_VARIABLES
from tests.alerts.harness import alerts_app
from tests.alerts.recorder import Recorder

runner = CliRunner()
#: The Recorder serves plain http on 127.0.0.1, a loopback address: both allowed here.
LOCAL = {
    "BRANDMON_ALERTS__ALLOW_INSECURE_HTTP": "true",
    "BRANDMON_ALERTS__NOTIFIER_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
}


@pytest.fixture(autouse=True)
def no_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CHANNEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def no_lasting_log_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    """load_settings() masks secrets in the process's logs for good; undo it after each test."""
    import brandmon.redaction as redaction

    monkeypatch.setattr(redaction, "_active", [])


def test_test_notify_without_channels_says_what_to_set() -> None:
    result = runner.invoke(alerts_app(), ["alerts", "test-notify"])
    assert result.exit_code == 2
    assert "BRANDMON_ALERTS__PAGERDUTY_ROUTING_KEY" in result.output
    assert "BRANDMON_ALERTS__WEBHOOK_URL" in result.output


def test_test_notify_reports_each_channel() -> None:
    with Recorder() as ok, Recorder(default_status=400) as bad:
        env = {
            **LOCAL,
            "BRANDMON_ALERTS__WEBHOOK_URL": ok.url("/hook"),
            "BRANDMON_ALERTS__PAGERDUTY_URL": bad.url("/v2/enqueue"),
            "BRANDMON_ALERTS__PAGERDUTY_ROUTING_KEY": "rk-secret-123",
        }
        result = runner.invoke(alerts_app(), ["alerts", "test-notify"], env=env)
    assert result.exit_code == 1, result.output
    assert "webhook: ok" in result.output
    assert "pagerduty: FAILED (trigger: HTTP 400)" in result.output
    assert "rk-secret-123" not in result.output
    assert [r.body["action"] for r in ok.requests] == ["trigger", "resolve"]
    assert {r.body["severity"] for r in ok.requests} == {"info"}
    assert ok.requests[0].body["dedup_key"] == ok.requests[1].body["dedup_key"]


def test_test_notify_all_ok_exits_zero() -> None:
    with Recorder() as rec:
        env = {**LOCAL, "BRANDMON_ALERTS__SLACK_WEBHOOK_URL": rec.url("/services/x")}
        result = runner.invoke(alerts_app(), ["alerts", "test-notify"], env=env)
    assert result.exit_code == 0, result.output
    assert "slack: ok" in result.output
    assert len(rec.requests) == 2


def test_test_notify_refuses_plain_http_without_the_setting() -> None:
    env = {"BRANDMON_ALERTS__WEBHOOK_URL": "http://hooks.example.com/hook/WEBHOOKs3cr3tABC"}
    result = runner.invoke(alerts_app(), ["alerts", "test-notify"], env=env)
    assert result.exit_code == 2
    assert "BRANDMON_ALERTS__WEBHOOK_URL: webhook_url must be an https:// URL" in result.output
    assert "BRANDMON_ALERTS__ALLOW_INSECURE_HTTP=true" in result.output
    assert "s3cr3t" not in result.output and "Traceback" not in result.output


def test_test_notify_refuses_a_loopback_url_without_the_setting() -> None:
    with Recorder() as rec:
        env = {
            "BRANDMON_ALERTS__ALLOW_INSECURE_HTTP": "true",
            "BRANDMON_ALERTS__WEBHOOK_URL": rec.url("/hook/WEBHOOKs3cr3tABC"),
        }
        result = runner.invoke(alerts_app(), ["alerts", "test-notify"], env=env)
    assert result.exit_code == 2, result.output
    assert "BRANDMON_ALERTS__WEBHOOK_URL: its host 127.0.0.1 is a loopback address" in (
        result.output
    )
    assert "BRANDMON_ALERTS__NOTIFIER_ALLOWED_NETWORKS" in result.output
    assert "s3cr3t" not in result.output
    assert rec.requests == []


def test_test_notify_refuses_a_metadata_address_even_in_an_allowed_network() -> None:
    env = {
        "BRANDMON_ALERTS__SLACK_WEBHOOK_URL": "https://169.254.169.254/latest/meta-data",
        "BRANDMON_ALERTS__NOTIFIER_ALLOWED_NETWORKS": '["169.254.0.0/16"]',
    }
    result = runner.invoke(alerts_app(), ["alerts", "test-notify"], env=env)
    assert result.exit_code == 2, result.output
    assert "BRANDMON_ALERTS__SLACK_WEBHOOK_URL: its host 169.254.169.254 is a cloud metadata" in (
        result.output
    )


def test_scenarios_prints_json() -> None:
    result = runner.invoke(
        alerts_app(), ["alerts", "scenarios", "--scenario", "gap", "--json", "--check"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["all_pass"] is True
    assert [r["scenario"] for r in report["scenarios"]] == ["gap"]


def test_scenarios_rejects_unknown_names() -> None:
    result = runner.invoke(alerts_app(), ["alerts", "scenarios", "--scenario", "nope"])
    assert result.exit_code == 2
