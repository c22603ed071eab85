"""tests.helpers.wait_for_progress, which the Kafka fault tests wait with (issue 17): it keeps
waiting while the count grows, gives up after a stretch without progress or at its cap, and
says what it waited for."""

from __future__ import annotations

import itertools

import pytest

from tests.helpers import Stalled, wait_for_progress


def test_waits_past_the_stall_time_while_the_count_keeps_growing() -> None:
    counts = itertools.count()
    # 0.05 s per step, 40 steps: far longer than the 0.5 s stall, but never stalled
    got = wait_for_progress(
        "40 records", lambda: next(counts), lambda n: n >= 40, stall=0.5, cap=30, poll=0.05
    )
    assert got == 40


def test_gives_up_after_the_stall_and_says_what_it_waited_for() -> None:
    values = iter([1, 2, 3])

    def measure() -> float:
        return next(values, 3)

    with pytest.raises(Stalled) as stalled:
        wait_for_progress(
            "10 ids on posts.scored",
            measure,
            lambda n: n >= 10,
            stall=0.3,
            cap=30,
            report=lambda: "missing: p3..p9",
            poll=0.05,
        )
    message = str(stalled.value)
    assert "10 ids on posts.scored" in message and "no progress for" in message
    assert "(at 3)" in message and "missing: p3..p9" in message


def test_gives_up_at_the_cap_even_while_moving() -> None:
    counts = itertools.count()
    with pytest.raises(Stalled, match="still moving after the 0 s cap"):
        wait_for_progress(
            "the end", lambda: next(counts), lambda n: False, stall=10, cap=0.3, poll=0.05
        )


def test_a_failing_measure_is_raised_at_once() -> None:
    def measure() -> float:
        raise AssertionError("the worker exited")

    with pytest.raises(AssertionError, match="the worker exited"):
        wait_for_progress("anything", measure, lambda n: True, stall=10, cap=10)
