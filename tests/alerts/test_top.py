"""`brandmon top` without Kafka: the view model (incidents, deduplication, order, sparkline,
bounds) and the screen drawn on rich's recording Console."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from brandmon.alerts.top import SPARK_BLOCKS, Frame, TopView, parse_duration
from brandmon.alerts.top_table import render
from brandmon.contracts.alerts import Alert, BrandBucket
from tests.alerts.top_records import T0, alert, bucket


def fold(*records: BrandBucket | Alert, **kwargs: int) -> TopView:
    view = TopView(**kwargs)  # type: ignore[arg-type]
    for record in records:
        if isinstance(record, BrandBucket):
            view.add_bucket(record)
        else:
            view.add_alert(record)
    return view


def screen(frame: Frame, buckets: int = 30, width: int = 160) -> str:
    console = Console(record=True, width=width, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(render(frame, buckets=buckets, width=width))
    return console.export_text()


# --- incidents -------------------------------------------------------------------------------


def test_trigger_opens_escalation_raises_resolve_closes() -> None:
    view = fold(bucket("acme", 0), alert("acme", 5, severity="warning"))
    (row,) = view.frame().rows
    assert [(i.severity, i.rule) for i in row.incidents] == [("warning", "baseline")]

    view.add_alert(alert("acme", 7, severity="critical", started=5))
    (row,) = view.frame().rows
    assert [i.severity for i in row.incidents] == ["critical"]  # one incident, escalated
    assert view.frame().open_incidents == 1

    view.add_alert(alert("acme", 30, "resolve", "critical", rule="quiet", started=5))
    frame = view.frame()
    assert frame.open_incidents == 0
    assert frame.rows[0].incidents == ()


def test_incident_rows_without_buckets_still_show() -> None:
    frame = fold(alert("ghost", 5, severity="critical")).frame()
    assert [r.brand for r in frame.rows] == ["ghost"]
    assert frame.rows[0].latest is None


def test_late_or_repeated_trigger_after_resolve_does_not_reopen() -> None:
    trigger = alert("acme", 5)
    resolve = alert("acme", 30, "resolve", rule="quiet", started=5)
    # out of order: the resolve is read first, then its trigger
    assert fold(resolve, trigger).frame().open_incidents == 0
    # at-least-once: the trigger is delivered again after its resolve
    assert fold(trigger, resolve, trigger).frame().open_incidents == 0


def test_bucket_marked_incident_counts_until_a_resolve_is_read() -> None:
    marked = bucket("acme", 10, 0.4, state="incident")
    frame = fold(marked).frame()
    assert frame.rows[0].in_incident  # its trigger is older than what was read
    assert "open (trigger older than what was read)" in screen(frame)
    # the brand went silent; its incident resolved after its last bucket
    resolve = alert("acme", 30, "resolve", rule="quiet", started=5)
    (row,) = fold(marked, resolve).frame().rows
    assert not row.in_incident


def test_share_and_surge_incidents_of_one_brand_both_show() -> None:
    view = fold(
        alert("acme", 5, severity="warning"),
        alert("acme", 6, severity="critical", rule="mention_surge", kind="surge/"),
    )
    (row,) = view.frame().rows
    assert [(i.severity, i.rule) for i in row.incidents] == [
        ("critical", "mention_surge"),
        ("warning", "baseline"),
    ]


# --- duplicates and order --------------------------------------------------------------------


def test_duplicate_records_change_nothing() -> None:
    records = [bucket("acme", m, 0.1 + m / 100) for m in range(5)] + [alert("acme", 4)]
    once = fold(*records).frame()
    twice = fold(*records, *records).frame()
    assert twice.rows == once.rows
    assert twice.open_incidents == once.open_incidents == 1


def test_latest_bucket_is_the_newest_by_bucket_start_not_by_arrival() -> None:
    view = fold(bucket("acme", 9, 0.5, posts=90), bucket("acme", 3, 0.1, posts=30))
    latest = view.frame().rows[0].latest
    assert latest is not None
    assert (latest.posts, latest.share) == (90, 0.5)


records_strategy = st.permutations(
    [bucket("acme", m, 0.1 + 0.05 * (m % 4)) for m in range(8)]
    + [bucket("zeta", m, 0.2, z=float(m)) for m in range(4)]
    + [
        alert("acme", 4),
        alert("acme", 6, severity="critical", started=4),
        alert("zeta", 2),
        alert("zeta", 3, "resolve", rule="quiet", started=2),
    ]
)


@given(records_strategy, st.lists(st.integers(0, 15), max_size=10))
def test_any_order_with_repeats_draws_the_same_screen(
    records: list[BrandBucket | Alert], repeats: list[int]
) -> None:
    expected = fold(*sorted(records, key=_event_time)).frame()
    shuffled = fold(*records, *(records[i] for i in repeats)).frame()
    assert shuffled.rows == expected.rows
    assert shuffled.open_incidents == expected.open_incidents == 1


def _event_time(record: BrandBucket | Alert) -> datetime:
    return record.bucket_start if isinstance(record, BrandBucket) else record.evaluated_at


# --- ordering --------------------------------------------------------------------------------


def test_open_incidents_first_most_severe_first_then_highest_z() -> None:
    view = fold(
        bucket("calm", 0, z=0.5),
        bucket("hot", 0, z=2.9),
        bucket("warm", 0, z=1.0),
        bucket("paged", 0, z=1.0),
        bucket("noted", 0, z=4.0),
        bucket("unknown", 0, z=None),
        bucket("stale-incident", 0, z=0.1, state="incident"),
        alert("paged", 0, severity="critical"),
        alert("noted", 0, severity="warning"),
    )
    assert [r.brand for r in view.frame().rows] == [
        "paged",
        "noted",
        "stale-incident",  # the alert stage says incident; its trigger was not read
        "hot",
        "warm",
        "calm",
        "unknown",
    ]


# --- sparkline -------------------------------------------------------------------------------


def test_sparkline_is_time_ordered_scaled_to_the_highest_share_with_gaps_blank() -> None:
    view = fold(
        bucket("acme", 3, 0.40, baseline=0.10),
        bucket("acme", 0, 0.10, baseline=0.10),
        bucket("acme", 1, 0.20, baseline=0.10),
        # minute 2: no posts, so no record on brand.sentiment
        bucket("acme", 4, 0.00, baseline=0.10),
    )
    row = view.frame().rows[0]
    lo, hi = SPARK_BLOCKS[0], SPARK_BLOCKS[-1]
    assert row.sparkline == f"{SPARK_BLOCKS[2]}{SPARK_BLOCKS[4]} {hi}{lo}"


def test_sparkline_draws_a_calm_brand_at_half_height_and_a_doubling_at_the_top() -> None:
    calm = fold(*(bucket("acme", m, 0.10, baseline=0.10) for m in range(3)))
    assert calm.frame().rows[0].sparkline == SPARK_BLOCKS[4] * 3  # 0.10 of 0.20: mid-height
    doubled = fold(bucket("acme", 0, 0.10, baseline=0.10), bucket("acme", 1, 0.20, baseline=0.10))
    assert doubled.frame().rows[0].sparkline == SPARK_BLOCKS[4] + SPARK_BLOCKS[-1]


def test_sparkline_is_at_most_the_kept_buckets_wide() -> None:
    view = fold(*(bucket("acme", m, 0.2) for m in range(50)), buckets_kept=12)
    assert len(view.frame().rows[0].sparkline) == 12


# --- bounds ----------------------------------------------------------------------------------


def test_keeps_only_the_last_buckets_and_drops_older_late_ones() -> None:
    view = fold(*(bucket("acme", m, 0.2, posts=m + 1) for m in range(20)), buckets_kept=5)
    assert not view.add_bucket(bucket("acme", 2, 0.9))  # older than all five kept
    assert len(view._brands["acme"].buckets) == 5
    assert min(view._brands["acme"].buckets) == bucket("acme", 15).bucket_start


def test_brand_cap_forgets_the_least_recent_brand_without_an_incident() -> None:
    view = fold(
        alert("oldest", 0),
        bucket("oldest", 0),
        bucket("older", 1),
        bucket("newer", 2),
        bucket("newest", 3),
        max_brands=3,
    )
    assert sorted(r.brand for r in view.frame().rows) == ["newer", "newest", "oldest"]


def test_limit_shows_the_most_urgent_and_counts_the_rest() -> None:
    view = fold(*(bucket(f"b{n:02}", 0, z=float(n)) for n in range(12)))
    frame = view.frame(limit=4)
    assert [r.brand for r in frame.rows] == ["b11", "b10", "b09", "b08"]
    assert frame.hidden == 8


# --- raw records and the filter --------------------------------------------------------------


def test_unreadable_records_are_counted_with_their_reason_not_raised() -> None:
    view = TopView()
    view.add_raw("bucket", b"not json", where="brand.sentiment/0/7")
    view.add_raw("alert", b'{"brand": "acme"}', where="alerts/1/3")
    view.add_raw("alert", None, where="alerts/1/4")
    view.add_raw("bucket", bucket("acme", 0).model_dump_json().encode())
    frame = view.frame()
    assert (frame.records, frame.skipped) == (4, 3)
    assert frame.last_skip_reason == "alerts/1/4 empty value (tombstone)"
    assert [r.brand for r in frame.rows] == ["acme"]


def test_brand_filter_keeps_only_the_named_brands() -> None:
    view = TopView(brands={"acme"})
    for record in (bucket("acme", 0), bucket("zeta", 0), alert("zeta", 0)):
        view.add_raw(
            "bucket" if isinstance(record, BrandBucket) else "alert",
            record.model_dump_json().encode(),
        )
    frame = view.frame()
    assert [r.brand for r in frame.rows] == ["acme"]
    assert frame.open_incidents == 0


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_says_what_it_takes() -> None:
    with pytest.raises(ValueError, match=r"give e\.g\. 90s, 15m, 1h or 2d"):
        parse_duration("an hour")


# --- the screen ------------------------------------------------------------------------------


def test_screen_shows_brands_shares_baselines_and_incidents() -> None:
    view = fold(
        *(bucket("acme", m, 0.15) for m in range(4)),
        bucket("acme", 4, 0.42, posts=283, baseline=0.156, std=0.017, z=8.8, state="incident"),
        bucket("zeta", 4, 0.08, posts=51, baseline=None, std=None, z=None, state="warmup"),
        alert("acme", 2, severity="warning"),
        alert("acme", 3, severity="critical", started=2),
    )
    text = screen(view.frame())
    lines = text.splitlines()
    assert "brandmon top  ·  2 brands  ·  1 open incident  ·  data until 2026-01-05 02:05 UTC" in (
        text
    )
    acme = next(line for line in lines if "acme" in line)
    zeta = next(line for line in lines if "zeta" in line)
    assert lines.index(acme) < lines.index(zeta)  # the incident first
    for cell in ("283", "42.0%", "15.6%", "8.8", "CRITICAL baseline since 02:02"):
        assert cell in acme, (cell, acme)
    assert "8.0%" in zeta and "warm-up" in zeta and "CRITICAL" not in zeta
    assert "▃▃▃▃█" in acme  # four calm buckets at 15%, then the spike to 42%


def test_screen_dates_an_incident_from_an_earlier_day() -> None:
    view = fold(bucket("acme", 24 * 60), alert("acme", 30, severity="critical"))
    assert "CRITICAL baseline since 2026-01-05 02:30" in screen(view.frame())


def test_narrow_terminal_keeps_brand_numbers_and_incidents() -> None:
    view = fold(
        *(bucket("acme", m, 0.15) for m in range(30)),
        bucket("globex-international", 29, 0.3, z=0.5),
        alert("acme", 29, severity="critical"),
    )
    text = screen(view.frame(), width=80)
    acme = next(line for line in text.splitlines() if "acme" in line)
    assert "15.0%" in acme and "CRITICAL" in acme
    assert "since 02:29" in text  # the incident column is not cropped at the right edge
    assert "globex-intern…" in text  # a long name is cut, not wrapped over the numbers
    assert "globex-international" in screen(view.frame(), width=160)  # whole when there is room


def test_screen_says_what_is_left_out() -> None:
    view = fold(*(bucket(f"b{n:02}", 0) for n in range(7)))
    view.add_raw("alert", b"{}", where="alerts/0/9")
    text = screen(view.frame(limit=3))
    assert "+4 more brands" in text
    assert "skipped 1 unreadable record(s)" in text and "alerts/0/9" in text


def test_screen_says_how_old_the_newest_bucket_is_and_passes_notices() -> None:
    frame = fold(bucket("acme", 0)).frame()  # ends 02:01
    console = Console(record=True, width=160, file=open("/dev/null", "w"))  # noqa: SIM115
    now = T0 + timedelta(minutes=4, seconds=30)
    console.print(render(frame, buckets=30, now=now, notices=["Kafka: broker down (retrying)"]))
    text = console.export_text()
    assert "data until 2026-01-05 02:01 UTC (3 min ago)" in text
    assert "Kafka: broker down (retrying)" in text


def test_screen_before_any_record() -> None:
    text = screen(TopView().frame())
    assert "0 brands" in text and "(no brand yet)" in text
