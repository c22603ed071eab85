"""`brandmon alerts ...`: test the notification channels, run the scenario benchmark, backtest;
and `brandmon top`, the live terminal view of every brand and its open incidents.

Only typer and the standard library are imported at module level; the commands import what
they need.
"""

from __future__ import annotations

import json
from pathlib import Path
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
    app.command("top")(top)


@alerts_app.command("worker")
def worker() -> None:
    """Run the alert aggregator: posts.scored -> alerts, brand.sentiment, notifiers.

    A separate process from `brandmon worker`, in its own consumer group
    (BRANDMON_ALERTS_APP_ID), serving /metrics on BRANDMON_ALERTS_WEB_PORT (6067).
    """
    import logging

    from brandmon.alerts.overrides import OverridesError, load_overrides
    from brandmon.alerts.worker import run_alert_worker
    from brandmon.kafka_io import BrokerUnreachableError
    from brandmon.settings import load_settings

    settings = load_settings()  # exits 2 on invalid settings; masks secrets in every log line
    try:
        load_overrides(settings.alerts)  # before the broker: a bad file fails at once
    except OverridesError as exc:
        typer.secho(f"brandmon alerts worker cannot start: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    _check_destinations(settings.alerts, "worker")
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


def _check_destinations(settings: AlertSettings, command: str) -> None:
    """Exit 2 naming the variable when a notifier URL's host is refused: link-local, cloud
    metadata, or loopback and private outside the allowed networks (alerts/destinations.py)."""
    from brandmon.alerts.destinations import DestinationError, check_destinations

    try:
        check_destinations(settings)
    except DestinationError as exc:
        typer.secho(f"brandmon alerts {command} cannot start: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc


@alerts_app.command("test-notify")
def test_notify() -> None:
    """Send a test alert (an info trigger, then its resolve) to every configured channel.

    Prints ok/FAILED per channel; exits 1 when one fails, 2 when none is configured or a
    notifier URL's host is refused.
    """
    import asyncio

    settings = _alert_settings()
    _check_destinations(settings, "test-notify")
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
    seed: Annotated[int, typer.Option(help="Seed of the synthetic streams (the first one).")] = 1,
    scale: Annotated[float, typer.Option(help="Multiply every volume by this.")] = 1.0,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            help="Run only this scenario (repeatable); rhythm_week_posts (a week of scored "
            "posts, about a minute a seed) runs only when named."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full JSON report.")] = False,
    check: Annotated[
        bool,
        typer.Option(help="Exit 1 when a scenario misses a target (with --preset: balanced's)."),
    ] = False,
    preset: Annotated[
        list[str] | None,
        typer.Option(
            help="Run under this sensitivity preset (fewer, balanced, more; repeatable) and "
            "print a table per scenario and preset."
        ),
    ] = None,
    seeds: Annotated[
        int, typer.Option(min=1, help="With --preset: run this many seeds from --seed on.")
    ] = 1,
    jobs: Annotated[int, typer.Option(min=1, help="With --preset: processes to use.")] = 1,
) -> None:
    """Run the detector on seeded synthetic scenarios; report precision, recall, detect and
    resolve times (in buckets) against the targets."""

    from brandmon.tools.scenarios import ALL_SCENARIOS, PRESETS, WEEK_SCENARIOS, run_scenarios

    known = [*ALL_SCENARIOS, *WEEK_SCENARIOS]  # the week of posts runs only when named
    unknown = [name for name in scenario or [] if name not in known]
    if unknown:
        typer.secho(f"unknown scenario(s) {unknown}; known: {known}", fg="red", err=True)
        raise typer.Exit(2)
    if preset:
        bad = [p for p in preset if p not in PRESETS]
        if bad:
            raise typer.BadParameter(
                f"unknown preset(s) {bad}; choose from {', '.join(PRESETS)}", param_hint="--preset"
            )
        _preset_report(seed, seeds, preset, scale, scenario or None, jobs, as_json, check)
        return
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
                + (
                    f" per_brand_week={r['false_alerts_per_brand_week']}"
                    if "false_alerts_per_brand_week" in r
                    else ""
                )
                + (f" topics_named={r['topics_named']}" if r.get("topics_named") else "")
            )
        typer.echo(f"all targets met: {report['all_pass']}")
    if check and not report["all_pass"]:
        raise typer.Exit(1)


def _preset_report(
    first: int,
    count: int,
    presets: list[str],
    scale: float,
    names: list[str] | None,
    jobs: int,
    as_json: bool,
    check: bool,
) -> None:
    """`alerts scenarios --preset ...`: every scenario under each preset and seed."""
    from brandmon.tools.scenarios import format_preset_table, run_presets

    seeds = list(range(first, first + count))
    report = run_presets(seeds, list(dict.fromkeys(presets)), scale, _alert_settings(), names, jobs)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        for line in format_preset_table(report["table"]):
            typer.echo(line)
        typer.echo(f"seeds {seeds[0]}-{seeds[-1]}, scale {scale}; detect/resolve in buckets")
    balanced = [r for r in report["runs"] if r["preset"] == "balanced"]
    if check and not all(r["all_pass"] for r in balanced):
        raise typer.Exit(1)


@alerts_app.command("backtest")
def backtest(
    posts: Annotated[
        Path | None, typer.Argument(help="JSONL of scored posts (one ScoredPost a line).")
    ] = None,
    counts: Annotated[
        Path | None,
        typer.Option(help="CSV 'timestamp,value' of mentions per bucket (surge rule only)."),
    ] = None,
    bucket_seconds: Annotated[
        int | None,
        typer.Option(min=1, help="Bucket length in seconds (required with --counts)."),
    ] = None,
    brand: Annotated[
        str | None, typer.Option(help="Brand name of the --counts series (default: file name).")
    ] = None,
    summary_only: Annotated[
        bool, typer.Option("--summary-only", help="Print only the summary, on stdout.")
    ] = False,
) -> None:
    """Replay history through the alert engine the worker runs, without Kafka.

    Prints every alert event (trigger, escalation, resolve) as a JSON line on stdout, then a
    JSON summary on stderr: incidents per rule and per brand-day, time to detect, mean
    duration. With --counts only the mention-surge rule applies, each row counting as that
    many voices of unknown sentiment; rows stamped off the bucket grid (but evenly spaced)
    are moved back onto it by one offset, said on stderr. Per-brand overrides
    (BRANDMON_ALERTS__OVERRIDES_FILE) apply as in the worker.
    """
    from brandmon.alerts.backtest import (
        BacktestInputError,
        alert_lines,
        read_counts,
        read_scored_posts,
        replay_counts,
        replay_posts,
        summarize,
    )
    from brandmon.alerts.overrides import BrandEngines, OverridesError

    if (posts is None) == (counts is None):
        raise typer.BadParameter("give either a JSONL file of scored posts or --counts FILE.csv")
    if counts is not None and bucket_seconds is None:
        raise typer.BadParameter(
            "--counts needs --bucket-seconds: the length of the bucket each row counts",
            param_hint="--bucket-seconds",
        )
    settings = _backtest_settings(bucket_seconds, surge=counts is not None)
    try:
        engines = BrandEngines.load(settings, volume_only=counts is not None)
        if counts is not None:
            series = read_counts(counts, settings.bucket_seconds)
            note = series.alignment_note()
            if note is not None:
                typer.echo(f"brandmon alerts backtest: {note}", err=True)
            name = brand or counts.stem
            replay = replay_counts(engines.for_brand(name), name, series.rows)
        else:
            assert posts is not None
            replay = replay_posts(engines, read_scored_posts(posts))
    except (BacktestInputError, OverridesError) as exc:
        typer.secho(f"brandmon alerts backtest: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    report = json.dumps(summarize(replay), indent=2)
    if summary_only:
        typer.echo(report)
        return
    for line in alert_lines(replay.alerts):
        typer.echo(line)
    typer.echo(report, err=True)


#: The folder `evaluate` and `curve` replay: labelled counts in NAB's layout.
LabelledCounts = Annotated[
    Path,
    typer.Argument(
        metavar="DIR",
        exists=True,
        file_okay=False,
        help="Folder of counts CSVs ('timestamp,value', as for backtest --counts) with "
        "windows.json and, optionally, profiles.json.",
    ),
]


@alerts_app.command("evaluate")
def evaluate(
    folder: LabelledCounts,
    windows: Annotated[
        Path | None,
        typer.Option(
            help='Labelled windows, {"file.csv": [["start", "end"], ...]} (default: '
            "DIR/windows.json); only the CSVs it names are replayed."
        ),
    ] = None,
    profiles: Annotated[
        Path | None,
        typer.Option(
            help="NAB cost profiles (default: DIR/profiles.json, else NAB's standard costs)."
        ),
    ] = None,
    bucket_seconds: Annotated[
        int | None,
        typer.Option(
            min=1, help="Bucket length in seconds (default: each file's most common row spacing)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    detections_out: Annotated[
        Path | None,
        typer.Option(
            help='Write the detections, {"file.csv": ["YYYY-MM-DD HH:MM:SS", ...]}, as '
            "NAB's scorer (nab_score.py) reads them."
        ),
    ] = None,
) -> None:
    """Score the surge rule on labelled counts with the Numenta Anomaly Benchmark's rules.

    Each CSV the windows file names is replayed as `backtest --counts` replays it (same
    settings, overrides and alignment; brand = the file's stem); the first trigger of each
    incident is a detection at the row of its bucket. Prints, per file and in total, the
    normalised scores of the three NAB profiles (0 = never fires, 100 = perfect), windows
    caught, delay from window start to the first trigger, and triggers per series-week and
    by severity.
    """
    from brandmon.alerts.backtest import BacktestInputError
    from brandmon.alerts.evaluate import detections, evaluate_folder
    from brandmon.alerts.overrides import BrandEngines, OverridesError

    engines: dict[int, BrandEngines] = {}

    def engines_for(bucket: int) -> BrandEngines:
        if bucket not in engines:
            settings = _backtest_settings(bucket, surge=True)
            engines[bucket] = BrandEngines.load(settings, volume_only=True)
        return engines[bucket]

    try:
        result = evaluate_folder(
            folder, engines_for, windows=windows, profiles=profiles, bucket_seconds=bucket_seconds
        )
    except (BacktestInputError, OverridesError) as exc:
        typer.secho(f"brandmon alerts evaluate: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    if result.unlabelled:
        typer.echo(
            "brandmon alerts evaluate: not scored (the windows file does not name them): "
            + ", ".join(result.unlabelled),
            err=True,
        )
    report = result.report()
    report["detector"] = _detector_description(next(iter(engines.values())).default.settings)
    if detections_out is not None:
        _write_json(detections_out, detections(result.results))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        from brandmon.alerts.evaluate import render

        render(report)


@alerts_app.command("curve")
def curve(
    folder: LabelledCounts,
    png: Annotated[
        Path | None, typer.Option(help="Draw the curve to this PNG (needs the export extra).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the points as JSON.")] = False,
) -> None:
    """Measure the presets and a sweep of the surge threshold on labelled counts.

    Replays DIR as `evaluate` does once per point (the three presets, then seven settings of
    surge_z, surge_rarity and surge_refractory_hours) and prints each point's NAB scores,
    windows caught and triggers per series-week: where the presets sit on the curve of score
    against alerts. About 30 s a point on 5 series of 55 days.
    """
    from brandmon.alert_settings import AlertSettings
    from brandmon.alerts.backtest import BacktestInputError
    from brandmon.alerts.curve import leave_one_series_out, measure, plot
    from brandmon.alerts.evaluate import Evaluation, evaluate_folder
    from brandmon.alerts.overrides import BrandEngines, OverridesError

    base = _backtest_settings(None, surge=True).explicit_values()

    def evaluate_with(update: dict[str, object]) -> Evaluation:
        def engines_for(bucket: int) -> BrandEngines:
            settings = AlertSettings.model_validate({**base, **update, "bucket_seconds": bucket})
            return BrandEngines.load(settings, volume_only=True)

        return evaluate_folder(folder, engines_for)

    try:
        points = measure(evaluate_with, lambda label: typer.echo(f"measuring {label}", err=True))
    except (BacktestInputError, OverridesError) as exc:
        typer.secho(f"brandmon alerts curve: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    held_out = leave_one_series_out(points)
    if as_json:
        out = {"points": [p.to_dict() for p in points], "leave_one_series_out": held_out}
        typer.echo(json.dumps(out, indent=2))
    else:
        for p in points:
            typer.echo(
                f"{p.label:<24} standard {p.scores['standard'] or 0.0:6.1f}  "
                f"windows {p.windows_caught}/{p.windows_total}  triggers {p.triggers:4d}  "
                f"per series-week {p.triggers_per_series_week:.2f}"
            )
        score = held_out["score"]
        typer.echo(
            "leave one series out (the best preset on the others, scored on each): "
            + ("-" if score is None else f"{score:.1f}")
        )
    if png is not None:
        plot(points, png, f"surge rule on {folder.name}: presets and threshold sweep")
        typer.echo(f"wrote {png}", err=True)


def _detector_description(settings: AlertSettings) -> dict[str, object]:
    """What was evaluated: the volume-only surge rule and the settings it ran with."""
    values = settings.model_dump(mode="json")
    return {
        "rule": "mention_surge, volume only (AlertEngine.apply_count, as backtest --counts)",
        "sensitivity": settings.sensitivity,
        "overrides_file": values["overrides_file"],
        "settings": {
            k: v for k, v in values.items() if k.startswith("surge_") or k == "quiet_seconds"
        },
    }


def _write_json(path: Path, data: object) -> None:
    try:
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        typer.secho(
            f"brandmon alerts evaluate: cannot write {path}: {exc.strerror or exc}",
            fg="red",
            err=True,
        )
        raise typer.Exit(2) from exc


def _backtest_settings(bucket_seconds: int | None, *, surge: bool) -> AlertSettings:
    """The configured alert settings, with --bucket-seconds (and the surge rule on for
    --counts); exits 2 naming the problem when the result is invalid."""
    from pydantic import ValidationError

    from brandmon.alert_settings import AlertSettings

    settings = _alert_settings()
    update: dict[str, object] = {}
    if bucket_seconds is not None:
        update["bucket_seconds"] = bucket_seconds
    if surge:
        update["surge_enabled"] = True
    if not update:
        return settings
    try:
        return AlertSettings.model_validate({**settings.explicit_values(), **update})
    except ValidationError as exc:
        message = exc.errors()[0]["msg"]
        raise typer.BadParameter(message, param_hint="--bucket-seconds") from exc


def _duration(option: str, text: str) -> float:
    from brandmon.alerts.top import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from exc


def top(
    brand: Annotated[
        list[str] | None, typer.Option(help="Show only this brand (repeatable).")
    ] = None,
    lookback: Annotated[
        str,
        typer.Option(help="History of brand.sentiment read at start (90s, 15m, 1h, 2d)."),
    ] = "1h",
    alerts_lookback: Annotated[
        str,
        typer.Option(
            help="History of alerts read at start: incidents triggered before it do not show "
            "their severity and rule."
        ),
    ] = "24h",
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Read both topics from their oldest record.")
    ] = False,
    refresh: Annotated[
        float, typer.Option(min=0.1, max=60.0, help="Seconds between redraws.")
    ] = 1.0,
    buckets: Annotated[
        int, typer.Option(min=2, max=240, help="Buckets in each brand's sparkline.")
    ] = 30,
    limit: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Most brands shown (default: as many as fit the terminal; 50 with --once).",
            show_default=False,
        ),
    ] = None,
    once: Annotated[
        bool,
        typer.Option("--once", help="Read the recent history, print one screen and exit."),
    ] = False,
) -> None:
    """Live view of every brand: volume, negative share against its baseline with a sparkline
    of the recent buckets, and open incidents (from brand.sentiment and alerts).

    Brands with open incidents come first (most severe first), then by z. Reads without a
    consumer group, so it commits nothing. Ctrl-C quits.
    """
    from confluent_kafka import KafkaException
    from rich.console import Console

    from brandmon.alerts.top_live import TopicsMissingError, TopOptions, run_top
    from brandmon.kafka_io import BrokerUnreachableError
    from brandmon.settings import load_settings

    options = TopOptions(
        brands=frozenset(brand) if brand else None,
        lookback_seconds=None if from_beginning else _duration("--lookback", lookback),
        alerts_lookback_seconds=(
            None if from_beginning else _duration("--alerts-lookback", alerts_lookback)
        ),
        refresh_seconds=refresh,
        buckets=buckets,
        limit=limit,
        once=once,
    )
    settings = load_settings()  # exits 2 on invalid settings
    try:
        run_top(settings, options, Console())
    except (BrokerUnreachableError, TopicsMissingError) as exc:
        typer.secho(f"brandmon top: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc
    except KafkaException as exc:
        typer.secho(
            f"brandmon top: Kafka failed: {exc}; check the broker at "
            f"{settings.bootstrap_servers} and run it again",
            fg="red",
            err=True,
        )
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        return
