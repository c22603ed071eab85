"""Score the surge rule against labelled anomaly windows (`brandmon alerts evaluate DIR`).

Each counts CSV named in the windows file is replayed through the engine exactly as
`brandmon alerts backtest --counts` does (backtest.py: same parsing, alignment onto the
bucket grid, `AlertEngine(volume_only=True)` of the brand named by the file's stem). The
first alert of each incident (its `trigger`; an escalation repeats the dedup_key and is not a
new detection) is a detection at the row of the bucket that triggered: that row's own,
unaligned timestamp (the next row when the bucket itself had none).

The detections are scored with the rules of the Numenta Anomaly Benchmark (NAB), implemented
here from its published description:
- the first 15% of a file's rows (at most 750) are a probationary period: not scored;
- a row inside a window [left, right] (width w rows) weighs tp x s(-(right - i + 1) / w) /
  s(-1), with s(x) = 2 / (1 + e^(5x)) - 1 (s(x) = -1 beyond x = 3): close to +tp at the
  window's start, falling towards 0 at its end;
- a row before every window weighs -fp; a row after a window (its last row right, width w)
  weighs fp x s((i - right) / (w - 1)): close to 0 just after the window, -fp later;
- a file's raw score = the weights of its detected rows outside windows, plus for each
  window that has a scored row the weight of its first detection, or -fn when it has none;
- normalised score = 100 x (raw - null) / (perfect - null), summed over the files: null is
  the raw score of a detector that never fires, perfect is tp for every window. 0 = never
  fires, 100 = one detection at the start of every window.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from brandmon.alerts.backtest import (
    TIME_FORMAT,
    BacktestInputError,
    CountRow,
    Counts,
    align_counts,
    infer_bucket_seconds,
    parse_counts,
    replay_counts,
)
from brandmon.alerts.overrides import BrandEngines
from brandmon.contracts.alerts import Alert

#: NAB's probationary period: 15% of a file's rows, at most 15% of its 5,000-row reference.
PROBATION_FRACTION = 0.15
PROBATION_MAX_ROWS = 750
SECONDS_PER_WEEK = 7 * 86_400


class EvaluateInputError(BacktestInputError):
    """The folder, windows or profiles cannot be scored; the message names the file and fix."""


@dataclass(frozen=True)
class Costs:
    """One cost profile: reward of a caught window, cost of a false and of a missed one."""

    tp: float
    fp: float
    fn: float


#: NAB's three profiles, used when the folder has no profiles file.
STANDARD_PROFILES: dict[str, Costs] = {
    "standard": Costs(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": Costs(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": Costs(tp=1.0, fp=0.11, fn=2.0),
}


def probation_rows(rows: int) -> int:
    """Rows at the start of a file that are not scored."""
    return min(math.floor(PROBATION_FRACTION * rows), PROBATION_MAX_ROWS)


def scaled_sigmoid(x: float) -> float:
    """NAB's weight curve: +1 far left of 0, 0 at 0, -1 from x = 3 on."""
    if x > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


@dataclass(frozen=True)
class Series:
    """One labelled file: its rows' own timestamps and its windows as row ranges."""

    name: str
    stamps: list[float]  # epoch seconds of each row, as written in the CSV
    windows: list[tuple[int, int]]  # (first row, last row), in order, not overlapping

    @property
    def probation(self) -> int:
        return probation_rows(len(self.stamps))

    def window_of(self, row: int) -> int | None:
        """The window holding `row`, or None."""
        k = self._last_window_from(row)
        return k if k is not None and row <= self.windows[k][1] else None

    def weight(self, row: int, costs: Costs) -> float:
        """What a detection at `row` is worth (see the module docstring)."""
        k = self._last_window_from(row)
        if k is None:
            return -costs.fp
        left, right = self.windows[k]
        width = right - left + 1
        if row <= right:
            return costs.tp * scaled_sigmoid(-(right - row + 1) / width) / scaled_sigmoid(-1.0)
        return costs.fp * scaled_sigmoid((row - right) / (width - 1))

    @cached_property
    def _lefts(self) -> list[int]:
        return [left for left, _ in self.windows]

    def _last_window_from(self, row: int) -> int | None:
        """The last window starting at or before `row`."""
        k = bisect.bisect_right(self._lefts, row) - 1
        return k if k >= 0 else None


@dataclass(frozen=True)
class SeriesScore:
    """One file scored under one profile."""

    raw: float
    null: float  # the raw score of a detector that never fires
    perfect: float
    first_detection: dict[int, int]  # window -> its first scored detected row

    @property
    def normalised(self) -> float | None:
        return normalise(self.raw, self.null, self.perfect)


def normalise(raw: float, null: float, perfect: float) -> float | None:
    """100 x (raw - null) / (perfect - null); None without any window."""
    if perfect == null:
        return None
    return 100.0 * (raw - null) / (perfect - null)


def score_series(series: Series, detected: Iterable[int], costs: Costs) -> SeriesScore:
    """NAB's score of detections (row indices) on one file."""
    probation = series.probation
    first: dict[int, int] = {}
    false_positives = 0.0
    for row in sorted(set(detected)):
        if row < probation:
            continue
        k = series.window_of(row)
        if k is None:
            false_positives += series.weight(row, costs)
        else:
            first.setdefault(k, row)
    scorable = [k for k, (_, right) in enumerate(series.windows) if right >= probation]
    windows = 0.0
    for k in scorable:
        windows += series.weight(first[k], costs) if k in first else -costs.fn
    return SeriesScore(
        raw=false_positives + windows,
        null=-costs.fn * len(scorable),
        perfect=costs.tp * len(series.windows),
        first_detection=first,
    )


# --- reading the folder -----------------------------------------------------------------------


def read_profiles(path: Path | None) -> dict[str, Costs]:
    """The cost profiles of a NAB profiles file ({name: {"CostMatrix": {"tpWeight": ...}}});
    NAB's standard numbers when `path` is None."""
    if path is None:
        return dict(STANDARD_PROFILES)
    data = _read_json(path, "profiles")
    profiles: dict[str, Costs] = {}
    for name in STANDARD_PROFILES:
        try:
            matrix = data[name]["CostMatrix"]
            profiles[name] = Costs(
                tp=float(matrix["tpWeight"]),
                fp=float(matrix["fpWeight"]),
                fn=float(matrix["fnWeight"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EvaluateInputError(
                f"{path}: profile {name!r} needs a CostMatrix with numbers tpWeight, fpWeight "
                "and fnWeight (as NAB's config/profiles.json); fix the file or leave out "
                "--profiles for NAB's standard costs"
            ) from exc
    return profiles


def read_windows(path: Path) -> dict[str, list[tuple[str, str]]]:
    """{CSV file name: [(start, end), ...]} of a NAB windows file (keys may carry a folder,
    e.g. "realTweets/Twitter_volume_AAPL.csv"; only the file name is kept)."""
    data = _read_json(path, "windows")
    if not isinstance(data, dict):
        raise EvaluateInputError(_windows_shape(path, "the top level is not an object"))
    windows: dict[str, list[tuple[str, str]]] = {}
    for key, spans in data.items():
        name = key.split("/")[-1]
        if not name.lower().endswith(".csv"):
            raise EvaluateInputError(
                f"{path}: {key!r} is not a CSV file: name the counts CSVs, e.g. "
                '"Twitter_volume_AAPL.csv"'
            )
        if name in windows:
            raise EvaluateInputError(f"{path}: {name} is named twice (as {key!r} too)")
        if not isinstance(spans, list) or not all(_is_span(s) for s in spans):
            raise EvaluateInputError(_windows_shape(path, f"{key!r} is not a list of pairs"))
        windows[name] = [(start, end) for start, end in spans]
    return windows


def _is_span(span: object) -> bool:
    return isinstance(span, list) and len(span) == 2 and all(isinstance(t, str) for t in span)


def _windows_shape(path: Path, problem: str) -> str:
    return (
        f"{path}: {problem}; the windows file maps each CSV to its labelled windows, "
        '{"file.csv": [["YYYY-MM-DD HH:MM:SS", "YYYY-MM-DD HH:MM:SS"], ...]}'
    )


def _read_json(path: Path, what: str) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise EvaluateInputError(
            f"cannot read the {what} file {path} ({exc.strerror or exc}): give --{what} FILE"
        ) from exc
    except json.JSONDecodeError as exc:
        raise EvaluateInputError(f"{path} is not valid JSON: {exc}") from exc


def window_rows(
    path: Path, name: str, spans: list[tuple[str, str]], stamps: list[float]
) -> list[tuple[int, int]]:
    """The windows of CSV `name` (from the windows file `path`) as (first row, last row);
    each end must be the timestamp of a row."""
    index = {stamp: row for row, stamp in enumerate(stamps)}
    rows: list[tuple[int, int]] = []
    for start, end in spans:
        left, right = (_row_at(path, name, index, stamp) for stamp in (start, end))
        where = f"{path}: window {start} .. {end} of {name}"
        if right - left < 1:
            raise EvaluateInputError(f"{where}: a window must end at least one row after it starts")
        rows.append((left, right))
    rows.sort()
    for (_, right), (left, _) in itertools.pairwise(rows):
        if left <= right:
            raise EvaluateInputError(f"{path}: windows of {name} overlap; merge them")
    return rows


def _row_at(path: Path, name: str, index: dict[float, int], stamp: str) -> int:
    try:
        when = datetime.fromisoformat(stamp.strip()).replace(tzinfo=UTC).timestamp()
    except ValueError as exc:
        raise EvaluateInputError(
            f"{path}: window time {stamp!r} of {name} is not YYYY-MM-DD HH:MM:SS"
        ) from exc
    row = index.get(when)
    if row is None:
        raise EvaluateInputError(
            f"{path}: window time {stamp} of {name} is not the timestamp of a row of {name}: "
            "windows start and end on rows (as written in the CSV, before any alignment)"
        )
    return row


# --- replay and report ------------------------------------------------------------------------


@dataclass(frozen=True)
class Trigger:
    """A detection: the first alert of one incident, at the row of its triggering bucket."""

    row: int
    severity: str


@dataclass(frozen=True)
class FileResult:
    """One file replayed: its labelled rows, how they were aligned, its triggers."""

    series: Series
    counts: Counts
    triggers: list[Trigger]


@dataclass(frozen=True)
class LabelledFile:
    """A counts CSV named in the windows file: its rows as written and its windows."""

    path: Path
    rows: list[CountRow]
    series: Series


def read_labelled(
    folder: Path, windows_file: Path, name: str, spans: list[tuple[str, str]]
) -> LabelledFile:
    """Read `folder/name` and place its windows (from `windows_file`) on its rows."""
    path = folder / name
    if not path.is_file():
        raise EvaluateInputError(
            f"{windows_file} names {name}, but {folder} has no such file: add the CSV or "
            "remove it from the windows file"
        )
    rows = parse_counts(path)
    stamps = [row.start for row in rows]
    return LabelledFile(
        path, rows, Series(name, stamps, window_rows(windows_file, name, spans, stamps))
    )


def replay_file(
    labelled: LabelledFile, engines: Callable[[int], BrandEngines], bucket_seconds: int | None
) -> FileResult:
    """Replay one CSV as `backtest --counts` does (brand = its stem) and collect triggers."""
    path, rows = labelled.path, labelled.rows
    bucket = bucket_seconds or infer_bucket_seconds(path, rows)
    counts = align_counts(path, rows, bucket)
    brand = path.stem
    replay = replay_counts(engines(bucket).for_brand(brand), brand, counts.rows)
    starts = [start for start, _ in counts.rows]
    triggers = []
    for alert in first_triggers(replay.alerts):
        # the row of the triggering bucket, or the first row after it (the one that closed it)
        row = bisect.bisect_left(starts, alert.incident_start.timestamp())
        triggers.append(Trigger(min(row, len(starts) - 1), alert.severity))
    return FileResult(labelled.series, counts, triggers)


def first_triggers(alerts: Iterable[Alert]) -> list[Alert]:
    """The first `trigger` of each incident (an escalation repeats its dedup_key)."""
    seen: set[str] = set()
    firsts = []
    for alert in alerts:
        if alert.action == "trigger" and alert.dedup_key not in seen:
            seen.add(alert.dedup_key)
            firsts.append(alert)
    return firsts


def stamp_text(epoch_seconds: float) -> str:
    """`YYYY-MM-DD HH:MM:SS` (UTC), as the CSVs and NAB's scorer write times."""
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).strftime(TIME_FORMAT)


def detections(results: Sequence[FileResult]) -> dict[str, list[str]]:
    """{file name: [row timestamp of each trigger]}, the detections file NAB's scorer reads."""
    return {
        r.series.name: [stamp_text(r.series.stamps[t.row]) for t in r.triggers] for r in results
    }


def file_report(result: FileResult, profiles: dict[str, Costs]) -> dict[str, Any]:
    """One file's scores, windows, delays and triggers."""
    series, counts = result.series, result.counts
    scores = {
        p: score_series(series, (t.row for t in result.triggers), c) for p, c in profiles.items()
    }
    first = next(iter(scores.values())).first_detection  # the same under every profile
    windows = [_window_entry(series, k, first.get(k)) for k in range(len(series.windows))]
    scored = [t for t in result.triggers if t.row >= series.probation]
    # the scored span: from the first row after the probation to the end of the last row
    span = series.stamps[-1] + counts.bucket_seconds - series.stamps[series.probation]
    weeks = span / SECONDS_PER_WEEK
    return {
        "rows": len(series.stamps),
        "probation_rows": series.probation,
        "bucket_seconds": counts.bucket_seconds,
        "aligned_by_seconds": counts.offset,
        "score": {p: s.normalised for p, s in scores.items()},
        "raw": {p: s.raw for p, s in scores.items()},
        "null": {p: s.null for p, s in scores.items()},
        "perfect": {p: s.perfect for p, s in scores.items()},
        "windows": windows,
        "windows_total": len(windows),
        "windows_caught": len(first),
        "delay_minutes_median": _median([w["delay_minutes"] for w in windows]),
        "triggers": len(result.triggers),
        "triggers_in_probation": len(result.triggers) - len(scored),
        "series_weeks": weeks,
        "triggers_per_series_week": len(scored) / weeks if weeks > 0 else None,
        "triggers_by_severity": dict(Counter(t.severity for t in result.triggers)),
    }


def _window_entry(series: Series, k: int, first: int | None) -> dict[str, Any]:
    left, right = series.windows[k]
    stamps = series.stamps
    return {
        "start": stamp_text(stamps[left]),
        "end": stamp_text(stamps[right]),
        "first_trigger": None if first is None else stamp_text(stamps[first]),
        "delay_minutes": None if first is None else (stamps[first] - stamps[left]) / 60,
    }


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def total_report(files: dict[str, dict[str, Any]], profiles: dict[str, Costs]) -> dict[str, Any]:
    """The corpus: scores normalised over the summed raw, null and perfect scores."""
    reports = list(files.values())

    def summed(key: str, profile: str) -> float:
        return sum(f[key][profile] for f in reports)

    weeks = sum(f["series_weeks"] for f in reports)
    scored = sum(f["triggers"] - f["triggers_in_probation"] for f in reports)
    severities: Counter[str] = Counter()
    for f in reports:
        severities.update(f["triggers_by_severity"])
    return {
        "score": {
            p: normalise(summed("raw", p), summed("null", p), summed("perfect", p))
            for p in profiles
        },
        "raw": {p: summed("raw", p) for p in profiles},
        "windows_total": sum(f["windows_total"] for f in reports),
        "windows_caught": sum(f["windows_caught"] for f in reports),
        "delay_minutes_median": _median(w["delay_minutes"] for f in reports for w in f["windows"]),
        "triggers": sum(f["triggers"] for f in reports),
        "triggers_in_probation": sum(f["triggers_in_probation"] for f in reports),
        "series_weeks": weeks,
        "triggers_per_series_week": scored / weeks if weeks > 0 else None,
        "triggers_by_severity": dict(severities),
    }


@dataclass(frozen=True)
class Evaluation:
    """Everything `brandmon alerts evaluate` prints or writes."""

    results: list[FileResult]
    profiles: dict[str, Costs]
    #: CSVs of the folder that the windows file does not name (not replayed, not scored).
    unlabelled: list[str]

    def report(self) -> dict[str, Any]:
        files = {r.series.name: file_report(r, self.profiles) for r in self.results}
        return {
            "profiles": {p: vars(c) for p, c in self.profiles.items()},
            "total": total_report(files, self.profiles),
            "files": files,
            "unlabelled_files": self.unlabelled,
        }


def evaluate_folder(
    folder: Path,
    engines: Callable[[int], BrandEngines],
    *,
    windows: Path | None = None,
    profiles: Path | None = None,
    bucket_seconds: int | None = None,
) -> Evaluation:
    """Replay and score every CSV the windows file names (default folder/windows.json).

    `engines(bucket_seconds)` gives the engines to replay a file with buckets of that length;
    `bucket_seconds` None: each file's inferred from the spacing of its rows. Profiles
    default to folder/profiles.json when it exists, else NAB's standard costs."""
    windows_path = windows or folder / "windows.json"
    if not windows_path.is_file():
        raise EvaluateInputError(
            f"no windows file {windows_path}: give --windows FILE, a JSON object mapping each "
            'CSV to its labelled windows, {"file.csv": [["start", "end"], ...]}'
        )
    labelled = read_windows(windows_path)
    if not labelled:
        raise EvaluateInputError(f"{windows_path} names no CSV: nothing to score")
    default_profiles = folder / "profiles.json"
    costs = read_profiles(profiles or (default_profiles if default_profiles.is_file() else None))
    files = [
        read_labelled(folder, windows_path, name, spans) for name, spans in sorted(labelled.items())
    ]
    results = [replay_file(f, engines, bucket_seconds) for f in files]
    unlabelled = sorted(p.name for p in folder.glob("*.csv") if p.name not in labelled)
    return Evaluation(results, costs, unlabelled)


# --- the table ---------------------------------------------------------------------------------

#: Short column names of the profiles.
PROFILE_LABELS = {
    "standard": "standard",
    "reward_low_FP_rate": "low FP",
    "reward_low_FN_rate": "low FN",
}


def render(report: dict[str, Any]) -> None:
    """Print the report as rich tables: scores, triggers, windows."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped or captured: wide enough to keep file names whole
        console = Console(width=max(console.width, 120))
    profiles = list(report["profiles"])
    files, total = report["files"], report["total"]
    scores = Table(
        "file",
        *(PROFILE_LABELS.get(p, p) for p in profiles),
        "windows caught",
        "median delay (min)",
        title="NAB scores (0 = never fires, 100 = one trigger at the start of every window)",
    )
    for name, f in [*files.items(), ("total", total)]:
        scores.add_row(
            name,
            *(_number(f["score"][p], 1) for p in profiles),
            f"{f['windows_caught']} / {f['windows_total']}",
            _number(f["delay_minutes_median"], 0),
            end_section=name == list(files)[-1],
        )
    console.print(scores)
    triggers = Table(
        "file",
        "triggers",
        "in probation",
        "series-weeks",
        "per series-week",
        "by severity",
        "moved back (s)",
        title="Triggers (first alert of each incident); per series-week after the probation",
    )
    for name, f in [*files.items(), ("total", total)]:
        triggers.add_row(
            name,
            str(f["triggers"]),
            str(f["triggers_in_probation"]),
            _number(f["series_weeks"], 2),
            _number(f["triggers_per_series_week"], 2),
            ", ".join(f"{s} {n}" for s, n in sorted(f["triggers_by_severity"].items())) or "-",
            _number(f.get("aligned_by_seconds"), 0) if name != "total" else "",
            end_section=name == list(files)[-1],
        )
    console.print(triggers)
    windows = Table(
        "file",
        "window start",
        "window end",
        "first trigger",
        "delay (min)",
        title="Labelled windows (rows' own times) and the first trigger in each",
    )
    for name, f in files.items():
        for w in f["windows"]:
            windows.add_row(
                name,
                w["start"],
                w["end"],
                w["first_trigger"] or "missed",
                _number(w["delay_minutes"], 0),
            )
    console.print(windows)
    if report.get("detector"):
        d = report["detector"]
        console.print(f"detector: {d['rule']}; sensitivity {d['sensitivity']}")


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
