"""Routing by severity: each channel gets the alert events that reach its minimum
(BRANDMON_ALERTS__<CHANNEL>_MIN_SEVERITY), so info never pages by default; an escalation opens
the incident where it reaches the minimum; a resolve goes only where its incident was sent,
judged from the resolve alone (its severity is the incident's highest), so a restarted
dispatcher routes it the same way. `brandmon alerts test-notify` ignores routing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from typer.testing import CliRunner

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.buckets import Window
from brandmon.alerts.cli import CHANNEL_VARIABLES
from brandmon.alerts.detector import Verdict
from brandmon.alerts.dispatch import NotifierDispatcher, Routing
from brandmon.alerts.lifecycle import Evaluation, Kind, Lifecycle
from brandmon.alerts.state import Incident
from brandmon.alerts.stats import EwStat
from brandmon.contracts.alerts import Action, Alert, Rule, Severity, WindowCounts
from brandmon.metrics import Metrics
from brandmon.settings import Settings
from tests.alerts.harness import alerts_app
from tests.alerts.recorder import Recorder
from tests.alerts.test_dispatch import T0, FakeChannel
from tests.alerts.test_notifiers import incident

KEY = "brandmon/acme/20260105T010000Z"


def event(action: Action, severity: Severity, key: str = KEY) -> Alert:
    """An alert event of the incident `key` (copied from a real trigger or resolve)."""
    trigger, resolve = incident()
    base = trigger if action == "trigger" else resolve
    return base.model_copy(
        update={"severity": severity, "dedup_key": key, "alert_id": f"{key}|{action}|{severity}"}
    )


@dataclass
class Sent:
    channels: dict[str, FakeChannel]
    metrics: Metrics
    #: What the dispatcher may commit once the channels are done: partition -> offset.
    committable: dict[int, int]

    def to(self, channel: str) -> list[str]:
        """(action severity) of each alert event `channel` was sent, in order."""
        return [
            alert_id.split("|", 1)[1].replace("|", " ") for alert_id in self.channels[channel].sent
        ]

    def skipped(self, channel: str) -> float:
        labels = {"channel": channel, "reason": "below_min_severity"}
        value = self.metrics.registry.get_sample_value("brandmon_notifier_skipped_total", labels)
        return value or 0.0


def dispatch(alerts: list[Alert], **settings: object) -> Sent:
    """Run `alerts` through a fresh dispatcher (its fan-out and channel workers, as read from
    partition 0 of the alerts topic) to fake PagerDuty, Slack and webhook channels."""
    config = Settings(alerts=AlertSettings.model_validate({"log_notifier": False, **settings}))
    metrics = Metrics(CollectorRegistry())
    dispatcher = NotifierDispatcher(config, metrics, clock=lambda: T0)
    channels = {name: FakeChannel(name) for name in ("pagerduty", "slack", "webhook")}
    dispatcher.notifiers = list(channels.values())

    async def scenario() -> dict[int, int]:
        dispatcher._workers = dispatcher._new_workers()
        tasks = [asyncio.create_task(worker.run()) for worker in dispatcher._workers]
        for offset, alert in enumerate(alerts):
            record = SimpleNamespace(
                topic="alerts",
                partition=0,
                offset=offset,
                timestamp=int(T0 * 1000),
                key=alert.brand.encode(),
                value=alert.model_dump_json().encode(),
            )
            await dispatcher._take(record)
        for _ in range(50):
            await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return dispatcher.positions.ready()

    committable = asyncio.run(scenario())
    return Sent(channels, metrics, committable)


# --- triggers ------------------------------------------------------------------------------


def test_an_info_trigger_goes_to_slack_but_not_to_pagerduty() -> None:
    sent = dispatch([event("trigger", "info")])
    assert sent.to("pagerduty") == []
    assert sent.to("slack") == sent.to("webhook") == ["trigger info"]
    assert sent.skipped("pagerduty") == 1
    assert sent.skipped("slack") == sent.skipped("webhook") == 0
    assert sent.committable == {0: 1}  # nothing waits for the channel that skipped it


def test_a_warning_trigger_goes_to_pagerduty_and_slack() -> None:
    sent = dispatch([event("trigger", "warning")])
    assert sent.to("pagerduty") == sent.to("slack") == ["trigger warning"]
    assert sent.skipped("pagerduty") == 0


def test_pagerduty_min_severity_critical_keeps_warnings_off_pagerduty() -> None:
    other = "brandmon/initech/20260105T010000Z"
    sent = dispatch(
        [
            event("trigger", "warning"),
            event("trigger", "critical", other),
            event("resolve", "warning"),
            event("resolve", "critical", other),
        ],
        pagerduty_min_severity="critical",
    )
    assert sent.to("pagerduty") == ["trigger critical", "resolve critical"]
    assert len(sent.to("slack")) == 4
    assert sent.skipped("pagerduty") == 2
    assert sent.committable == {0: 4}


def test_a_channel_can_be_kept_to_pages_only() -> None:
    sent = dispatch(
        [event("trigger", "info"), event("trigger", "warning"), event("trigger", "critical")],
        slack_min_severity="warning",
        webhook_min_severity="critical",
    )
    assert sent.to("slack") == ["trigger warning", "trigger critical"]
    assert sent.to("webhook") == ["trigger critical"]
    assert sent.to("pagerduty") == ["trigger warning", "trigger critical"]
    assert (sent.skipped("slack"), sent.skipped("webhook")) == (1, 2)


# --- incidents: escalation and resolve ------------------------------------------------------


def test_an_info_incident_escalated_to_critical_reaches_pagerduty_at_the_escalation() -> None:
    sent = dispatch(
        [event("trigger", "info"), event("trigger", "critical"), event("resolve", "critical")]
    )
    assert sent.to("pagerduty") == ["trigger critical", "resolve critical"]  # same dedup_key
    assert sent.channels["pagerduty"].sent[0].startswith(KEY + "|")
    assert sent.to("slack") == ["trigger info", "trigger critical", "resolve critical"]
    assert sent.skipped("pagerduty") == 1


def test_the_resolve_of_an_info_only_incident_does_not_reach_pagerduty() -> None:
    sent = dispatch([event("trigger", "info"), event("resolve", "info")])
    assert sent.to("pagerduty") == []
    assert sent.to("slack") == ["trigger info", "resolve info"]
    assert sent.skipped("pagerduty") == 2
    assert sent.committable == {0: 2}


def test_a_resolve_is_routed_without_remembering_its_trigger() -> None:
    # After a restart the dispatcher may read the resolve without the trigger (committed
    # before the restart): the resolve alone says where its incident went.
    assert dispatch([event("resolve", "warning")]).to("pagerduty") == ["resolve warning"]
    assert dispatch([event("resolve", "info")]).to("pagerduty") == []


@pytest.mark.parametrize(
    ("severities", "resolved_as"),
    [
        (["info"], "info"),
        (["warning"], "warning"),
        (["critical"], "critical"),
        (["info", "critical"], "critical"),
        (["info", "warning"], "warning"),
        (["warning", "critical"], "critical"),
    ],
)
@pytest.mark.parametrize("kind", ["share", "surge"])
def test_a_resolve_carries_the_incidents_highest_severity(
    severities: list[Severity], resolved_as: Severity, kind: Kind
) -> None:
    # What routing resolves by: the lifecycle gives a resolve its incident's peak severity.
    settings = AlertSettings()
    lifecycle = Lifecycle(settings, kind)
    bucket = settings.bucket_seconds
    open_incident: Incident | None = None
    emitted: list[Alert] = []
    quiet: list[Severity | None] = [None] * (settings.quiet_seconds // bucket + 2)
    for minute, severity in enumerate([*severities, *quiet]):
        open_incident, alerts = lifecycle.step(open_incident, evaluation(minute, severity))
        emitted += alerts
    assert open_incident is None
    assert [(a.action, a.severity) for a in emitted] == [
        *(("trigger", s) for s in severities),
        ("resolve", resolved_as),
    ]
    assert len({a.dedup_key for a in emitted}) == 1


def evaluation(minute: int, severity: Severity | None) -> Evaluation:
    counts = WindowCounts(
        posts=100,
        negatives=40,
        voices=100,
        negative_voices=40,
        share=0.4,
        distinct_authors=100,
        duplicate_texts=0,
    )
    rule: Rule = "baseline"
    verdict = Verdict(Window(minute, minute, counts, ()), severity, rule, 4.0, 0.3, 0.2)
    return Evaluation(
        brand="acme",
        bucket_start=minute * 60.0,
        bucket_end=(minute + 1) * 60.0,
        verdict=verdict,
        elevated=severity is not None,
        share=EwStat(0.1, 0.001, 30),
        volume=EwStat(100, 10, 30),
        warm=True,
        model_id="m",
        model_version="1",
        expected_voices=40.0,
        expected_negatives=5.0,
    )


# --- settings -------------------------------------------------------------------------------


def test_the_defaults_keep_info_off_pagerduty_only() -> None:
    routing = Routing.from_settings(AlertSettings())
    assert {c: routing.min_severity(c) for c in ("pagerduty", "slack", "webhook", "log")} == {
        "pagerduty": "warning",
        "slack": "info",
        "webhook": "info",
        "log": "info",
    }
    assert routing.describe("pagerduty") == "pagerduty (warning and up)"
    assert routing.describe("slack") == "slack"


def test_the_minimums_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRANDMON_ALERTS__PAGERDUTY_MIN_SEVERITY", "critical")
    monkeypatch.setenv("BRANDMON_ALERTS__SLACK_MIN_SEVERITY", "warning")
    monkeypatch.setenv("BRANDMON_ALERTS__WEBHOOK_MIN_SEVERITY", "warning")
    monkeypatch.setenv("BRANDMON_ALERTS__LOG_MIN_SEVERITY", "critical")
    alerts = Settings().alerts
    assert alerts.pagerduty_min_severity == "critical"
    assert alerts.slack_min_severity == alerts.webhook_min_severity == "warning"
    assert alerts.log_min_severity == "critical"


@pytest.mark.parametrize("value", ["page", "Warning", "CRITICAL", "error", "", 2])
@pytest.mark.parametrize(
    "field",
    ["pagerduty_min_severity", "slack_min_severity", "webhook_min_severity", "log_min_severity"],
)
def test_an_unknown_severity_is_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as err:
        AlertSettings.model_validate({field: value})
    (error,) = err.value.errors()
    assert error["loc"] == (field,)
    assert f"{field} must be info, warning or critical" in error["msg"]


runner = CliRunner()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import brandmon.redaction as redaction

    for name in CHANNEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(redaction, "_active", [])  # load_settings() masks logs for good


@pytest.mark.usefixtures("cli_env")
def test_an_invalid_minimum_stops_the_command_naming_the_variable() -> None:
    env = {"BRANDMON_ALERTS__PAGERDUTY_MIN_SEVERITY": "page"}
    result = runner.invoke(alerts_app(), ["alerts", "test-notify"], env=env)
    assert result.exit_code == 2
    assert (
        "BRANDMON_ALERTS__PAGERDUTY_MIN_SEVERITY: pagerduty_min_severity must be info, warning "
        "or critical" in result.output
    )
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("cli_env")
def test_test_notify_tries_every_channel_whatever_its_minimum() -> None:
    # A connectivity test: the routing key is checked even where info never pages.
    with Recorder() as pagerduty:
        env = {
            "BRANDMON_ALERTS__ALLOW_INSECURE_HTTP": "true",
            "BRANDMON_ALERTS__NOTIFIER_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
            "BRANDMON_ALERTS__PAGERDUTY_URL": pagerduty.url("/v2/enqueue"),
            "BRANDMON_ALERTS__PAGERDUTY_ROUTING_KEY": "rk-test",
            "BRANDMON_ALERTS__PAGERDUTY_MIN_SEVERITY": "critical",
        }
        result = runner.invoke(alerts_app(), ["alerts", "test-notify"], env=env)
    assert result.exit_code == 0, result.output
    assert "pagerduty: ok" in result.output
    assert [r.body["event_action"] for r in pagerduty.requests] == ["trigger", "resolve"]
