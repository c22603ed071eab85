"""`brandmon alerts backtest`: scored posts and counts CSVs through the worker's engine."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from brandmon.alerts.cli import CHANNEL_VARIABLES
from tests.alerts.harness import alerts_app
from tests.alerts.streams import T0, traffic

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import brandmon.redaction as redaction

    for name in CHANNEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(redaction, "_active", [])


def _counts_csv(path: Path, values: list[int], *, bucket: int = 3600, shift: int = 0) -> Path:
    lines = ["timestamp,value"]
    for i, value in enumerate(values):
        lines.append(f"{T0 + timedelta(seconds=i * bucket + shift):%Y-%m-%d %H:%M:%S},{value}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _rhythm(days: int) -> list[int]:
    rng = random.Random(3)
    return [round(rng.gauss(100 if h % 24 < 8 else 400, 12)) for h in range(days * 24)]


def _invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(alerts_app(), ["alerts", "backtest", *args])
    return result.exit_code, result.stdout, result.stderr


def test_counts_csv_prints_the_alert_events_and_a_summary(tmp_path: Path) -> None:
    values = _rhythm(14) + [100] * 3 + [500, 520, 100, 100, 100]  # 3 and 4 am at noon's level
    csv = _counts_csv(tmp_path / "acme.csv", values)
    code, out, err = _invoke("--counts", str(csv), "--bucket-seconds", "3600")
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["action"], e["rule"]) for e in events] == [
        ("trigger", "mention_surge"),
        ("resolve", "quiet"),
    ]
    assert {e["dedup_key"] for e in events} == {"brandmon/acme/surge/20260119T030000Z"}
    summary = json.loads(err)
    assert summary["incidents"] == 1 and summary["incidents_by_rule"] == {"mention_surge": 1}
    assert summary["brand_days"] == pytest.approx(14 + 8 / 24, abs=1e-3)
    assert summary["time_to_detect_seconds"]["max"] == 3600
    assert summary["mean_duration_seconds"] == 4 * 3600
    assert summary["open_at_end"] == 0


def test_counts_off_the_bucket_grid_are_moved_onto_it_and_say_so(tmp_path: Path) -> None:
    """Rows stamped at :42:53 of every hour (as NAB's Twitter counts are) replay as the
    buckets they start in: the same alert events as rows stamped on the hour, and one line
    on stderr with the offset. (Such rows used to be refused.)"""
    values = _rhythm(14) + [100] * 3 + [500, 520, 100, 100, 100]
    (tmp_path / "grid").mkdir()
    on_grid = _counts_csv(tmp_path / "grid" / "acme.csv", values)
    off_grid = _counts_csv(tmp_path / "acme.csv", values, shift=42 * 60 + 53)
    _, expected, _ = _invoke("--counts", str(on_grid), "--bucket-seconds", "3600")
    code, out, err = _invoke("--counts", str(off_grid), "--bucket-seconds", "3600")
    assert code == 0, err
    assert out == expected and "surge/20260119T030000Z" in out
    note, *summary = err.splitlines()
    assert note == (
        f"brandmon alerts backtest: {off_grid}: rows are stamped 2573 s after the start of "
        "their 3600-second bucket; every timestamp was moved back by 2573 s onto the bucket "
        "grid (alert times are on the grid)"
    )
    assert json.loads("\n".join(summary))["incidents"] == 1
    # rows already on the grid: nothing to say
    _, _, err = _invoke("--counts", str(on_grid), "--bucket-seconds", "3600", "--summary-only")
    assert err == ""


def test_counts_brand_and_summary_only(tmp_path: Path) -> None:
    csv = _counts_csv(tmp_path / "series.csv", _rhythm(3))
    code, out, _ = _invoke(
        "--counts", str(csv), "--bucket-seconds", "3600", "--brand", "globex", "--summary-only"
    )
    assert code == 0
    summary = json.loads(out)
    assert summary["incidents_per_brand"] == {"globex": 0}
    assert summary["outcomes"] == {"applied": 72}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("time,count\n2026-01-05 00:00:00,1\n", "the header must be 'timestamp,value'"),
        ("timestamp,value\n2026-01-05T00:00:00,1\n", "csv:2: timestamp '2026-01-05T00:00:00'"),
        ("timestamp,value\n2026-01-05 00:00:00,1\n2026-01-05 01:00:00,-3\n", "csv:3: value '-3'"),
        ("timestamp,value\n2026-01-05 00:00:00,2.5\n", "csv:2: value '2.5' is not a whole"),
        (
            "timestamp,value\n2026-01-05 00:30:00,2\n2026-01-05 02:00:00,2\n",
            "csv:3: 2026-01-05 02:00:00 is not a whole number of 3600-second buckets after the "
            "first row (2026-01-05 00:30:00): rows must be evenly spaced",
        ),
        (
            "timestamp,value\n2026-01-05 01:00:00,2\n2026-01-05 00:00:00,2\n",
            "csv:3: 2026-01-05 00:00:00 is not after the previous row",
        ),
        ("timestamp,value\n2026-01-05 00:00:00\n", "csv:2: expected 2 fields"),
        ("timestamp,value\n", "no rows after the header"),
    ],
)
def test_bad_counts_csv_is_refused_naming_the_line(
    tmp_path: Path, content: str, message: str
) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(content)
    code, out, err = _invoke("--counts", str(csv), "--bucket-seconds", "3600")
    assert code == 2 and out == ""
    assert message in err
    assert "Traceback" not in err


def test_counts_need_a_bucket_length_and_an_existing_file(tmp_path: Path) -> None:
    csv = _counts_csv(tmp_path / "a.csv", [1, 2])
    code, _, err = _invoke("--counts", str(csv))
    assert code == 2 and "--bucket-seconds" in err
    code, _, err = _invoke("--counts", str(tmp_path / "missing.csv"), "--bucket-seconds", "60")
    assert code == 2 and "cannot read" in err and "missing.csv" in err
    code, _, err = _invoke()
    assert code == 2 and "either a JSONL file" in err


def test_scored_posts_replay_both_rules(tmp_path: Path) -> None:
    posts = traffic(range(60), 100, 0.15) + traffic(range(60, 70), 300, 0.6, tag="s")
    posts += traffic(range(70, 100), 100, 0.15)
    random.Random(1).shuffle(posts[-400:])  # a little disorder inside the lateness
    jsonl = tmp_path / "scored.jsonl"
    jsonl.write_text("\n".join(p.model_dump_json() for p in posts) + "\n")
    code, out, err = _invoke(str(jsonl))
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    rules = {e["dedup_key"]: e["rule"] for e in events if e["action"] == "trigger"}
    assert rules == {
        "brandmon/acme/20260105T010000Z": "baseline",
        "brandmon/acme/surge/20260105T010000Z": "mention_surge",
    }
    assert sum(e["action"] == "resolve" for e in events) == 2
    summary = json.loads(err)
    assert summary["incidents"] == 2 and summary["open_at_end"] == 0
    assert summary["incidents_by_rule"] == {"baseline": 1, "mention_surge": 1}


def test_a_bad_jsonl_line_is_named(tmp_path: Path) -> None:
    jsonl = tmp_path / "scored.jsonl"
    good = traffic(range(1), 2, 0.5)[0].model_dump_json()
    jsonl.write_text(good + "\n" + '{"id": "x"}\n')
    code, out, err = _invoke(str(jsonl))
    assert code == 2 and out == ""
    assert "scored.jsonl:2: not a scored post" in err
