"""Scenario benchmark: seeded synthetic scored streams run through the real `AlertEngine`.

Each scenario is a few hours of per-minute traffic for one or more brands (Poisson-like
volumes, a per-minute wobble of the true negative share, a skewed author pool, some
retweeted texts, 0-20 s of arrival delay) plus the thing it tests: a true spike to detect or
a decoy that must stay silent. `run_scenarios(seed, scale)` scores the engine on them:

- an incident (a dedup_key) is a true positive when its brand has a true spike and its first
  trigger falls between the spike's start and its end plus one window;
- precision = true incidents / incidents, recall = spikes detected / spikes (null when the
  ratio has no denominator);
- time to detect = (first trigger's event time - spike start) in buckets; time to resolve =
  (resolve's event time - spike end) in buckets.

Targets (docs/benchmarks.md, "Alert scenarios"): every spike detected, no alert on decoys,
detect within 2 buckets (a slow ramp: before it peaks), resolve within the quiet period + 1
bucket, and every warning or critical trigger of a spike whose negative posts carry topic
words names one of them (`topics_named`, docs/topics.md). `run_presets()` runs them under
each sensitivity preset and several seeds and `summarize_presets()` pools the results per
scenario and preset (`alerts scenarios --preset`). The defaults are tuned on principle
(statistics of the share), not on these streams; `scale` multiplies every volume.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.engine import AlertEngine
from brandmon.alerts.state import BrandState
from brandmon.contracts.alerts import SEVERITY_RANK, Alert
from brandmon.contracts.posts import ScoredPost, Scores

#: Monday 2026-01-05 00:00 UTC: the scenarios' event-time origin.
ORIGIN = datetime(2026, 1, 5, tzinfo=UTC)
PARTITIONS = 4
MAX_ARRIVAL_DELAY = 20.0


@dataclass(frozen=True)
class Profile:
    """A brand's normal traffic: posts per minute, negative share, per-minute share wobble."""

    brand: str
    rate: float
    share: float
    wobble: float = 0.02
    authors: int = 20_000


@dataclass(frozen=True)
class TrueSpike:
    """A true incident; `severity`: the highest severity its incidents must reach, no more
    (None: any); `detect_within`: buckets after `start` it must be detected in (a ramp is
    allowed until it peaks; a spike or surge the target of 2)."""

    brand: str
    start: float
    end: float
    severity: str | None = None
    detect_within: float = 2
    #: Words injected into the negative posts of the spike: its triggers must name one.
    topic: tuple[str, ...] = ()


@dataclass
class Stream:
    """Posts of one scenario, in event time before arrival ordering, plus the truth."""

    rng: random.Random
    #: Draws the posts' words, apart from `rng`, so texts leave counts and times unchanged.
    words: random.Random = field(default_factory=lambda: random.Random(0))
    posts: list[tuple[float, ScoredPost]] = field(default_factory=list)
    spikes: list[TrueSpike] = field(default_factory=list)
    serial: int = 0

    def add(
        self,
        brand: str,
        event_time: float,
        negative: bool,
        *,
        author: str | None,
        text: str | None = None,
        arrival: float | None = None,
        topic: tuple[str, ...] = (),
    ) -> None:
        self.serial += 1
        label = "negative" if negative else ("neutral" if self.rng.random() < 0.6 else "positive")
        created = ORIGIN + timedelta(seconds=event_time)
        if arrival is None:
            arrival = event_time + self.rng.uniform(0.0, MAX_ARRIVAL_DELAY)
        post = ScoredPost(
            id=f"{brand}-{self.serial}",
            text=text if text is not None else chatter(self.words, brand, label, topic),
            brand=brand,
            created_at=created,
            author=author,
            label=label,
            scores=Scores(
                negative=float(negative),
                neutral=float(label == "neutral"),
                positive=float(label == "positive"),
            ),
            model_id="scenario-model",
            model_version="1",
            scored_at=ORIGIN + timedelta(seconds=arrival + 0.2),
        )
        self.posts.append((arrival, post))


def _vocab(words: str) -> list[str]:
    return words.split()


# Everyday words of posts: filler, then what a label's posts usually say. Negative chatter
# always has its grumbles (late delivery, support on hold, price, app), so they are the brand's
# normal and must never be named as a spike's topic; the topics injected below appear nowhere
# else.
FILLER = _vocab(
    "the a my to and is was just so this it for with again today why still of in on at "
    "really everyone anyone honestly literally ever been have has"
)
GRUMBLES = _vocab(
    "delivery late package waiting support hold hours price expensive app slow order "
    "customer service rude staff store email reply broken quality shipping account "
    "annoying disappointed worst terrible bad awful cancel queue website update phone "
    "charged week days nobody useless"
)
PRAISE = _vocab(
    "love great thanks awesome fast helpful nice new best happy recommend amazing "
    "quality price delivery app store staff order"
)
NEUTRAL = _vocab(
    "anyone know does what time open hours question store app order price new "
    "update week weekend looking trying using bought tried"
)
LEXICON = {"negative": GRUMBLES, "positive": PRAISE, "neutral": NEUTRAL}


def chatter(rng: random.Random, brand: str, label: str, topic: tuple[str, ...] = ()) -> str:
    """A plausible short post about `brand`: words of its label's lexicon among filler,
    sometimes a mention, a hashtag or a link; a negative post of a spike also carries one or
    two of the spike's `topic` words."""
    words = [rng.choice(LEXICON[label]) for _ in range(rng.randint(3, 6))]
    words += [rng.choice(FILLER) for _ in range(rng.randint(2, 6))]
    if topic and label == "negative":
        words += rng.sample(topic, k=min(len(topic), rng.choice((1, 1, 2))))
    rng.shuffle(words)
    words.insert(rng.randrange(len(words) + 1), brand if rng.random() < 0.7 else f"@{brand}")
    if rng.random() < 0.1:
        words.append(f"https://example.com/{rng.randrange(10**6)}")
    if rng.random() < 0.1:
        words.append(f"#{rng.choice(LEXICON[label])}")
    return " ".join(words)


def _count(rng: random.Random, mean: float) -> int:
    """A Poisson-like count (normal approximation above 30)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


ShareFn = Callable[[int], float]
RateFn = Callable[[int], float]


def background(
    stream: Stream,
    profile: Profile,
    minutes: range,
    share_at: ShareFn | None = None,
    rate_at: RateFn | None = None,
) -> None:
    """Normal traffic of `profile` over `minutes`, optionally with a time-varying share/rate."""
    rng = stream.rng
    viral = [(f"{profile.brand} viral #{i}", rng.random() < profile.share) for i in range(20)]
    for minute in minutes:
        base = share_at(minute) if share_at else profile.share
        share = min(max(rng.gauss(base, profile.wobble), 0.0), 1.0)
        rate = rate_at(minute) if rate_at else profile.rate
        for _ in range(_count(rng, rate)):
            author = f"{profile.brand}-u{int(profile.authors * rng.random() ** 2)}"
            if rng.random() < 0.05:
                text, negative = rng.choice(viral)
            else:
                text, negative = None, rng.random() < share
            stream.add(
                profile.brand, (minute + rng.random()) * 60, negative, author=author, text=text
            )


def burst(
    stream: Stream,
    brand: str,
    start: float,
    end: float,
    rate: float,
    share: float,
    authors: int = 50_000,
    topic: tuple[str, ...] = (),
) -> None:
    """Extra traffic with its own share between `start` and `end` (seconds), many authors;
    its negative posts carry the `topic` words."""
    rng = stream.rng
    for _ in range(_count(stream.rng, rate * (end - start) / 60)):
        stream.add(
            brand,
            rng.uniform(start, end),
            rng.random() < share,
            author=f"{brand}-angry{rng.randrange(authors)}",
            topic=topic,
        )


# --- the scenarios --------------------------------------------------------------------------

MINUTES = 210


def _brands(scale: float) -> list[Profile]:
    return [
        Profile("acme", 100 * scale, 0.15),
        Profile("globex", 40 * scale, 0.22),
        Profile("initech", 200 * scale, 0.08),
        Profile("umbrella", 25 * scale, 0.30, wobble=0.04),
    ]


def steady(stream: Stream, scale: float) -> None:
    """Several brands with ordinary traffic for 3.5 hours: nothing to report."""
    for profile in _brands(scale):
        background(stream, profile, range(MINUTES))


def true_spike(stream: Stream, scale: float) -> None:
    """Two real surges: acme (big brand) and globex (mid-size), at different times."""
    for profile in _brands(scale):
        background(stream, profile, range(MINUTES))
    rng = stream.rng
    # An outage-like surge: volume x2.5, negative share roughly doubled (+25 points).
    for brand, begin, rate, share, topic in (
        ("acme", 120, 150, 0.60, ("outage", "refund", "crashing")),
        ("globex", 150, 60, 0.65, ("recall", "battery", "overheating")),
    ):
        start = (begin + rng.random()) * 60
        end = start + 20 * 60
        burst(stream, brand, start, end, rate * scale, share, topic=topic)
        stream.spikes.append(TrueSpike(brand, start, end, topic=topic))


def low_volume(stream: Stream, scale: float) -> None:
    """Small brands whose share swings wildly from minute to minute, and a noisy mid one."""
    background(stream, Profile("tinyco", 6 * scale, 0.30, wobble=0.15), range(MINUTES))
    background(stream, Profile("smallco", 15 * scale, 0.25, wobble=0.10), range(MINUTES))
    background(stream, Profile("midco", 50 * scale, 0.25, wobble=0.04), range(MINUTES))


def spam_author(stream: Stream, scale: float) -> None:
    """One account posts the same complaint hundreds of times; later a bot farm copies one."""
    profile = Profile("acme", 100 * scale, 0.15)
    background(stream, profile, range(MINUTES))
    rng = stream.rng
    text = "acme is a scam, never buy from acme!!!"
    for _ in range(int(600 * max(scale, 0.5))):
        stream.add("acme", rng.uniform(100 * 60, 115 * 60), True, author="angry-bot", text=text)
    copypasta = "ACME leaked my data, boycott now #acmefail"
    for i in range(int(400 * max(scale, 0.5))):
        stream.add("acme", rng.uniform(150 * 60, 160 * 60), True, author=f"farm{i}", text=copypasta)


def slow_drift(stream: Stream, scale: float) -> None:
    """The negative share creeps from 10% to 40% over 3.5 hours (a trend, not a spike)."""
    profile = Profile("acme", 120 * scale, 0.10)
    background(
        stream,
        profile,
        range(MINUTES),
        share_at=lambda m: 0.10 + 0.30 * m / MINUTES,
        rate_at=lambda m: profile.rate * (1 + 0.5 * m / MINUTES),
    )


RAMP_START, RAMP_MINUTES, RAMP_END = 120, 30, 170


def slow_ramp(stream: Stream, scale: float) -> None:
    """acme's negative share climbs from 15% to 55% over 30 minutes at its usual volume, then
    stays there for 20 minutes: a crisis building up, which on-call wants to hear about before
    it peaks. Unlike slow_drift (30 points over 3.5 hours, learned as the new normal), this
    ends far above anything the baseline has seen within its hour of half-life."""
    profile = Profile("acme", 100 * scale, 0.15)

    def share_at(minute: int) -> float:
        if minute < RAMP_START or minute >= RAMP_END:
            return profile.share
        return profile.share + 0.40 * min(1.0, (minute - RAMP_START) / RAMP_MINUTES)

    background(stream, profile, range(MINUTES), share_at=share_at)
    stream.spikes.append(
        TrueSpike("acme", RAMP_START * 60, RAMP_END * 60, detect_within=RAMP_MINUTES)
    )


def gap(stream: Stream, scale: float) -> None:
    """Traffic stops for an hour (outage of the source), then comes back as before."""
    profile = Profile("acme", 100 * scale, 0.15)
    background(stream, profile, range(90))
    background(stream, profile, range(150, MINUTES))


def late_burst(stream: Stream, scale: float) -> None:
    """A backfill of old negative posts arrives 30 minutes after their buckets closed."""
    profile = Profile("acme", 100 * scale, 0.15)
    background(stream, profile, range(MINUTES))
    rng = stream.rng
    for i in range(int(500 * max(scale, 0.5))):
        event_time = rng.uniform(120 * 60, 125 * 60)
        stream.add("acme", event_time, True, author=f"backfill{i}", arrival=155 * 60 + i * 0.1)


def _surge(
    stream: Stream,
    brand: str,
    rate: float,
    share: float,
    severity: str,
    scale: float,
    topic: tuple[str, ...] = (),
) -> None:
    """Background for all brands, and a 20-minute burst of `rate` posts a minute on `brand`."""
    for profile in _brands(scale):
        background(stream, profile, range(MINUTES))
    start = (120 + stream.rng.random()) * 60
    end = start + 20 * 60
    burst(stream, brand, start, end, rate * scale, share, topic=topic)
    stream.spikes.append(TrueSpike(brand, start, end, severity, topic=topic))


def mention_surge(stream: Stream, scale: float) -> None:
    """acme's voices triple at its normal negative share: a negative surge too (warning),
    not mostly negative, so the share rule stays silent."""
    _surge(stream, "acme", 200, 0.15, "warning", scale, ("tickets", "presale", "concert"))


def negative_surge(stream: Stream, scale: float) -> None:
    """globex's voices triple and the new ones are 70% negative: the most severe case."""
    _surge(stream, "globex", 80, 0.70, "critical", scale, ("breach", "password", "leaked"))


def viral_positive(stream: Stream, scale: float) -> None:
    """acme goes viral for a good reason: voices triple, 3% of the new ones negative. A surge,
    reported at severity info (no page), never higher."""
    _surge(stream, "acme", 200, 0.03, "info", scale)


SCENARIOS: dict[str, Callable[[Stream, float], None]] = {
    "steady": steady,
    "true_spike": true_spike,
    "low_volume": low_volume,
    "spam_author": spam_author,
    "slow_drift": slow_drift,
    "slow_ramp": slow_ramp,
    "gap": gap,
    "late_burst": late_burst,
    "mention_surge": mention_surge,
    "negative_surge": negative_surge,
    "viral_positive": viral_positive,
}

# --- volume-only scenarios (counts of voices per bucket, surge rule alone) ---------------------

WEEK_MINUTES = 7 * 24 * 60


def rhythm(minute: int) -> float:
    """Relative volume at `minute` of the week (from Monday 00:00 UTC): a daily cycle from
    0.2 at 4 am to 1.8 in the evening, 25% quieter at the weekend."""
    hour = minute % 1440 / 60
    daily = 1.0 - 0.8 * math.cos(2 * math.pi * (hour - 4) / 24)
    return daily * (0.75 if minute >= 5 * 1440 else 1.0)


def rhythm_week(rng: random.Random, scale: float) -> dict[str, list[int]]:
    """A week of per-minute voices of four brands with only their daily and weekly rhythm,
    overdispersed (the rate of each minute wobbles by 10%): nothing to report."""
    counts = {}
    for profile in _brands(scale):
        counts[profile.brand] = [
            _count(rng, profile.rate * rhythm(m) * max(rng.gauss(1.0, 0.1), 0.0))
            for m in range(WEEK_MINUTES)
        ]
    return counts


COUNT_SCENARIOS: dict[str, Callable[[random.Random, float], dict[str, list[int]]]] = {
    "rhythm_week": rhythm_week,
}
ALL_SCENARIOS = [*SCENARIOS, *COUNT_SCENARIOS]


# --- a week of scored posts (both rules; run only when named: about a minute per seed) ------


def rhythm_week_posts(stream: Stream, scale: float) -> None:
    """A week of scored posts of two brands with only their daily and weekly rhythm (acme 40
    posts a minute on average, 8 at 4 am and 72 in the evening; globex 15, at a higher and
    wobblier share): quiet nights make the share noisy, and neither rule may page on that."""
    for profile in (Profile("acme", 40 * scale, 0.15), Profile("globex", 15 * scale, 0.22)):
        background(stream, profile, range(WEEK_MINUTES), rate_at=_rhythmic(profile.rate))


def _rhythmic(rate: float) -> RateFn:
    """Posts a minute at `rate` on average, following the week's rhythm."""
    return lambda minute: rate * rhythm(minute)


WEEK_SCENARIOS: dict[str, Callable[[Stream, float], None]] = {
    "rhythm_week_posts": rhythm_week_posts,
}


# --- running and scoring --------------------------------------------------------------------


def _partition(brand: str) -> int:
    return zlib.crc32(brand.encode()) % PARTITIONS


def run_stream(
    engine: AlertEngine, posts: list[tuple[float, ScoredPost]], *, roundtrip: bool = False
) -> tuple[list[Alert], dict[str, int]]:
    """Feed posts in arrival order; `roundtrip` re-reads each state from its JSON dict."""
    states: dict[str, BrandState] = {}
    offsets = [0] * PARTITIONS
    alerts: list[Alert] = []
    outcomes: dict[str, int] = {}
    for _, post in sorted(posts, key=lambda item: item[0]):
        partition = _partition(post.brand)
        state = states.get(post.brand)
        if roundtrip and state is not None:
            state = BrandState.from_dict(state.to_dict())
        result = engine.apply(state, post, partition, offsets[partition])
        offsets[partition] += 1
        states[post.brand] = result.state
        alerts += result.alerts
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
    return alerts, outcomes


def run_counts(
    engine: AlertEngine, counts: dict[str, list[int]], origin: datetime = ORIGIN
) -> list[Alert]:
    """Feed per-bucket voices (bucket i of each brand starts at origin + i buckets) through
    `engine.apply_count`, brand after brand."""
    alerts: list[Alert] = []
    bucket = engine.settings.bucket_seconds
    for brand, values in counts.items():
        state: BrandState | None = None
        for i, voices in enumerate(values):
            result = engine.apply_count(state, brand, origin.timestamp() + i * bucket, voices)
            state = result.state
            alerts += result.alerts
    return alerts


def score_counts(
    name: str, counts: dict[str, list[int]], alerts: list[Alert], s: AlertSettings
) -> dict[str, Any]:
    """A volume-only decoy: every incident is a false alert; false alerts per brand-week."""
    incidents = _incidents(alerts)
    weeks = max(len(v) for v in counts.values()) * s.bucket_seconds / (7 * 86_400)
    per_brand_week = len(incidents) / (len(counts) * weeks)
    return {
        "scenario": name,
        "kind": "decoy",
        "events": sum(sum(v) for v in counts.values()),
        "late_events": 0,
        "true_spikes": 0,
        "alerts_fired": {
            "trigger": sum(a.action == "trigger" for a in alerts),
            "resolve": sum(a.action == "resolve" for a in alerts),
            "incidents": len(incidents),
        },
        "false_alerts": list(incidents),
        "false_alerts_per_brand_week": round(per_brand_week, 3),
        "brand_weeks": round(len(counts) * weeks, 4),
        "precision": None,
        "recall": None,
        "time_to_detect_buckets": [],
        "time_to_resolve_buckets": [],
        "pass": per_brand_week <= 0.1,
    }


def build(name: str, seed: int, scale: float = 1.0) -> Stream:
    """The posts of scenario `name`, generated from `seed` (same seed, same posts)."""
    stream = Stream(rng=random.Random(f"{name}/{seed}"), words=random.Random(f"{name}/{seed}/w"))
    (SCENARIOS.get(name) or WEEK_SCENARIOS[name])(stream, scale)
    return stream


def score(
    name: str, stream: Stream, alerts: list[Alert], outcomes: dict[str, int], s: AlertSettings
) -> dict[str, Any]:
    """Precision, recall, time to detect and to resolve of one scenario's alerts."""
    bucket = s.bucket_seconds
    incidents = _incidents(alerts)
    detected: dict[int, dict[str, Any]] = {}
    false_keys: list[str] = []
    matched: dict[str, int] = {}
    for key, incident in incidents.items():
        match = _match(stream.spikes, incident, s.window_buckets * bucket)
        if match is None:
            false_keys.append(key)
            continue
        matched[key] = match
        if match not in detected:
            detected[match] = incident
    ttd = [
        round((detected[i]["trigger"] - sp.start) / bucket, 2)
        for i, sp in enumerate(stream.spikes)
        if i in detected
    ]
    limits = [sp.detect_within for i, sp in enumerate(stream.spikes) if i in detected]
    ttr = [
        round((detected[i]["resolve"] - sp.end) / bucket, 2) if detected[i]["resolve"] else None
        for i, sp in enumerate(stream.spikes)
        if i in detected
    ]
    n_spikes = len(stream.spikes)
    severities = {i: detected[i]["severity"] for i in detected}
    wrong_severity = [
        i
        for i, sp in enumerate(stream.spikes)
        if sp.severity and _max_severity(incidents, sp, s.window_buckets * bucket) != sp.severity
    ]
    named = _topics_named(stream.spikes, alerts, matched)
    ok = (
        len(detected) == n_spikes
        and all(n is not False for n in named)
        and not false_keys
        and not wrong_severity
        and all(t <= limit for t, limit in zip(ttd, limits, strict=True))
        and all(t is not None and t <= s.quiet_seconds / bucket + 1 for t in ttr)
    )
    return {
        "scenario": name,
        "kind": "spike" if n_spikes else "decoy",
        "events": sum(outcomes.values()),
        "late_events": outcomes.get("late", 0),
        "true_spikes": n_spikes,
        "alerts_fired": {
            "trigger": sum(a.action == "trigger" for a in alerts),
            "resolve": sum(a.action == "resolve" for a in alerts),
            "incidents": len(incidents),
        },
        "false_alerts": false_keys,
        "precision": round((len(incidents) - len(false_keys)) / len(incidents), 3)
        if incidents
        else None,
        "recall": round(len(detected) / n_spikes, 3) if n_spikes else None,
        "time_to_detect_buckets": ttd,
        "detect_within_buckets": limits,
        "time_to_resolve_buckets": ttr,
        "severity": [severities.get(i) for i in range(n_spikes)],
        "severity_ok": not wrong_severity,
        "brand_weeks": round(_brand_weeks(stream), 4),
        "topics_named": named,
        "pass": ok,
    }


def _brand_weeks(stream: Stream) -> float:
    """Brands times the event-time span of the scenario's posts, in weeks."""
    times = [post.created_at.timestamp() for _, post in stream.posts]
    brands = {post.brand for _, post in stream.posts}
    return len(brands) * (max(times) - min(times)) / (7 * 86_400) if times else 0.0


def _topics_named(
    spikes: list[TrueSpike], alerts: list[Alert], matched: dict[str, int]
) -> list[bool | None]:
    """Per spike: whether every warning or critical trigger of its incidents names one of its
    topic words in its summary (None: no topic injected, or no such trigger). An info trigger
    is a surge whose negatives did not surge: it need not name a negative topic."""
    named: list[bool | None] = []
    for i, spike in enumerate(spikes):
        triggers = [
            a
            for a in alerts
            if a.action == "trigger" and a.severity != "info" and matched.get(a.dedup_key) == i
        ]
        if not spike.topic or not triggers:
            named.append(None)
            continue
        named.append(all(_names_topic(a, spike.topic) for a in triggers))
    return named


def _names_topic(alert: Alert, topic: tuple[str, ...]) -> bool:
    """A topic word is one of the alert's terms, or a word of one, and is in its summary."""
    return any(
        f" {word} " in f" {term} " and term in alert.summary
        for term in alert.topic_terms
        for word in topic
    )


def _incidents(alerts: list[Alert]) -> dict[str, dict[str, Any]]:
    incidents: dict[str, dict[str, Any]] = {}
    for alert in alerts:
        entry = incidents.setdefault(
            alert.dedup_key,
            {"brand": alert.brand, "trigger": None, "resolve": None, "severity": "info"},
        )
        if SEVERITY_RANK[alert.severity] > SEVERITY_RANK[entry["severity"]]:
            entry["severity"] = alert.severity
        at = (alert.evaluated_at - ORIGIN).total_seconds()
        if alert.action == "trigger" and entry["trigger"] is None:
            entry["trigger"] = at
        elif alert.action == "resolve":
            entry["resolve"] = at
    return incidents


def _max_severity(incidents: dict[str, dict[str, Any]], spike: TrueSpike, slack: float) -> str:
    """The highest severity of the incidents that match `spike` ("" when none does)."""
    found = [i["severity"] for i in incidents.values() if _match([spike], i, slack) is not None]
    return max(found, key=lambda x: SEVERITY_RANK[x], default="")


def _match(spikes: list[TrueSpike], incident: dict[str, Any], slack: float) -> int | None:
    for i, spike in enumerate(spikes):
        if (
            spike.brand == incident["brand"]
            and spike.start <= incident["trigger"] <= spike.end + slack
        ):
            return i
    return None


def run_scenarios(
    seed: int = 1,
    scale: float = 1.0,
    settings: AlertSettings | None = None,
    names: list[str] | None = None,
) -> dict[str, Any]:
    """Run the chosen (default: all) scenarios; returns the JSON-able report."""
    s = settings if settings is not None else AlertSettings()
    engine = AlertEngine(s)
    results = []
    for name in names or ALL_SCENARIOS:
        if name in COUNT_SCENARIOS:
            counts = COUNT_SCENARIOS[name](random.Random(f"{name}/{seed}"), scale)
            alerts = run_counts(AlertEngine(s, volume_only=True), counts)
            results.append(score_counts(name, counts, alerts, s))
            continue
        stream = build(name, seed, scale)
        alerts, outcomes = run_stream(engine, stream.posts)
        results.append(score(name, stream, alerts, outcomes, s))
    return {
        "seed": seed,
        "scale": scale,
        "bucket_seconds": s.bucket_seconds,
        "quiet_buckets": s.quiet_seconds / s.bucket_seconds,
        "scenarios": results,
        "all_pass": all(r["pass"] for r in results),
    }


# --- presets over several seeds -----------------------------------------------------------------

PRESETS = ["fewer", "balanced", "more"]


def preset_settings(preset: str, base: AlertSettings | None = None) -> AlertSettings:
    """`base` (default: the defaults) under sensitivity `preset`; its explicit fields still
    win, as they do in the worker."""
    given = base.explicit_values() if base is not None else {}
    return AlertSettings.model_validate({**given, "sensitivity": preset})


def _one_run(args: tuple[str, int, float, AlertSettings, list[str] | None]) -> dict[str, Any]:
    preset, seed, scale, settings, names = args
    return {"preset": preset, **run_scenarios(seed, scale, settings, names)}


def run_presets(
    seeds: list[int],
    presets: list[str],
    scale: float = 1.0,
    base: AlertSettings | None = None,
    names: list[str] | None = None,
    jobs: int = 1,
) -> dict[str, Any]:
    """Every chosen scenario under each preset and seed; the runs and a table per scenario
    and preset (`summarize_presets`)."""
    tasks = [(p, seed, scale, preset_settings(p, base), names) for p in presets for seed in seeds]
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            runs = list(pool.map(_one_run, tasks))
    else:
        runs = [_one_run(task) for task in tasks]
    return {
        "seeds": seeds,
        "scale": scale,
        "presets": presets,
        "table": summarize_presets(runs),
        "runs": runs,
    }


def summarize_presets(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per scenario and preset, pooled over the seeds: incidents, false alerts, precision,
    recall, time to detect and to resolve (median and max, buckets), false alerts per
    brand-week, and the seeds that met every target."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        for r in run["scenarios"]:
            groups.setdefault((r["scenario"], run["preset"]), []).append(r)
    table = []
    for (name, preset), results in groups.items():
        incidents = sum(r["alerts_fired"]["incidents"] for r in results)
        false = sum(len(r["false_alerts"]) for r in results)
        spikes = sum(r["true_spikes"] for r in results)
        detected = sum(len(r["time_to_detect_buckets"]) for r in results)
        ttd = [t for r in results for t in r["time_to_detect_buckets"]]
        ttr = [t for r in results for t in r["time_to_resolve_buckets"] if t is not None]
        weeks = sum(r["brand_weeks"] for r in results)
        table.append(
            {
                "scenario": name,
                "preset": preset,
                "kind": results[0]["kind"],
                "seeds": len(results),
                "incidents": incidents,
                "false_alerts": false,
                "precision": round((incidents - false) / incidents, 3) if incidents else None,
                "recall": round(detected / spikes, 3) if spikes else None,
                "detect_buckets": _median_max(ttd),
                "resolve_buckets": _median_max(ttr),
                "false_alerts_per_brand_week": round(false / weeks, 3) if weeks else None,
                "seeds_passing": sum(r["pass"] for r in results),
            }
        )
    return table


def _median_max(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {"median": ordered[len(ordered) // 2], "max": ordered[-1]}


def format_preset_table(table: list[dict[str, Any]]) -> list[str]:
    """The preset table as aligned text lines (a header, then one line per row)."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, dict):
            return f"{value['median']}/{value['max']}"
        return str(value)

    columns = [
        ("scenario", "scenario"),
        ("preset", "preset"),
        ("kind", "kind"),
        ("incidents", "incidents"),
        ("false", "false_alerts"),
        ("precision", "precision"),
        ("recall", "recall"),
        ("detect med/max", "detect_buckets"),
        ("resolve med/max", "resolve_buckets"),
        ("false/brand-week", "false_alerts_per_brand_week"),
        ("seeds ok", "seeds_passing"),
    ]
    rows = [[title for title, _ in columns]]
    for r in table:
        rows.append(
            [
                cell(r[key]) if key != "seeds_passing" else f"{r[key]}/{r['seeds']}"
                for _, key in columns
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
