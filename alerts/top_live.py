"""The I/O shell of `brandmon top`: read `brand.sentiment` and `alerts` from a point in the
recent past, fold them into the view model, and redraw the table every refresh.

It reads without a consumer group (nothing is committed; any number of engineers can watch),
assigning every partition itself from the offsets of `now - lookback` (Kafka's own time index),
so the sparklines are filled at once and open incidents whose trigger is within the alerts
lookback are shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from rich.console import Console, RenderableType
from rich.live import Live

from brandmon.alerts.top import Kind, TopView
from brandmon.alerts.top_table import render
from brandmon.kafka_io import check_broker, consumer_config
from brandmon.settings import Settings

#: Records taken from the client per call; small enough to redraw between calls.
BATCH = 500
#: Longest one wait for records; bounds how late Ctrl-C and a redraw can be.
POLL_SECONDS = 0.2
#: How long the broker gets to answer at start before the command gives up and says so.
BROKER_TIMEOUT_SECONDS = 5.0
#: Rows drawn below the table's own lines (title, header, borders, caption) when the number
#: of rows follows the terminal's height.
TABLE_CHROME_LINES = 8


class TopicsMissingError(RuntimeError):
    """A topic `brandmon top` reads does not exist on the broker."""


@dataclass(frozen=True)
class TopOptions:
    """What the command line chose."""

    brands: frozenset[str] | None = None
    #: Seconds of `brand.sentiment` to read at start; None = from the beginning.
    lookback_seconds: float | None = 3600.0
    #: Seconds of `alerts` to read at start; None = from the beginning.
    alerts_lookback_seconds: float | None = 86400.0
    refresh_seconds: float = 1.0
    buckets: int = 30
    #: Rows shown; None = as many as fit the terminal (50 with `once`).
    limit: int | None = None
    once: bool = False
    #: With `once`: the longest wait to read everything up to the end of the topics.
    catch_up_seconds: float = 30.0


class TopReader:
    """Both topics, every partition assigned from a start time; knows when it has read what
    was on the topics when it started."""

    def __init__(self, settings: Settings, kinds: dict[str, Kind]) -> None:
        conf: dict[str, Any] = {
            "group.id": f"brandmon-top-{time.time_ns()}",  # never committed to
            "enable.auto.commit": False,
            "auto.offset.reset": "latest",
        }
        self._settings = settings
        self._kinds = kinds
        self._consumer = Consumer(consumer_config(settings, conf))
        self._pending: dict[tuple[str, int], int] = {}
        #: The client's last error while it retries (broker gone, leader moving); cleared by
        #: the next record.
        self.trouble: str | None = None

    def start(self, since_ms: dict[str, int | None]) -> None:
        """Assign every partition of each topic from `since_ms[topic]` (None: the beginning).
        Raises TopicsMissingError naming the missing topics and what to do."""
        meta = self._consumer.list_topics(timeout=10)
        missing = [
            name
            for name in self._kinds
            if name not in meta.topics or meta.topics[name].error is not None
        ]
        if missing:
            raise TopicsMissingError(_missing_message(self._settings, missing))
        wanted = [
            TopicPartition(name, p, since if since is not None else OFFSET_BEGINNING)
            for name, since in since_ms.items()
            for p in sorted(meta.topics[name].partitions)
        ]
        by_time = [tp for tp in wanted if tp.offset != OFFSET_BEGINNING]
        found = self._consumer.offsets_for_times(by_time, timeout=10) if by_time else []
        starts = {(tp.topic, tp.partition): tp.offset for tp in wanted}
        for tp in found:
            # -1: no record at or after that time; start at the end
            starts[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else OFFSET_END
        assigned = []
        for (topic, partition), offset in starts.items():
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10
            )
            first = low if offset == OFFSET_BEGINNING else offset
            if offset != OFFSET_END and first < high:
                self._pending[(topic, partition)] = high
            assigned.append(TopicPartition(topic, partition, offset))
        self._consumer.assign(assigned)

    @property
    def caught_up(self) -> bool:
        """Everything that was on the topics at start() has been read."""
        return not self._pending

    def read_into(self, view: TopView, seconds: float, *, until_caught_up: bool = False) -> None:
        """Fold the records that arrive in the next `seconds` into `view` (return early once
        caught up, with `until_caught_up`)."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (until_caught_up and self.caught_up):
                return
            msgs = self._consumer.consume(BATCH, timeout=min(left, POLL_SECONDS))
            for msg in msgs:
                self._take(msg, view)
            if not msgs and self._pending:
                self._check_positions()

    def _check_positions(self) -> None:
        # the last offsets of a partition may be control records that are never delivered:
        # the partition is read once the client's position has reached the start's end
        waiting = [TopicPartition(topic, p) for topic, p in self._pending]
        for tp in self._consumer.position(waiting):
            if tp.offset >= self._pending[(tp.topic, tp.partition)]:
                del self._pending[(tp.topic, tp.partition)]

    def _take(self, msg: Any, view: TopView) -> None:
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return
            if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise TopicsMissingError(_missing_message(self._settings, [msg.topic()]))
            if error.fatal():
                raise KafkaException(error)
            self.trouble = error.str()  # librdkafka retries by itself; say so on the screen
            return
        self.trouble = None
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        view.add_raw(self._kinds[topic], msg.value(), where=f"{topic}/{partition}/{offset}")
        high = self._pending.get((topic, partition))
        if high is not None and offset + 1 >= high:
            del self._pending[(topic, partition)]

    def close(self) -> None:
        self._consumer.close()


def _missing_message(settings: Settings, missing: list[str]) -> str:
    variables = {
        settings.topic_alerts: "BRANDMON_TOPIC_ALERTS",
        settings.topic_brand_sentiment: "BRANDMON_TOPIC_BRAND_SENTIMENT",
    }
    names = ", ".join(f"{name!r} ({variables.get(name, 'topic')})" for name in missing)
    return (
        f"topic(s) {names} do not exist at {settings.bootstrap_servers}: start the alert "
        "worker (`brandmon alerts worker` creates them), or set those variables to the "
        "topics your alert worker writes"
    )


def run_top(
    settings: Settings,
    options: TopOptions,
    console: Console,
    *,
    clock: Callable[[], float] = time.time,
) -> None:
    """Draw the screen until Ctrl-C (once, after catching up, with `options.once`).

    Raises BrokerUnreachableError or TopicsMissingError (both say what to do).
    """
    check_broker(settings, timeout=BROKER_TIMEOUT_SECONDS)
    view = TopView(buckets_kept=options.buckets, brands=options.brands)
    reader = TopReader(
        settings,
        {settings.topic_brand_sentiment: "bucket", settings.topic_alerts: "alert"},
    )
    try:
        now_ms = int(clock() * 1000)
        reader.start(
            {
                settings.topic_brand_sentiment: _since(now_ms, options.lookback_seconds),
                settings.topic_alerts: _since(now_ms, options.alerts_lookback_seconds),
            }
        )
        if options.once:
            reader.read_into(view, options.catch_up_seconds, until_caught_up=True)
            console.print(_draw(reader, view, options, console, clock))
            return
        _follow(reader, view, options, console, clock)
    finally:
        reader.close()


def _follow(
    reader: TopReader,
    view: TopView,
    options: TopOptions,
    console: Console,
    clock: Callable[[], float],
) -> None:
    with Live(
        _draw(reader, view, options, console, clock), console=console, auto_refresh=False
    ) as live:
        try:
            while True:
                reader.read_into(view, options.refresh_seconds)
                live.update(_draw(reader, view, options, console, clock), refresh=True)
        except KeyboardInterrupt:
            return  # Ctrl-C: the last frame stays on the screen


def _draw(
    reader: TopReader,
    view: TopView,
    options: TopOptions,
    console: Console,
    clock: Callable[[], float],
) -> RenderableType:
    limit = options.limit
    if limit is None:
        limit = 50 if options.once else max(5, console.size.height - TABLE_CHROME_LINES)
    notices = []
    if not reader.caught_up:
        notices.append(
            "still reading recent history…"
            if not options.once
            else f"history not fully read within {options.catch_up_seconds:.0f} s"
        )
    if reader.trouble is not None:
        notices.append(f"Kafka: {reader.trouble} (retrying)")
    return render(
        view.frame(limit),
        buckets=options.buckets,
        now=datetime.fromtimestamp(clock(), UTC),
        notices=notices,
        width=console.width,
    )


def _since(now_ms: int, lookback_seconds: float | None) -> int | None:
    return None if lookback_seconds is None else now_ms - int(lookback_seconds * 1000)
