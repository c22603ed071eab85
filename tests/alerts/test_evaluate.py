"""`brandmon alerts evaluate`: the surge rule scored on labelled counts with NAB's rules.

The scorer is checked against NAB's own scoring as reproduced by the team's reference tool,
/work/shared/tools/nab_score.py (run as a subprocess on the same detections), on small
synthetic folders; those checks are skipped where the tool is absent. One slow test runs the
command end to end on the real development counts (/work/shared/data/mention_counts_dev).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from brandmon.alerts.backtest import align_counts
from brandmon.alerts.cli import CHANNEL_VARIABLES
from brandmon.alerts.evaluate import (
    STANDARD_PROFILES,
    Costs,
    Evaluation,
    FileResult,
    Series,
    Trigger,
    detections,
    read_labelled,
    read_profiles,
    read_windows,
    scaled_sigmoid,
    score_series,
)
from tests.alerts.harness import alerts_app

REPO = Path(__file__).resolve().parents[2]
SHARED = (REPO / ".." / "shared").resolve()
NAB_TOOL = SHARED / "tools" / "nab_score.py"
DEV_COUNTS = SHARED / "data" / "mention_counts_dev"
PROFILE_NAMES = list(STANDARD_PROFILES)

needs_nab_tool = pytest.mark.skipif(
    not NAB_TOOL.is_file(), reason=f"NAB reference scorer not found at {NAB_TOOL}"
)

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import brandmon.redaction as redaction

    for name in CHANNEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(redaction, "_active", [])


# --- synthetic folders ---------------------------------------------------------------------------

#: Rows 5 minutes apart stamped at :42:53, :47:53, ... (off the 5-minute grid, as NAB's tweets).
START = datetime(2015, 2, 26, 21, 42, 53)
STEP = timedelta(minutes=5)

#: name -> (rows, rows left out of the file, windows as (first, last) positions in the file)
SHAPES: dict[str, tuple[int, set[int], list[tuple[int, int]]]] = {
    "Twitter_volume_A.csv": (3000, set(), [(600, 800), (1500, 1750), (2600, 2900)]),
    # a few rows missing; the first window starts in the probation (374 rows) and ends after
    "Twitter_volume_B.csv": (2500, {40, 41, 1000, 2400}, [(300, 500), (1200, 1400)]),
    # the first window lies wholly inside the probation (300 rows): not scored at all
    "Twitter_volume_C.csv": (2000, set(), [(100, 250), (1000, 1100)]),
    "Twitter_volume_D.csv": (1500, set(), []),  # no window: every scored detection is false
}

NAB_PROFILES = {
    name: {"CostMatrix": {"tpWeight": c.tp, "fnWeight": c.fn, "fpWeight": c.fp, "tnWeight": 1.0}}
    for name, c in STANDARD_PROFILES.items()
}
ODD_PROFILES = {
    "standard": {"CostMatrix": {"tpWeight": 2.0, "fnWeight": 1.5, "fpWeight": 0.3}},
    "reward_low_FP_rate": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 0.5, "fpWeight": 0.9}},
    "reward_low_FN_rate": {"CostMatrix": {"tpWeight": 0.7, "fnWeight": 3.0, "fpWeight": 0.05}},
}


def _stamps(rows: int, missing: set[int]) -> list[str]:
    return [f"{START + i * STEP:%Y-%m-%d %H:%M:%S}" for i in range(rows) if i not in missing]


def _write_csv(path: Path, stamps: list[str], values: list[int]) -> None:
    lines = ["timestamp,value", *(f"{s},{v}" for s, v in zip(stamps, values, strict=True))]
    path.write_text("\n".join(lines) + "\n")


def _synthetic_folder(folder: Path, profiles: dict[str, Any]) -> dict[str, list[str]]:
    """Write SHAPES as CSVs, windows.json (NAB's layout) and profiles.json; the stamps."""
    folder.mkdir(parents=True, exist_ok=True)
    stamps, windows = {}, {}
    for name, (rows, missing, spans) in SHAPES.items():
        stamps[name] = _stamps(rows, missing)
        _write_csv(folder / name, stamps[name], [100 + i % 7 for i in range(len(stamps[name]))])
        windows[f"realTweets/{name}"] = [
            [f"{stamps[name][a]}.000000", f"{stamps[name][b]}.000000"] for a, b in spans
        ]
    (folder / "windows.json").write_text(json.dumps(windows, indent=1))
    (folder / "profiles.json").write_text(json.dumps(profiles, indent=1))
    return stamps


def _detection_sets() -> dict[str, dict[str, list[int]]]:
    """Row positions flagged per file, by case."""
    windows = {name: spans for name, (_, _, spans) in SHAPES.items()}
    rng = random.Random(7)
    return {
        "none": {},
        "window starts": {n: [a for a, _ in w] for n, w in windows.items()},
        "window ends": {n: [b for _, b in w] for n, w in windows.items()},
        "early and late in windows": {
            n: [x for a, b in w for x in (a + 3, a + 40, b - 1, b)] for n, w in windows.items()
        },
        "false positives around windows": {
            "Twitter_volume_A.csv": [460, 599, 801, 802, 830, 1100, 1449, 1751, 2200, 2999],
            "Twitter_volume_B.csv": [501, 560, 1401, 2000],
            "Twitter_volume_C.csv": [251, 400, 999, 1101, 1999],
            "Twitter_volume_D.csv": [224, 225, 1000, 1495],
        },
        "in the probation": {
            "Twitter_volume_A.csv": [0, 10, 449],
            "Twitter_volume_B.csv": [5, 320, 373, 374],  # 374 is the first scored row
            "Twitter_volume_C.csv": [120, 299, 300],
            "Twitter_volume_D.csv": [0, 224],
        },
        "random": {
            n: sorted(rng.sample(range(len(_stamps(rows, missing))), 40))
            for n, (rows, missing, _) in SHAPES.items()
        },
    }


DETECTION_SETS = _detection_sets()


def _our_report(folder: Path, flagged: dict[str, list[int]]) -> tuple[dict[str, Any], Path]:
    """The project's report for `flagged` (no replay), and its detections file for NAB."""
    windows_file = folder / "windows.json"
    results = []
    for name, spans in sorted(read_windows(windows_file).items()):
        labelled = read_labelled(folder, windows_file, name, spans)
        counts = align_counts(labelled.path, labelled.rows, 300)
        triggers = [Trigger(row, "warning") for row in flagged.get(name, [])]
        results.append(FileResult(labelled.series, counts, triggers))
    report = Evaluation(results, read_profiles(folder / "profiles.json"), []).report()
    out = folder / "detections.json"
    out.write_text(json.dumps(detections(results)))
    return report, out


def _nab(detections_file: Path, data_dir: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(NAB_TOOL), str(detections_file), "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _assert_same_scores(ours: dict[str, Any], nab: dict[str, Any]) -> None:
    for p in PROFILE_NAMES:
        assert ours["total"]["score"][p] == pytest.approx(nab["normalized"][p], abs=1e-9), p
        assert ours["total"]["windows_caught"] == nab["profiles"][p]["tp_windows"]
        for name, theirs in nab["files"].items():
            mine = ours["files"][name]
            assert mine["raw"][p] == pytest.approx(theirs["profiles"][p]["raw"], abs=1e-9)
            assert mine["windows_caught"] == theirs["profiles"][p]["tp_windows"]
    for name, theirs in nab["files"].items():
        assert ours["files"][name]["probation_rows"] == theirs["probationary_rows"]
        assert ours["files"][name]["triggers"] == theirs["detections"]
        assert ours["files"][name]["triggers_in_probation"] == theirs["detections_in_probation"]
        nab_windows = theirs["profiles"]["standard"].get("windows")
        if nab_windows is not None:
            assert [w["first_trigger"] for w in ours["files"][name]["windows"]] == [
                w["first_detection"] for w in nab_windows
            ]


# --- the scorer against NAB's --------------------------------------------------------------


@needs_nab_tool
@pytest.mark.parametrize(
    ("case", "profiles"),
    [
        *((case, NAB_PROFILES) for case in DETECTION_SETS),
        ("random", ODD_PROFILES),
        ("false positives around windows", ODD_PROFILES),
    ],
    ids=[*DETECTION_SETS, "random, odd profiles", "false positives, odd profiles"],
)
def test_scores_equal_nabs_on_synthetic_folders(
    tmp_path: Path, case: str, profiles: dict[str, Any]
) -> None:
    _synthetic_folder(tmp_path, profiles)
    ours, detections_file = _our_report(tmp_path, DETECTION_SETS[case])
    _assert_same_scores(ours, _nab(detections_file, tmp_path))


# --- the scorer on its own (hand-worked numbers) -----------------------------------------------


STANDARD = STANDARD_PROFILES["standard"]


def _series(rows: int, windows: list[tuple[int, int]]) -> Series:
    return Series("x.csv", [i * 300.0 for i in range(rows)], windows)


def test_row_weights_follow_nabs_curve() -> None:
    series = _series(2000, [(1000, 1099)])  # 100 rows wide
    assert scaled_sigmoid(0.0) == 0.0 and scaled_sigmoid(3.5) == -1.0
    assert series.weight(999, STANDARD) == -0.11  # before every window
    assert series.weight(1000, STANDARD) == 1.0  # the window's first row: full reward
    assert series.weight(1099, STANDARD) == pytest.approx(
        (2 / (1 + math.exp(-5 / 100)) - 1) / (2 / (1 + math.exp(-5)) - 1)
    )  # its last row: little
    assert series.weight(1100, STANDARD) == pytest.approx(0.11 * (2 / (1 + math.exp(5 / 99)) - 1))
    assert series.weight(1099 + 3 * 99 + 1, STANDARD) == -0.11  # long after: a full false alarm


def test_never_firing_scores_0_and_a_trigger_at_every_window_start_100() -> None:
    series = _series(2000, [(400, 499), (1000, 1099)])
    for costs in STANDARD_PROFILES.values():
        nothing = score_series(series, [], costs)
        assert nothing.normalised == 0.0 and nothing.raw == nothing.null == -2 * costs.fn
        perfect = score_series(series, [400, 1000, 1001, 1050], costs)  # later ones add nothing
        assert perfect.normalised == 100.0
        # the probation (first 300 rows) is not scored: a detection there changes nothing
        assert score_series(series, [0, 299], costs).raw == nothing.raw
        assert score_series(series, [300], costs).raw == pytest.approx(nothing.raw - costs.fp)


def test_a_window_inside_the_probation_is_not_scored() -> None:
    series = _series(2000, [(100, 200), (1000, 1099)])
    scored = score_series(series, [1000], Costs(tp=1.0, fp=0.11, fn=1.0))
    assert scored.null == -1.0 and scored.perfect == 2.0  # NAB counts every window as perfect
    assert scored.first_detection == {1: 1000}


# --- the command ------------------------------------------------------------------------------


SURGE_WINDOW = (1600, 1900)  # rows of the surge series' labelled window (a 3-row surge at 1700)


def _surge_folder(folder: Path) -> Path:
    """Two files of 7 days of 5-minute counts with a daily rhythm, off the 5-minute grid:
    'acme' surges 10x for 15 minutes inside its window, 'globex' has a window and no surge."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(5)
    windows = {}
    for name, surge in (("acme.csv", True), ("globex.csv", False)):
        stamps = _stamps(7 * 288, set())
        values = [
            max(0, round(rng.gauss(120 + 60 * math.sin(2 * math.pi * i / 288), 8)))
            for i in range(len(stamps))
        ]
        if surge:
            values[1700:1703] = [1500, 1600, 1400]
        _write_csv(folder / name, stamps, values)
        windows[name] = [[stamps[SURGE_WINDOW[0]], stamps[SURGE_WINDOW[1]]]]
    (folder / "windows.json").write_text(json.dumps(windows))
    _write_csv(folder / "unlabelled.csv", _stamps(3, set()), [1, 2, 3])
    (folder / "notes.txt").write_text("not a CSV\n")
    return folder


def _evaluate(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(alerts_app(), ["alerts", "evaluate", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def surge_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    """One `--json --detections-out` run on the surge folder: folder, report, stderr."""
    folder = _surge_folder(tmp_path_factory.mktemp("surge"))
    code, out, err = _evaluate(
        str(folder), "--json", "--detections-out", str(folder / "detections.json")
    )
    assert code == 0, err
    return folder, json.loads(out), err


def test_json_report_has_every_field(surge_run: tuple[Path, dict[str, Any], str]) -> None:
    _, report, err = surge_run
    assert set(report["files"]) == {"acme.csv", "globex.csv"}
    assert report["profiles"]["reward_low_FN_rate"] == {"tp": 1.0, "fp": 0.11, "fn": 2.0}
    acme, globex, total = (
        report["files"]["acme.csv"],
        report["files"]["globex.csv"],
        report["total"],
    )
    for part in (acme, globex, total):
        assert set(part["score"]) == set(PROFILE_NAMES)
        for key in (
            "windows_caught",
            "windows_total",
            "delay_minutes_median",
            "triggers",
            "triggers_in_probation",
            "series_weeks",
            "triggers_per_series_week",
            "triggers_by_severity",
        ):
            assert key in part, key
    # 5-minute buckets inferred from the spacing; rows moved back 173 s (:42:53 -> :40:00)
    assert acme["bucket_seconds"] == 300 and acme["aligned_by_seconds"] == 173
    # the scored span: from the first row after the probation (302 rows) to the last row's end
    assert acme["probation_rows"] == 302
    assert acme["series_weeks"] == pytest.approx((2016 - 302) * 300 / (7 * 86_400))
    # the 10x surge is caught within 15 minutes of its start (row 1700, 500 min into the window)
    (window,) = acme["windows"]
    assert acme["windows_caught"] == 1 and window["first_trigger"] is not None
    assert (
        500 <= window["delay_minutes"] <= 515
        and acme["delay_minutes_median"] == window["delay_minutes"]
    )
    assert globex["windows"][0]["first_trigger"] is None and globex["delay_minutes_median"] is None
    assert total["windows_total"] == 2 and total["windows_caught"] == 1 + globex["windows_caught"]
    assert total["triggers"] == acme["triggers"] + globex["triggers"]
    assert sum(total["triggers_by_severity"].values()) == total["triggers"]
    assert report["detector"]["sensitivity"] == "balanced"
    assert "surge_factor" in report["detector"]["settings"]
    assert "not scored (the windows file does not name them): unlabelled.csv" in err


def test_detections_file_is_what_nab_reads(
    tmp_path: Path, surge_run: tuple[Path, dict[str, Any], str]
) -> None:
    folder, report, _ = surge_run
    written = json.loads((folder / "detections.json").read_text())
    assert set(written) == {"acme.csv", "globex.csv"}
    rows = set((folder / "acme.csv").read_text().split("\n"))
    for stamp in written["acme.csv"]:  # each detection is a row's own (unaligned) timestamp
        assert any(line.startswith(stamp + ",") for line in rows)
    assert len(written["acme.csv"]) == report["files"]["acme.csv"]["triggers"]
    if NAB_TOOL.is_file():  # NAB's scorer reads profiles.json: give it the defaults
        nab_dir = tmp_path / "nab"
        nab_dir.mkdir()
        for name in ("acme.csv", "globex.csv", "windows.json"):
            shutil.copy(folder / name, nab_dir / name)
        (nab_dir / "profiles.json").write_text(json.dumps(NAB_PROFILES))
        _assert_same_scores(report, _nab(folder / "detections.json", nab_dir))


def test_table_names_each_file(tmp_path: Path) -> None:
    folder = _surge_folder(tmp_path / "counts")
    code, out, _ = _evaluate(str(folder))
    assert code == 0
    assert "acme.csv" in out and "globex.csv" in out and "total" in out
    assert "standard" in out and "low FP" in out and "low FN" in out and "missed" in out


def _one_row(folder: Path) -> None:
    (folder / "acme.csv").write_text("timestamp,value\n2015-02-26 21:42:53,1\n")
    (folder / "windows.json").write_text('{"acme.csv": []}')


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda f: (f / "windows.json").unlink(),
            "no windows file {f}/windows.json: give --windows",
        ),
        (lambda f: (f / "windows.json").write_text("{"), "{f}/windows.json is not valid JSON"),
        (
            lambda f: (f / "windows.json").write_text('{"acme.txt": []}'),
            "{f}/windows.json: 'acme.txt' is not a CSV file",
        ),
        (
            lambda f: (f / "windows.json").write_text('{"initech.csv": []}'),
            "{f}/windows.json names initech.csv, but {f} has no such file",
        ),
        (
            lambda f: (f / "windows.json").write_text(
                '{"acme.csv": [["2015-03-01 00:00:00", "2015-03-02 00:00:00"]]}'
            ),
            "{f}/windows.json: window time 2015-03-01 00:00:00 of acme.csv is not the timestamp "
            "of a row of acme.csv",
        ),
        (
            lambda f: (f / "windows.json").write_text('{"acme.csv": [["2015-03-01"]]}'),
            "'acme.csv' is not a list of pairs",
        ),
        (
            lambda f: (f / "profiles.json").write_text('{"standard": {}}'),
            "{f}/profiles.json: profile 'standard' needs a CostMatrix",
        ),
        (_one_row, "{f}/acme.csv: one row only, so the bucket length cannot be inferred"),
    ],
)
def test_bad_inputs_are_refused_naming_the_file(tmp_path: Path, change: Any, message: str) -> None:
    folder = tmp_path / "counts"
    folder.mkdir()
    stamps = _stamps(20, set())
    _write_csv(folder / "acme.csv", stamps, [100] * 20)
    (folder / "windows.json").write_text(json.dumps({"acme.csv": [[stamps[5], stamps[9]]]}))
    change(folder)
    code, out, err = _evaluate(str(folder))
    assert code == 2 and out == ""
    assert message.format(f=folder) in " ".join(err.split()), err
    assert "Traceback" not in err


def test_missing_folder_and_profiles_file(tmp_path: Path) -> None:
    code, _, err = _evaluate(str(tmp_path / "nowhere"))
    words = " ".join(err.replace("│", " ").split())  # typer's error box wraps long paths
    assert code == 2 and "Invalid value for 'DIR'" in words and "does not exist" in words
    folder = _surge_folder(tmp_path / "counts")
    code, _, err = _evaluate(str(folder), "--profiles", str(tmp_path / "nope.json"))
    assert code == 2 and f"cannot read the profiles file {tmp_path / 'nope.json'}" in err


# --- the real development counts -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(
    not (DEV_COUNTS / "windows.json").is_file() or not NAB_TOOL.is_file(),
    reason=f"needs the shared development counts ({DEV_COUNTS}) and NAB scorer ({NAB_TOOL})",
)
def test_real_counts_end_to_end_score_as_nab_scores_them(tmp_path: Path) -> None:
    """About 30 s: 5 files x 16k rows through the engine."""
    out_file = tmp_path / "detections.json"
    code, out, err = _evaluate(str(DEV_COUNTS), "--json", "--detections-out", str(out_file))
    assert code == 0, err
    report = json.loads(out)
    assert len(report["files"]) == 5 and report["total"]["windows_total"] == 15
    _assert_same_scores(report, _nab(out_file, DEV_COUNTS))
