"""The dispatcher's core without a broker: a channel's retries, backoff, expiry and dead letters
(explicit clock and sleep), channel independence, and the commit positions."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.dispatch import (
    ChannelWorker,
    DeadLetter,
    InFlight,
    NotifierDispatcher,
    Positions,
    RetryPolicy,
)
from brandmon.alerts.notifiers import DeliveryError
from brandmon.contracts.alerts import Alert
from brandmon.metrics import Metrics
from brandmon.settings import Settings
from tests.alerts.test_notifiers import incident

#: Record timestamps of the tests (seconds since the epoch); the fake clock starts here.
T0 = 1_800_000_000.0


@dataclass
class FakeChannel:
    """Fails with the given errors in order, then accepts; records every attempt."""

    channel: str = "webhook"
    errors: list[Exception] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    gate: asyncio.Event | None = None

    async def send(self, alert: Alert) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.sent.append(alert.alert_id)
        if self.errors:
            raise self.errors.pop(0)


@dataclass
class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    now: float = T0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def entry(offset: int = 0, *, partition: int = 0, age: float = 0.0, **alert: str) -> InFlight:
    trigger, _ = incident()
    return InFlight(
        topic="alerts",
        partition=partition,
        offset=offset,
        timestamp=T0 - age,
        key=b"acme",
        value=None,
        alert=trigger.model_copy(update={"alert_id": f"a{partition}-{offset}", **alert}),
    )


def unavailable() -> DeliveryError:
    return DeliveryError("webhook", "HTTP 503", retryable=True)


class Harness:
    def __init__(self, channel: FakeChannel, policy: RetryPolicy, time: FakeTime) -> None:
        self.metrics = Metrics(CollectorRegistry())
        self.letters: list[DeadLetter] = []
        self.worker = ChannelWorker(
            channel, policy, self.metrics, self.dead_letter, clock=time.clock, sleep=time.sleep
        )

    async def dead_letter(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    def count(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


POLICY = RetryPolicy(initial=0.5, maximum=8.0, max_age=60.0)


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [POLICY.delay(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 8, 8]
    assert POLICY.delay(10_000) == 8.0  # no overflow after days of attempts


def test_retryable_failures_are_retried_until_delivered() -> None:
    time = FakeTime()
    channel = FakeChannel(errors=[unavailable() for _ in range(4)])
    h = Harness(channel, POLICY, time)
    item = entry()
    item.owed.add("webhook")
    assert asyncio.run(h.worker.handle(item)) is True
    assert channel.sent == ["a0-0"] * 5
    assert time.sleeps == [0.5, 1.0, 2.0, 4.0]
    assert h.letters == []
    assert h.count("brandmon_notifier_failures_total", channel="webhook") == 4
    assert h.count("brandmon_notifier_delivered_total", channel="webhook") == 1


def test_an_alert_that_outlives_the_max_age_is_dead_lettered() -> None:
    time = FakeTime()
    channel = FakeChannel(errors=[unavailable() for _ in range(100)])
    h = Harness(channel, POLICY, time)
    assert asyncio.run(h.worker.handle(entry())) is True
    # attempt 11 comes after 0.5+1+2+4+8*6 = 55.5 s; one more would be after the 60 s max age
    assert time.sleeps == [0.5, 1, 2, 4, 8, 8, 8, 8, 8, 8]
    assert len(channel.sent) == 11
    (letter,) = h.letters
    assert (letter.channel, letter.reason, letter.detail, letter.attempts) == (
        "webhook",
        "expired",
        "HTTP 503",
        11,
    )
    assert h.count("brandmon_notifier_dead_letters_total", channel="webhook", reason="expired") == 1
    assert h.count("brandmon_notifier_dropped_total", channel="webhook") == 1
    assert h.count("brandmon_notifier_delivered_total", channel="webhook") == 0


def test_an_alert_already_too_old_is_dead_lettered_without_an_attempt() -> None:
    time = FakeTime()
    channel = FakeChannel()
    h = Harness(channel, POLICY, time)
    assert asyncio.run(h.worker.handle(entry(age=61))) is True  # e.g. read after a long stop
    assert channel.sent == []
    (letter,) = h.letters
    assert (letter.reason, letter.attempts, letter.entry.offset) == ("expired", 0, 0)
    assert letter.detail == "older than the max age before its first attempt"
    assert asyncio.run(h.worker.handle(entry(1, age=59))) is True
    assert channel.sent == ["a0-1"]


def test_a_rejection_is_dead_lettered_at_once() -> None:
    time = FakeTime()
    channel = FakeChannel(errors=[DeliveryError("webhook", "HTTP 400", retryable=False)])
    h = Harness(channel, POLICY, time)
    assert asyncio.run(h.worker.handle(entry())) is True
    assert len(channel.sent) == 1 and time.sleeps == []
    (letter,) = h.letters
    assert (letter.reason, letter.detail) == ("rejected", "HTTP 400")
    assert (
        h.count("brandmon_notifier_dead_letters_total", channel="webhook", reason="rejected") == 1
    )


def test_a_bug_in_a_channel_is_dead_lettered_by_type_only() -> None:
    time = FakeTime()
    channel = FakeChannel(errors=[KeyError("https://hooks.example.com/secret")])
    h = Harness(channel, POLICY, time)
    assert asyncio.run(h.worker.handle(entry())) is True
    (letter,) = h.letters
    assert (letter.reason, letter.detail) == ("error", "KeyError")


def test_a_revoked_or_stopping_entry_is_left_unfinished() -> None:
    time = FakeTime()
    channel = FakeChannel(errors=[unavailable()])
    h = Harness(channel, POLICY, time)
    item = entry()
    item.revoked = True
    assert asyncio.run(h.worker.handle(item)) is False
    h.worker.stop_soon()
    assert asyncio.run(h.worker.handle(entry(1))) is False
    assert channel.sent == [] and h.letters == []


def test_dead_letter_record_says_what_why_and_where() -> None:
    item = entry(7, partition=2)
    letter = DeadLetter(item, "pagerduty", "expired", "HTTP 503", 12, T0 + 3600)
    record = json.loads(letter.to_json())
    assert record["reason"] == "expired" and record["channel"] == "pagerduty"
    assert record["detail"] == "HTTP 503" and record["attempts"] == 12
    assert record["alert_id"] == "a2-7"
    assert record["source"]["partition"] == 2 and record["source"]["offset"] == 7
    assert record["source"]["topic"] == "alerts"
    assert Alert.model_validate(record["alert"]) == item.alert
    unreadable = InFlight("alerts", 0, 3, T0, None, b"{not json", None)
    raw = json.loads(DeadLetter(unreadable, "all", "unreadable", "not an alert", 0, T0).to_json())
    assert raw["alert"] is None and raw["value"] == "{not json"


def test_positions_commit_up_to_the_first_unfinished_record() -> None:
    positions = Positions()
    items = [entry(offset) for offset in (10, 11, 12)] + [entry(5, partition=1)]
    for item in items:
        item.owed = {"slack", "webhook"}
        positions.add(item)
    assert positions.ready() == {}
    items[1].owed.clear()  # 11 done, 10 not: nothing to commit on partition 0
    items[3].owed.discard("slack")
    assert positions.ready() == {}
    items[0].owed.clear()
    assert positions.ready() == {0: 12}
    positions.committed({0: 12})
    assert positions.ready() == {}  # unchanged since the last commit
    items[3].owed.clear()
    items[2].owed.clear()
    assert positions.ready() == {0: 13, 1: 6}
    assert positions.ready([1]) == {1: 6}
    assert positions.in_flight() == 0


def test_revoked_partitions_are_forgotten_and_their_records_skipped() -> None:
    positions = Positions()
    first, second = entry(0), entry(0, partition=1)
    for item in (first, second):
        item.owed = {"webhook"}
        positions.add(item)
    positions.revoke([1])
    assert second.revoked and not first.revoked
    second.owed.clear()  # a late finish of a revoked record commits nothing
    assert positions.ready() == {}
    assert positions.in_flight() == 1


def test_a_stuck_channel_does_not_hold_back_the_others() -> None:
    async def scenario() -> tuple[FakeChannel, FakeChannel, dict[int, int], list[InFlight]]:
        slow = FakeChannel("pagerduty", gate=asyncio.Event())
        fast = FakeChannel("slack")
        time = FakeTime()
        workers = [Harness(c, POLICY, time).worker for c in (slow, fast)]
        positions = Positions()
        items = [entry(offset) for offset in range(3)]
        for item in items:
            item.owed = {"pagerduty", "slack"}
            positions.add(item)
            for worker in workers:
                worker.put(item)
        tasks = [asyncio.create_task(w.run()) for w in workers]
        for _ in range(50):
            await asyncio.sleep(0)
        stuck = positions.ready()
        assert slow.gate is not None
        slow.gate.set()
        for _ in range(50):
            await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return slow, fast, stuck, items

    slow, fast, stuck, items = asyncio.run(scenario())
    assert fast.sent == ["a0-0", "a0-1", "a0-2"]  # delivered while PagerDuty hung
    assert stuck == {}  # but nothing committed while PagerDuty owed the first
    assert slow.sent == ["a0-0", "a0-1", "a0-2"]  # in order, once released
    assert all(not item.owed for item in items)


def test_health_before_start_and_without_channels() -> None:
    settings = Settings(alerts=AlertSettings(log_notifier=False))
    dispatcher = NotifierDispatcher(settings, Metrics(CollectorRegistry()))
    assert dispatcher.healthy() == (False, "notifier dispatcher not started")
    asyncio.run(dispatcher.run())  # nothing to deliver to: returns at once
    assert dispatcher.healthy() == (True, "no notification channel configured")


def test_health_is_false_when_the_loop_died(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(alerts=AlertSettings())  # the log channel only
    dispatcher = NotifierDispatcher(settings, Metrics(CollectorRegistry()))

    async def broken(stack: object) -> None:
        raise OSError("boom")

    monkeypatch.setattr(dispatcher, "_start", broken)
    asyncio.run(dispatcher.run())  # logged, not raised
    ok, detail = dispatcher.healthy()
    assert not ok and "OSError" in detail
