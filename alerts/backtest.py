"""Replay history through the alert engine the worker runs, without Kafka (`alerts backtest`).

Two inputs:
- scored posts, one JSON `ScoredPost` a line, in file order (the engine's lateness rules
  apply: a post older than its brand's closed buckets counts as late, as in the worker);
- counts of mentions per bucket, a CSV with the header `timestamp,value`, timestamps
  `YYYY-MM-DD HH:MM:SS` (UTC, oldest first, evenly spaced: a whole number of buckets after
  the first row) and whole counts: the surge rule alone judges them
  (`AlertEngine(volume_only=True)`), each row that many voices of unknown sentiment. A
  missing row is a bucket with no data (skipped, not a zero). Rows stamped off the bucket
  grid (e.g. at :42:53, :47:53, ... with 5-minute buckets) are all moved back by the same
  offset onto it (`Counts.offset`), so each row is the bucket it starts in.

`summarize()` turns the alert events into the report: incidents per rule, incidents per
brand-day, time to detect (from the start of the window that first triggered to the trigger:
with no truth in real history, how long the rule needed once traffic left the baseline), and
mean incident duration. Bad input raises `BacktestInputError` naming the file and line.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from brandmon.alerts.engine import AlertEngine
from brandmon.alerts.overrides import BrandEngines
from brandmon.alerts.state import BrandState
from brandmon.contracts.alerts import Alert
from brandmon.contracts.posts import ScoredPost

COUNTS_HEADER = ["timestamp", "value"]
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class BacktestInputError(ValueError):
    """The input file cannot be replayed; the message names the file, line and fix."""


@dataclass
class Replay:
    """What a replay produced: every alert event, per-brand event-time span, outcomes."""

    alerts: list[Alert] = field(default_factory=list)
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)

    def saw(self, brand: str, start: float, end: float) -> None:
        first, last = self.spans.get(brand, (start, end))
        self.spans[brand] = (min(first, start), max(last, end))

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def read_scored_posts(path: Path) -> Iterator[ScoredPost]:
    """The scored posts of a JSONL file, in file order (blank lines skipped)."""
    with _open(path) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield ScoredPost.model_validate_json(line)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "the line"
                raise BacktestInputError(
                    f"{path}:{number}: not a scored post ({where}: {first['msg']}); each line "
                    "must be one JSON object as written to posts.scored"
                ) from exc


@dataclass(frozen=True)
class CountRow:
    """One row of a counts CSV as written: its line number, timestamp and count."""

    line: int
    stamp: str
    start: float  # the timestamp in epoch seconds (UTC)
    value: int


@dataclass(frozen=True)
class Counts:
    """A counts CSV on the bucket grid, ready for `replay_counts()`."""

    path: Path
    bucket_seconds: int
    #: (bucket start in epoch seconds, count), oldest first.
    rows: list[tuple[float, int]]
    #: Seconds every timestamp was moved back to land on the grid (0: it was on it already);
    #: a row's own timestamp is its bucket start + offset.
    offset: float

    def alignment_note(self) -> str | None:
        """One line saying how the rows were moved onto the grid; None when they were not."""
        if not self.offset:
            return None
        return (
            f"{self.path}: rows are stamped {self.offset:g} s after the start of their "
            f"{self.bucket_seconds}-second bucket; every timestamp was moved back by "
            f"{self.offset:g} s onto the bucket grid (alert times are on the grid)"
        )


def read_counts(path: Path, bucket_seconds: int) -> Counts:
    """A counts CSV's rows, validated and moved onto the `bucket_seconds` grid."""
    return align_counts(path, parse_counts(path), bucket_seconds)


def parse_counts(path: Path) -> list[CountRow]:
    """The rows of a counts CSV as written, validated (header, fields, time order)."""
    rows: list[CountRow] = []
    with _open(path) as lines:
        reader = csv.reader(lines)
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header] != COUNTS_HEADER:
            raise BacktestInputError(
                f"{path}:1: the header must be 'timestamp,value', not {','.join(header or [])!r}"
            )
        for row in reader:
            number = reader.line_num
            if not row or not "".join(row).strip():
                continue
            rows.append(_count_row(path, number, row, rows[-1] if rows else None))
    if not rows:
        raise BacktestInputError(f"{path}: no rows after the header: nothing to replay")
    return rows


def _count_row(path: Path, number: int, row: list[str], previous: CountRow | None) -> CountRow:
    where = f"{path}:{number}"
    if len(row) != 2:
        raise BacktestInputError(f"{where}: expected 2 fields (timestamp,value), got {len(row)}")
    stamp, value = row[0].strip(), row[1].strip()
    try:
        start = datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError as exc:
        raise BacktestInputError(
            f"{where}: timestamp {stamp!r} is not YYYY-MM-DD HH:MM:SS (UTC)"
        ) from exc
    if not value.isdigit():
        raise BacktestInputError(
            f"{where}: value {value!r} is not a whole number of mentions (0 or more)"
        )
    if previous is not None and start <= previous.start:
        raise BacktestInputError(
            f"{where}: {stamp} is not after the previous row: rows must be in time order, "
            "one per bucket"
        )
    return CountRow(number, stamp, start, int(value))


def infer_bucket_seconds(path: Path, rows: list[CountRow]) -> int:
    """The bucket length the rows imply: the most common gap between consecutive rows (a
    missing row makes a gap of two buckets; on a tie the shorter gap wins)."""
    gaps = Counter(int(b.start - a.start) for a, b in itertools.pairwise(rows))
    if not gaps:
        raise BacktestInputError(
            f"{path}: one row only, so the bucket length cannot be inferred from the spacing "
            "of the rows: give --bucket-seconds"
        )
    return max(gaps, key=lambda gap: (gaps[gap], -gap))


def align_counts(path: Path, rows: list[CountRow], bucket_seconds: int) -> Counts:
    """Move the rows back by one offset onto the `bucket_seconds` grid (floor of the first
    row); each row must be a whole number of buckets after the first."""
    first = rows[0]
    offset = first.start % bucket_seconds
    for row in rows[1:]:
        if (row.start - first.start) % bucket_seconds:
            raise BacktestInputError(
                f"{path}:{row.line}: {row.stamp} is not a whole number of {bucket_seconds}-second "
                f"buckets after the first row ({first.stamp}): rows must be evenly spaced, one "
                "per bucket; fix the row or --bucket-seconds"
            )
    aligned = [(row.start - offset, row.value) for row in rows]
    return Counts(path, bucket_seconds, aligned, offset)


def _open(path: Path) -> Any:
    try:
        return path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise BacktestInputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def replay_posts(engine: AlertEngine | BrandEngines, posts: Iterator[ScoredPost]) -> Replay:
    """Apply the posts in order (one partition, offsets in file order), then close every
    brand's last buckets as the worker's silence sweep would. With `BrandEngines`, each
    brand's posts go through its own engine (per-brand overrides), as in the worker."""
    engines = engine if isinstance(engine, BrandEngines) else BrandEngines(engine)
    engine_of, default = engines.for_brand, engines.default
    replay = Replay()
    states: dict[str, BrandState] = {}
    stream_time = -math.inf
    for offset, post in enumerate(posts):
        result = engine_of(post.brand).apply(states.get(post.brand), post, 0, offset)
        states[post.brand] = result.state
        replay.alerts += result.alerts
        replay.count(result.outcome)
        when = post.created_at.timestamp()
        replay.saw(post.brand, when, when)
        vouched = default.watermark_time(post)
        if vouched is not None:
            stream_time = max(stream_time, vouched)
    s = default.settings
    end = stream_time + s.allowed_lateness_seconds + s.bucket_seconds
    for state in states.values():
        if math.isfinite(end):
            replay.alerts += engine_of(state.brand).advance(state, end).alerts
    replay.alerts.sort(key=lambda a: (a.evaluated_at, a.brand))
    return replay


def replay_counts(engine: AlertEngine, brand: str, rows: list[tuple[float, int]]) -> Replay:
    """Apply counts rows (validated, in order) to one brand with the surge rule alone."""
    replay = Replay()
    state: BrandState | None = None
    for start, value in rows:
        result = engine.apply_count(state, brand, start, value)
        state = result.state
        replay.alerts += result.alerts
        replay.count(result.outcome)
    replay.saw(brand, rows[0][0], rows[-1][0] + engine.settings.bucket_seconds)
    return replay


def summarize(replay: Replay) -> dict[str, Any]:
    """The backtest report; see the module docstring."""
    incidents: dict[str, dict[str, Any]] = {}
    for alert in replay.alerts:
        entry = incidents.setdefault(alert.dedup_key, {"brand": alert.brand, "rule": None})
        if alert.action == "trigger" and entry["rule"] is None:
            entry["rule"] = alert.rule
            entry["detect"] = (alert.evaluated_at - alert.window_start).total_seconds()
        elif alert.action == "resolve":
            entry["duration"] = (alert.evaluated_at - alert.incident_start).total_seconds()
    days = {b: max((last - first) / 86_400, 1 / 24) for b, (first, last) in replay.spans.items()}
    per_brand = {
        brand: sum(i["brand"] == brand for i in incidents.values()) for brand in sorted(days)
    }
    by_rule: dict[str, int] = {}
    for entry in incidents.values():
        by_rule[entry["rule"]] = by_rule.get(entry["rule"], 0) + 1
    detect = [i["detect"] for i in incidents.values() if "detect" in i]
    durations = [i["duration"] for i in incidents.values() if "duration" in i]
    brand_days = sum(days.values())
    return {
        "brands": len(days),
        "brand_days": round(brand_days, 3),
        "alert_events": len(replay.alerts),
        "incidents": len(incidents),
        "incidents_by_rule": by_rule,
        "incidents_per_brand_day": round(len(incidents) / brand_days, 4) if brand_days else None,
        "incidents_per_brand": per_brand,
        "time_to_detect_seconds": _stats(detect),
        "mean_duration_seconds": round(sum(durations) / len(durations), 1) if durations else None,
        "open_at_end": len(incidents) - len(durations),
        "outcomes": replay.outcomes,
    }


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "mean": round(sum(ordered) / len(ordered), 1),
        "median": ordered[len(ordered) // 2],
        "max": ordered[-1],
    }


def alert_lines(alerts: list[Alert]) -> Iterator[str]:
    """One JSON line per alert event, as the worker writes them to `alerts`."""
    for alert in alerts:
        yield alert.model_dump_json()
