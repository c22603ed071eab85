"""/ready tells the truth (brandmon/web.py): never ready while an agent has crashed or has
delivered nothing for stall_seconds while its partitions have records waiting; ready while
it is merely idle. A fake app and clock stand in for Faust (pure logic)."""

from __future__ import annotations

from dataclasses import dataclass

from brandmon.batches import Progress
from brandmon.metrics import Metrics
from brandmon.settings import Settings
from brandmon.web import Health


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


class FakeConsumer:
    def __init__(self, assigned: set[TP]) -> None:
        self.assigned = assigned

    def assignment(self) -> set[TP]:
        return self.assigned


class FakeApp:
    def __init__(self, assigned: set[TP]) -> None:
        self.started = True
        self.consumer = FakeConsumer(assigned)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def health(checks=()) -> tuple[Health, Progress, Clock, Metrics]:  # type: ignore[no-untyped-def]
    clock = Clock()
    progress = Progress("score", clock=clock)
    metrics = Metrics()
    app = FakeApp({TP("posts", 0), TP("posts", 1)})
    settings = Settings(stall_seconds=60)
    h = Health(
        app,  # type: ignore[arg-type]
        settings,
        metrics,
        group="g",
        topic="posts",
        agents=[progress],
        checks=checks,
    )
    return h, progress, clock, metrics


def stalled_gauge(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("brandmon_agent_stalled", {"agent": "score"})


def test_an_idle_worker_with_nothing_waiting_stays_ready() -> None:
    h, _, clock, metrics = health()
    clock.now += 3600
    h.refresh({0: 0, 1: 0, 2: 500})  # partition 2 is another worker's
    assert h.ready()[0]
    assert stalled_gauge(metrics) == 0


def test_no_progress_while_records_wait_is_not_ready() -> None:
    h, progress, clock, metrics = health()
    h.refresh({0: 0, 1: 12})
    clock.now += 30
    assert h.ready()[0]  # within stall_seconds
    clock.now += 31
    h.refresh({0: 0, 1: 12})
    ok, why = h.ready()
    assert not ok and "12 records wait" in why
    assert stalled_gauge(metrics) == 1
    progress.moved(12)  # it delivers again
    h.refresh({0: 0, 1: 0})
    assert h.ready()[0] and stalled_gauge(metrics) == 0


def test_a_crashed_agent_or_a_failing_check_is_not_ready() -> None:
    h, progress, _, _ = health()
    progress.crashed = "FatalDeliveryError: cannot write to topic 'posts.scored'"
    ok, why = h.ready()
    assert not ok and "posts.scored" in why

    h, _, _, _ = health(checks=[lambda: (False, "notifier dispatcher loop died")])
    assert h.ready() == (False, "notifier dispatcher loop died")


def test_a_worker_without_partitions_is_not_ready() -> None:
    h, _, _, _ = health()
    h.app.consumer.assigned = set()  # type: ignore[attr-defined]
    assert not h.ready()[0]
