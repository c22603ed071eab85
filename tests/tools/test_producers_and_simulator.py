"""`brandmon produce` input handling and the simulator's determinism and spike."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from brandmon.tools.producers import parse_column_map, read_posts
from brandmon.tools.simulate import NEGATIVE, PostSimulator, SimulationConfig, Spike

START = datetime(2026, 11, 22, tzinfo=UTC)


def test_csv_columns_are_mapped_onto_post_fields(tmp_path: Path) -> None:
    path = tmp_path / "posts.csv"
    path.write_text(
        "tweet_id,body,company,ts,user\n"
        "1,great phone,acme,2026-11-22T06:00:00Z,ann\n"
        "2,,acme,2026-11-22T06:00:00Z,bob\n"
    )
    mapping = parse_column_map(
        ["id=tweet_id", "text=body", "brand=company", "created_at=ts", "author=user"]
    )
    first, second = read_posts(path, "auto", mapping)
    assert json.loads(first.value) == {
        "id": "1",
        "text": "great phone",
        "brand": "acme",
        "created_at": "2026-11-22T06:00:00Z",
        "author": "ann",
    }
    assert first.key == b"acme" and first.problem is None
    assert second.problem and "text" in second.problem  # empty text: sent, reported, DLQ'd


def test_missing_csv_columns_say_how_to_map_them(tmp_path: Path) -> None:
    path = tmp_path / "posts.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="--map FIELD=COLUMN"):
        list(read_posts(path, "csv", {}))


@pytest.mark.parametrize("pair", ["text", "=body", "txt=body"])
def test_bad_column_maps_are_refused_with_the_fix(pair: str) -> None:
    with pytest.raises(ValueError, match="--map"):
        parse_column_map([pair])


def test_jsonl_lines_are_sent_as_they_are_and_problems_reported(tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_bytes(
        b'{"id":"1","text":"hi","brand":"acme","created_at":"2026-11-22T06:00:00Z"}\n\noops\n'
    )
    lines = list(read_posts(path, "auto", {}))
    assert [line.number for line in lines] == [1, 3]
    assert lines[0].problem is None and lines[0].key == b"acme"
    assert lines[1].value == b"oops" and "not JSON" in (lines[1].problem or "")


def test_simulator_is_deterministic_and_advances_event_time_at_the_rate() -> None:
    config = SimulationConfig(rate=10.0)
    a = list(PostSimulator(config, START, seed=1).posts(50))
    b = list(PostSimulator(config, START, seed=1).posts(50))
    assert a == b
    assert a[10]["created_at"] == "2026-11-22T00:00:01Z"
    assert len({p["id"] for p in a}) == 50


def test_simulated_spike_raises_the_brands_negative_share_only_inside_it() -> None:
    spike = Spike("acme", start=100, duration=100, negative_share=0.7)
    sim = PostSimulator(SimulationConfig(rate=10.0, spike=spike), START, seed=5)
    posts = list(sim.posts(3000))
    negative = {t.format(b="Acme") for t in NEGATIVE}

    def share(lo: int, hi: int, brand: str) -> float:
        chosen = [p for i, p in enumerate(posts[lo * 10 : hi * 10]) if p["brand"] == brand]
        neg = [p for p in chosen if any(n[:25] in p["text"] for n in negative)]
        return len(neg) / len(chosen)

    assert share(100, 200, "acme") > 0.55
    assert share(0, 100, "acme") < 0.2
    assert share(200, 300, "acme") < 0.2
