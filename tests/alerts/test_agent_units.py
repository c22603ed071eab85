"""The alert agent's pure part (apply_all) and its bounds, with a fake Faust app: unreadable
records on posts.scored are dead-lettered, a silent brand's incident resolves on the other
brands' progress, and per-brand series stay within max_brand_series."""

from __future__ import annotations

import json
from typing import Any

import pytest

from brandmon.alerts.agent import AlertAgent
from brandmon.metrics import Metrics
from brandmon.settings import Settings
from tests.alerts.streams import traffic


class FakeTable(dict):  # type: ignore[type-arg]
    def __init__(self) -> None:
        super().__init__()
        self.data = self

    def send_changelog(self, partition: int, key: bytes, value: Any) -> Any:
        raise AssertionError("not used by apply_all")


class FakeApp:
    def topic(self, name: str, **kw: Any) -> str:
        return name

    def Table(self, name: str, **kw: Any) -> FakeTable:
        return FakeTable()

    def agent(self, *args: Any, **kw: Any) -> Any:
        return lambda fn: fn


class Message:
    def __init__(self, partition: int, offset: int, value: bytes | None, key: bytes) -> None:
        self.topic = "posts.scored"
        self.partition = partition
        self.offset = offset
        self.value = value
        self.key = key


class Event:
    def __init__(self, message: Message) -> None:
        self.message = message


def agent(**settings: Any) -> tuple[AlertAgent, Metrics]:
    metrics = Metrics()
    return AlertAgent(FakeApp(), Settings(**settings), metrics), metrics  # type: ignore[arg-type]


def events(posts: list[Any], start: int = 0, partition: int = 0) -> list[Event]:
    return [
        Event(Message(partition, start + i, p.model_dump_json().encode(), p.brand.encode()))
        for i, p in enumerate(posts)
    ]


def commit(a: AlertAgent, outcome: Any) -> None:
    """What persist() does to the table, without a changelog."""
    for key, (_, state) in outcome.states.items():
        a.table[key] = state.to_dict()
    a.account(outcome)


def test_unreadable_scored_records_are_dead_lettered_with_their_reason() -> None:
    a, metrics = agent()
    bad = [Event(Message(0, 0, b"not json", b"acme")), Event(Message(0, 1, None, b"acme"))]
    outcome = a.apply_all(bad)  # type: ignore[arg-type]
    letters = [json.loads(o.value) for o in outcome.outputs if o.topic == "posts.scored.dlq"]
    assert [(d["offset"], d["reason"]) for d in letters] == [
        (0, "invalid_json"),
        (1, "empty_value"),
    ]
    assert metrics.registry.get_sample_value("brandmon_alert_input_invalid_total") == 2


def test_a_silent_brand_resolves_as_other_brands_on_its_partition_move_on() -> None:
    a, _ = agent(alerts={"quiet_seconds": 180})
    spike = traffic(range(0, 3), 100, 0.6, brand="quiet")
    outcome = a.apply_all(events(spike))  # type: ignore[arg-type]
    commit(a, outcome)
    assert [x.action for r in outcome.results for x in r.alerts] == ["trigger"]
    # the brand goes silent; another brand on the same partition keeps posting
    others = traffic(range(3, 15), 60, 0.1, brand="busy")
    actions = []
    for i in range(0, len(others), 60):
        outcome = a.apply_all(events(others[i : i + 60], start=1000 + i))  # type: ignore[arg-type]
        commit(a, outcome)
        actions += [(x.brand, x.action) for r in outcome.results for x in r.alerts]
    assert actions == [("quiet", "resolve")]


def test_per_brand_series_stay_within_the_cap_evicting_the_least_recent() -> None:
    a, metrics = agent(max_brand_series=3)
    for n in range(5):
        posts = traffic(range(0, 3), 20, 0.1, brand=f"b{n}")
        commit(a, a.apply_all(events(posts, start=n * 1000)))  # type: ignore[arg-type]
    shown = {
        s.labels["brand"]
        for m in metrics.registry.collect()
        if m.name == "brandmon_brand_posts_window"
        for s in m.samples
    }
    assert shown == {"b2", "b3", "b4"}
    assert metrics.registry.get_sample_value("brandmon_brand_series_evicted_total") == 2


def test_the_agent_judges_each_brand_with_its_overrides(tmp_path: Any) -> None:
    """acme is on `fewer` in the overrides file: the same 15% -> 32% spike pages for globex
    (defaults) and not for acme; a bad file stops the agent at start naming the brand."""
    from brandmon.alerts.overrides import OverridesError
    from tests.alerts.streams import by_time

    overrides = tmp_path / "overrides.toml"
    overrides.write_text('[acme]\nsensitivity = "fewer"\n')
    a, _ = agent(alerts={"surge_enabled": False, "overrides_file": overrides})
    posts = []
    for brand in ("acme", "globex"):
        posts += traffic(range(60), 100, 0.15, brand=brand) + traffic(
            range(60, 70), 100, 0.32, brand=brand
        )
    triggered = set()
    ordered = list(by_time(posts))
    for i in range(0, len(ordered), 500):
        outcome = a.apply_all(events(ordered[i : i + 500], start=i))  # type: ignore[arg-type]
        commit(a, outcome)
        triggered |= {x.brand for r in outcome.results for x in r.alerts if x.action == "trigger"}
    assert triggered == {"globex"}
    overrides.write_text("[acme]\nmin_posts = 0\n")
    with pytest.raises(OverridesError, match="brand 'acme': field 'min_posts'"):
        agent(alerts={"overrides_file": overrides})


def test_a_damaged_stored_state_starts_the_brand_afresh_instead_of_stopping_the_worker() -> None:
    """A state the worker cannot read (say a field cut short) must not crash the worker: it
    would restart into the same changelog record and no brand would be watched. The brand
    starts afresh, counted; other brands and the damaged brand's new posts are applied."""
    a, metrics = agent()
    posts = traffic(range(0, 3), 20, 0.1) + traffic(range(0, 3), 20, 0.1, brand="globex")
    commit(a, a.apply_all(events(posts)))  # type: ignore[arg-type]
    damaged = dict(a.table[b"acme"])
    del damaged["share"]
    a.table[b"acme"] = damaged
    more = traffic(range(3, 5), 20, 0.1) + traffic(range(3, 5), 20, 0.1, brand="globex")
    outcome = a.apply_all(events(more, start=1000))  # type: ignore[arg-type]
    assert metrics.registry.get_sample_value("brandmon_alert_state_resets_total") == 1
    assert {key for key in outcome.states} == {b"acme", b"globex"}
    fresh = outcome.states[b"acme"][1]
    assert fresh.brand == "acme" and fresh.share.weight == 0  # its baseline starts again
    commit(a, outcome)
    assert "share" in a.table[b"acme"]  # the damaged record is replaced, once


def test_a_state_of_another_brandmon_version_stops_the_worker() -> None:
    """A state written by a newer brandmon is not overwritten: the worker stops, saying so."""
    from brandmon.alerts.state import StateVersionError

    a, _ = agent()
    commit(a, a.apply_all(events(traffic(range(0, 2), 20, 0.1))))  # type: ignore[arg-type]
    a.table[b"acme"] = {**a.table[b"acme"], "v": 99}
    with pytest.raises(StateVersionError, match="run the matching brandmon version"):
        a.apply_all(events(traffic(range(2, 3), 20, 0.1), start=500))  # type: ignore[arg-type]
