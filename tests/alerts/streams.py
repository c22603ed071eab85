"""Helpers for the alert tests: deterministic scored posts at explicit event times."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.engine import AlertEngine
from brandmon.alerts.state import BrandState
from brandmon.contracts.alerts import Alert, BrandBucket
from brandmon.contracts.posts import ScoredPost, Scores

#: The default settings with the mention-surge rule off: the share rule's tests.
SHARE_ONLY = AlertSettings(surge_enabled=False)

#: Event-time origin of the tests: Monday 2026-01-05 00:00 UTC (a bucket boundary).
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def post(
    seconds: float,
    negative: bool,
    *,
    brand: str = "acme",
    author: str | None = None,
    text: str | None = None,
    ident: str | None = None,
    scored_delay: float = 1.0,
) -> ScoredPost:
    """A scored post `seconds` after T0."""
    created = T0 + timedelta(seconds=seconds)
    label = "negative" if negative else "neutral"
    ident = ident or f"{brand}-{seconds:.3f}-{author}-{text}"
    return ScoredPost(
        id=ident,
        text=text if text is not None else f"post {ident}",
        brand=brand,
        created_at=created,
        author=author,
        label=label,
        scores=Scores(negative=float(negative), neutral=float(not negative), positive=0.0),
        model_id="test-model",
        model_version="7",
        scored_at=created + timedelta(seconds=scored_delay),
    )


def minute(
    m: int, total: int, negatives: int, *, brand: str = "acme", tag: str = ""
) -> list[ScoredPost]:
    """`total` posts spread evenly over minute `m`, the first `negatives` of them negative,
    each with its own author and text."""
    return [
        post(
            m * 60 + 60 * (i + 0.5) / total,
            i < negatives,
            brand=brand,
            author=f"{brand}{tag}-m{m}-a{i}",
            ident=f"{brand}{tag}-m{m}-{i}",
        )
        for i in range(total)
    ]


def traffic(minutes: Iterable[int], total: int, share: float, **kw: str) -> list[ScoredPost]:
    """Constant traffic: `total` posts a minute with round(total * share) negatives."""
    return [p for m in minutes for p in minute(m, total, round(total * share), **kw)]


@dataclass
class Run:
    """Feeds posts through one engine, remembering everything it emitted.

    By default the negative-share rule alone (`SHARE_ONLY`): these tests count its alerts
    exactly; tests/alerts/test_surge.py runs the mention-surge rule, alone and with it.
    """

    settings: AlertSettings = field(default_factory=lambda: SHARE_ONLY)
    roundtrip: bool = False
    partition: int = 0
    state: BrandState | None = None
    offset: int = 0
    alerts: list[Alert] = field(default_factory=list)
    buckets: list[BrandBucket] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.engine = AlertEngine(self.settings)

    def feed(self, posts: Iterable[ScoredPost]) -> list[Alert]:
        """Apply posts in order (next offsets); returns the alerts they produced."""
        new: list[Alert] = []
        for p in posts:
            if self.roundtrip and self.state is not None:
                self.state = BrandState.from_dict(self.state.to_dict())
            result = self.engine.apply(self.state, p, self.partition, self.offset)
            self.offset += 1
            self.state = result.state
            new += result.alerts
            self.buckets += result.buckets
            self.outcomes.append(result.outcome)
        self.alerts += new
        return new


def warm(run: Run, minutes: int = 60, total: int = 100, share: float = 0.15) -> None:
    """An hour of steady traffic so the baseline is warm."""
    run.feed(traffic(range(minutes), total, share))
    assert run.alerts == []


def at(alert: Alert) -> float:
    """An alert's evaluation time in minutes after T0."""
    return (alert.evaluated_at - T0).total_seconds() / 60


def by_time(posts: Iterable[ScoredPost]) -> Iterator[ScoredPost]:
    return iter(sorted(posts, key=lambda p: p.created_at))
