"""`brandmon alerts ...`: test the notification channels, run the scenario benchmark.

Only typer is imported at module level; the commands import what they need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from brandmon.alert_settings import AlertSettings
    from brandmon.alerts.notifiers import Notifier
    from brandmon.contracts.alerts import Alert

alerts_app = typer.Typer(
    help="Spike alerts: run the aggregator, test the notifiers, run the scenario benchmark.",
    no_args_is_help=True,
)

CHANNEL_VARIABLES = (
    "BRANDMON_ALERTS__PAGERDUTY_ROUTING_KEY",
    "BRANDMON_ALERTS__SLACK_WEBHOOK_URL",
    "BRANDMON_ALERTS__WEBHOOK_URL",
)


def register(app: typer.Typer) -> None:
    """Add the `alerts` sub-command group to the brandmon app."""
    app.add_typer(alerts_app, name="alerts")


@alerts_app.command("worker")
def worker() -> None:
    """Run the alert aggregator: posts.scored -> alerts, brand.sentiment, notifiers.

    A separate process from `brandmon worker`, in its own consumer group
    (BRANDMON_ALERTS_APP_ID), serving /metrics on BRANDMON_ALERTS_WEB_PORT (6067).
    """
    import logging

    from brandmon.alerts.worker import run_alert_worker
    from brandmon.kafka_io import BrokerUnreachableError
    from brandmon.settings import load_settings

    settings = load_settings()  # exits 2 on invalid settings; masks secrets in every log line
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        run_alert_worker(settings)
    except BrokerUnreachableError as exc:
        typer.secho(f"brandmon alerts worker cannot start: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc


def _alert_settings() -> AlertSettings:
    """The alert settings; exits 2 naming the variable (never a secret) when invalid."""
    from brandmon.settings import load_settings

    return load_settings().alerts


@alerts_app.command("test-notify")
def test_notify() -> None:
    """Send a test alert (an info trigger, then its resolve) to every configured channel.

    Prints ok/FAILED per channel; exits 1 when one fails, 2 when none is configured.
    """
    import asyncio

    settings = _alert_settings()
    results = asyncio.run(_test_channels(settings))
    if not results:
        typer.secho(
            "no notification channel configured: set one of " + ", ".join(CHANNEL_VARIABLES),
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    for channel, error in results.items():
        if error is None:
            typer.echo(f"{channel}: ok")
        else:
            typer.secho(f"{channel}: FAILED ({error})", fg="red")
    if any(error is not None for error in results.values()):
        raise typer.Exit(1)


async def _test_channels(settings: AlertSettings) -> dict[str, str | None]:
    """Each HTTP channel's error text, or None when it accepted both test alerts. Error texts
    name a status or an error type, never the URL or key (the log is masked by
    load_settings)."""
    import httpx

    from brandmon.alerts.notifiers import http_channels

    async with httpx.AsyncClient(timeout=settings.notifier_timeout_seconds) as client:
        channels = http_channels(settings, lambda: client)
        return {n.channel: await _try_channel(n, settings) for n in channels}


async def _try_channel(notifier: Notifier, settings: AlertSettings) -> str | None:
    """Send a test trigger and resolve (two attempts each); the error text, or None."""
    import asyncio

    from brandmon.alerts.notifiers import DeliveryError

    for alert in _test_alerts():
        for attempt in (1, 2):
            try:
                await notifier.send(alert)
                break
            except DeliveryError as err:
                if not err.retryable or attempt == 2:
                    return f"{alert.action}: {err.reason}"
                await asyncio.sleep(min(1.0, settings.notifier_backoff_initial_seconds))
    return None


def _test_alerts() -> list[Alert]:
    """A test trigger and its resolve, stamped with the wall clock (this is not the detector)."""
    from datetime import UTC, datetime

    from brandmon.contracts.alerts import Alert, WindowCounts

    now = datetime.now(UTC).replace(microsecond=0)
    key = f"brandmon/test-notify/{now:%Y%m%dT%H%M%SZ}"
    counts = WindowCounts(
        posts=0,
        negatives=0,
        voices=0,
        negative_voices=0,
        share=None,
        distinct_authors=0,
        duplicate_texts=0,
    )
    alerts = []
    for action in ("trigger", "resolve"):
        alerts.append(
            Alert(
                alert_id=Alert.make_id(key, action, "info", now),
                dedup_key=key,
                brand="brandmon-test",
                action=action,
                severity="info",
                rule="test",
                summary=f"[TEST] brandmon test-notify {action}: ignore, nothing is wrong.",
                incident_start=now,
                evaluated_at=now,
                window_start=now,
                window_end=now,
                counts=counts,
                baseline_share=None,
                baseline_std=None,
                baseline_voices=None,
                z=None,
                wilson_lower=None,
                threshold=0.0,
                sample_post_ids=[],
                model_id="none",
                model_version="none",
            )
        )
    return alerts


@alerts_app.command("scenarios")
def scenarios(
    seed: Annotated[int, typer.Option(help="Seed of the synthetic streams.")] = 1,
    scale: Annotated[float, typer.Option(help="Multiply every volume by this.")] = 1.0,
    scenario: Annotated[
        list[str] | None, typer.Option(help="Run only this scenario (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full JSON report.")] = False,
    check: Annotated[bool, typer.Option(help="Exit 1 when a scenario misses a target.")] = False,
) -> None:
    """Run the detector on seeded synthetic scenarios; report precision, recall, detect and
    resolve times (in buckets) against the targets."""
    import json

    from brandmon.tools.scenarios import SCENARIOS, run_scenarios

    unknown = [name for name in scenario or [] if name not in SCENARIOS]
    if unknown:
        typer.secho(f"unknown scenario(s) {unknown}; known: {list(SCENARIOS)}", fg="red", err=True)
        raise typer.Exit(2)
    report = run_scenarios(
        seed=seed, scale=scale, settings=_alert_settings(), names=scenario or None
    )
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        for r in report["scenarios"]:
            typer.echo(
                f"{r['scenario']:<12} {r['kind']:<6} {'pass' if r['pass'] else 'FAIL':<5}"
                f" incidents={r['alerts_fired']['incidents']} precision={r['precision']}"
                f" recall={r['recall']} detect={r['time_to_detect_buckets']}"
                f" resolve={r['time_to_resolve_buckets']} late={r['late_events']}"
            )
        typer.echo(f"all targets met: {report['all_pass']}")
    if check and not report["all_pass"]:
        raise typer.Exit(1)
