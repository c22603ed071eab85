"""The view model of `brandmon top`: folds `brand.sentiment` buckets and `alerts` events into
one row per brand (latest volume, negative share against its baseline, a sparkline of the
recent shares, the open incidents).

Pure: no Kafka, no terminal, no clock. Records may arrive late, out of order or twice
(delivery is at-least-once): buckets are kept by `bucket_start` (their `bucket_id` is
brand|bucket_start, so a repeat is dropped), alert events are dropped by `alert_id`, and an
incident closed by its `resolve` never reopens (the alert stage never reuses a `dedup_key`).
Memory is bounded: the last `buckets_kept` buckets per brand, at most `max_brands` brands
(the least recently updated brand without an open incident is forgotten first), and a bounded
memory of seen alert ids and closed incidents.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import ValidationError

from brandmon.contracts.alerts import SEVERITY_RANK, Alert, BrandBucket

#: Eight levels, lowest first; a bucket with no record (no posts) or no voices is a space.
SPARK_BLOCKS = "▁▂▃▄▅▆▇█"
#: Alert ids remembered for deduplication: far more than the events of the incidents a
#: screen can show, small next to the bucket history.
SEEN_ALERT_IDS = 100_000
#: Closed incidents remembered, so that a repeated or late trigger does not reopen one.
CLOSED_INCIDENTS = 20_000

Kind = Literal["bucket", "alert"]


@dataclass(frozen=True, slots=True)
class BucketPoint:
    """What the view keeps of one `BrandBucket`."""

    bucket_start: datetime
    bucket_end: datetime
    posts: int
    voices: int
    share: float | None
    baseline_share: float | None
    baseline_std: float | None
    z: float | None
    state: str

    @classmethod
    def of(cls, bucket: BrandBucket) -> BucketPoint:
        return cls(
            bucket_start=bucket.bucket_start,
            bucket_end=bucket.bucket_end,
            posts=bucket.posts,
            voices=bucket.window.voices,
            share=bucket.window.share,
            baseline_share=bucket.baseline_share,
            baseline_std=bucket.baseline_std,
            z=bucket.z,
            state=bucket.state,
        )


@dataclass(frozen=True, slots=True)
class OpenIncident:
    """An incident with a trigger and no resolve yet; severity is the highest triggered."""

    dedup_key: str
    brand: str
    rule: str
    severity: str
    incident_start: datetime
    last_event: datetime
    summary: str

    @classmethod
    def of(cls, alert: Alert) -> OpenIncident:
        return cls(
            dedup_key=alert.dedup_key,
            brand=alert.brand,
            rule=alert.rule,
            severity=alert.severity,
            incident_start=alert.incident_start,
            last_event=alert.evaluated_at,
            summary=alert.summary,
        )

    def with_trigger(self, alert: Alert) -> OpenIncident:
        """The incident after a later (or earlier, out of order) trigger of it."""
        higher = SEVERITY_RANK[alert.severity] > SEVERITY_RANK[self.severity]
        newer = alert.evaluated_at >= self.last_event
        return replace(
            self,
            severity=alert.severity if higher else self.severity,
            rule=alert.rule if higher else self.rule,
            last_event=alert.evaluated_at if newer else self.last_event,
            summary=alert.summary if newer else self.summary,
            incident_start=min(self.incident_start, alert.incident_start),
        )


@dataclass(frozen=True, slots=True)
class BrandRow:
    """One line of the screen."""

    brand: str
    latest: BucketPoint | None
    sparkline: str
    incidents: tuple[OpenIncident, ...]
    #: The alert stage marks the latest bucket as in an incident and no resolve of the brand
    #: was read since: an incident whose trigger is older than what was read.
    marked_incident: bool = False

    @property
    def in_incident(self) -> bool:
        return bool(self.incidents) or self.marked_incident

    def sort_key(self) -> tuple[int, int, float, str]:
        rank = max((SEVERITY_RANK[i.severity] for i in self.incidents), default=-1)
        z = self.latest.z if self.latest is not None and self.latest.z is not None else None
        return (
            0 if self.in_incident else 1,
            -rank,
            -z if z is not None else float("inf"),
            self.brand,
        )


@dataclass(frozen=True, slots=True)
class Frame:
    """Everything one screen shows."""

    rows: tuple[BrandRow, ...]
    #: Brands (matching the filter) not shown for lack of room.
    hidden: int
    open_incidents: int
    #: End of the newest bucket read: the event time the screen is current to.
    data_until: datetime | None
    records: int
    skipped: int
    last_skip_reason: str | None


@dataclass(slots=True)
class _Brand:
    buckets: dict[datetime, BucketPoint] = field(default_factory=dict)
    #: bucket_start of the newest bucket (recency for eviction).
    newest: datetime | None = None


class TopView:
    """Folds records into brand rows; `frame()` gives what to draw."""

    def __init__(
        self,
        *,
        buckets_kept: int = 30,
        max_brands: int = 10_000,
        brands: Collection[str] | None = None,
    ) -> None:
        if buckets_kept < 1 or max_brands < 1:
            raise ValueError("buckets_kept and max_brands must be at least 1")
        self.buckets_kept = buckets_kept
        self.max_brands = max_brands
        self._only = frozenset(brands) if brands else None
        self._brands: dict[str, _Brand] = {}
        self._open: dict[str, OpenIncident] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()
        #: Event time of each brand's latest resolve (a brand that went silent in an
        #: incident keeps a last bucket marked "incident" after its resolve).
        self._resolved_at: OrderedDict[str, datetime] = OrderedDict()
        self._seen_alerts: OrderedDict[str, None] = OrderedDict()
        self.records = 0
        self.skipped = 0
        self.last_skip_reason: str | None = None
        #: The last frame and what it was drawn from: redraws with nothing new reuse it.
        self._cached: tuple[tuple[int, int, int], Frame] | None = None
        self._changes = 0

    # --- input -------------------------------------------------------------------------------

    def add_raw(self, kind: Kind, value: bytes | None, where: str = "") -> None:
        """Parse and fold one Kafka record value; an unreadable one is counted as skipped with
        its reason (the screen shows the count), never raised."""
        self.records += 1
        if value is None:
            self._skip(f"{where} empty value (tombstone)")
            return
        try:
            if kind == "bucket":
                self.add_bucket(BrandBucket.model_validate_json(value))
            else:
                self.add_alert(Alert.model_validate_json(value))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            loc = ".".join(str(part) for part in first["loc"]) or "record"
            self._skip(f"{where} not a {kind}: {loc}: {first['msg']}")

    def _skip(self, reason: str) -> None:
        self.skipped += 1
        self.last_skip_reason = reason.strip()

    def add_bucket(self, bucket: BrandBucket) -> bool:
        """Keep the bucket; False when it was a repeat, too old to show, or filtered out."""
        if self._only is not None and bucket.brand not in self._only:
            return False
        brand = self._brands.get(bucket.brand)
        new = brand is None
        if brand is None:
            brand = self._brands[bucket.brand] = _Brand()
        start = bucket.bucket_start
        if start in brand.buckets:
            return False
        if len(brand.buckets) >= self.buckets_kept and start < min(brand.buckets):
            return False
        brand.buckets[start] = BucketPoint.of(bucket)
        if len(brand.buckets) > self.buckets_kept:
            del brand.buckets[min(brand.buckets)]
        if brand.newest is None or start > brand.newest:
            brand.newest = start
        if new:
            self._evict_brands()
        self._changes += 1
        return True

    def add_alert(self, alert: Alert) -> bool:
        """Open, escalate or close the alert's incident; False for a repeat or filtered out."""
        if self._only is not None and alert.brand not in self._only:
            return False
        if alert.alert_id in self._seen_alerts:
            return False
        _remember(self._seen_alerts, alert.alert_id, SEEN_ALERT_IDS)
        self._changes += 1
        key = alert.dedup_key
        if alert.action == "resolve":
            self._open.pop(key, None)
            _remember(self._closed, key, CLOSED_INCIDENTS)
            last = self._resolved_at.get(alert.brand)
            if last is None or alert.evaluated_at > last:
                self._resolved_at[alert.brand] = alert.evaluated_at
                self._resolved_at.move_to_end(alert.brand)
                while len(self._resolved_at) > CLOSED_INCIDENTS:
                    self._resolved_at.popitem(last=False)
            return True
        if key in self._closed:
            return False  # a trigger read after its resolve: the incident is over
        incident = self._open.get(key)
        self._open[key] = (
            OpenIncident.of(alert) if incident is None else incident.with_trigger(alert)
        )
        return True

    def _evict_brands(self) -> None:
        """Forget the least recently updated brands without an open incident over the cap."""
        while len(self._brands) > self.max_brands:
            busy = {i.brand for i in self._open.values()}
            idle = [name for name in self._brands if name not in busy] or list(self._brands)
            oldest = min(idle, key=lambda name: _recency(self._brands[name]))
            del self._brands[oldest]

    # --- output ------------------------------------------------------------------------------

    def frame(self, limit: int = 30) -> Frame:
        """The rows to draw, most urgent first, at most `limit` of them (sparklines are drawn
        for those only: with thousands of brands, they are most of the work)."""
        state = (self._changes, self.records, limit)
        if self._cached is not None and self._cached[0] == state:
            return self._cached[1]
        by_brand: dict[str, list[OpenIncident]] = {}
        for incident in self._open.values():
            by_brand.setdefault(incident.brand, []).append(incident)
        names = set(self._brands) | set(by_brand)
        rows = sorted(
            (self._row(name, by_brand.get(name, [])) for name in names),
            key=BrandRow.sort_key,
        )
        ends = [row.latest.bucket_end for row in rows if row.latest is not None]
        shown = tuple(
            replace(row, sparkline=sparkline(self._points(row.brand), self.buckets_kept))
            for row in rows[:limit]
        )
        frame = Frame(
            rows=shown,
            hidden=max(0, len(rows) - limit),
            open_incidents=len(self._open),
            data_until=max(ends, default=None),
            records=self.records,
            skipped=self.skipped,
            last_skip_reason=self.last_skip_reason,
        )
        self._cached = (state, frame)
        return frame

    def _points(self, name: str) -> Iterable[BucketPoint]:
        brand = self._brands.get(name)
        return brand.buckets.values() if brand is not None else ()

    def _row(self, name: str, incidents: list[OpenIncident]) -> BrandRow:
        """The brand's row, without its sparkline."""
        brand = self._brands.get(name)
        # the newest bucket is never the one dropped, so `newest` always names a kept one
        latest = brand.buckets[brand.newest] if brand is not None and brand.newest else None
        incidents.sort(key=lambda i: (-SEVERITY_RANK[i.severity], i.incident_start))
        resolved = self._resolved_at.get(name)
        marked = (
            latest is not None
            and latest.state == "incident"
            and (resolved is None or resolved < latest.bucket_end)
        )
        return BrandRow(
            brand=name,
            latest=latest,
            sparkline="",
            incidents=tuple(incidents),
            marked_incident=marked,
        )


def sparkline(points: Iterable[BucketPoint], width: int) -> str:
    """The window shares of the last `width` buckets ending with the newest, oldest first.

    Scaled from 0 to the highest share shown or twice the newest baseline, whichever is
    higher: a brand at its baseline draws half-height bars, a doubling reaches the top, and a
    higher spike is the top. A bucket with no record (no posts) or no voices is a space.
    """
    by_start = {p.bucket_start: p for p in points}
    if not by_start:
        return ""
    newest = by_start[max(by_start)]
    step = newest.bucket_end - newest.bucket_start
    if step <= timedelta(0):
        step = timedelta(seconds=60)
    starts = [newest.bucket_start - step * i for i in range(width - 1, -1, -1)]
    shares = [by_start[s].share if s in by_start else None for s in starts]
    # leading buckets before the first one read are not shown (not history, just unread)
    while shares and shares[0] is None and starts[0] < min(by_start):
        shares.pop(0)
        starts.pop(0)
    known = [s for s in shares if s is not None]
    top = max([*known, 2 * (newest.baseline_share or 0.0)], default=0.0)
    return "".join(_block(share, top) for share in shares)


def _block(share: float | None, top: float) -> str:
    if share is None:
        return " "
    if top <= 0:
        return SPARK_BLOCKS[0]
    level = round(share / top * (len(SPARK_BLOCKS) - 1))
    return SPARK_BLOCKS[min(max(level, 0), len(SPARK_BLOCKS) - 1)]


def _recency(brand: _Brand) -> datetime:
    return brand.newest or datetime.min.replace(tzinfo=UTC)


def _remember(memory: OrderedDict[str, None], key: str, cap: int) -> None:
    memory[key] = None
    memory.move_to_end(key)
    while len(memory) > cap:
        memory.popitem(last=False)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in '90', '90s', '15m', '1h' or '2d'; ValueError saying the accepted forms."""
    match = _DURATION.match(text.lower())
    if match is None:
        raise ValueError(f"{text!r} is not a duration: give e.g. 90s, 15m, 1h or 2d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
