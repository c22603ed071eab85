"""Topic terms: what a trigger says its spike is about (alerts/topics.py)."""

from __future__ import annotations

import json
import random

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.buckets import short_hash
from brandmon.alerts.state import BrandState, Bucket
from brandmon.alerts.topics import (
    MAX_TERM_CHARS,
    TopicBaseline,
    WindowTerms,
    count_terms,
    merge,
    post_terms,
    rank_terms,
    voice_bit,
    voices_in,
)
from brandmon.contracts.alerts import Alert
from brandmon.contracts.posts import ScoredPost
from tests.alerts.streams import SHARE_ONLY, Run, post

S = AlertSettings()
#: What the brand's negative posts always say: never the topic of a spike.
GRUMBLES = ["delivery", "late", "support", "hold", "price", "expensive", "slow", "order"]
GRUMBLES += ["rude", "staff", "email"]
FILLER = ["the", "my", "so", "this", "was", "again", "today", "still", "just", "really"]


# --- tokenizer ------------------------------------------------------------------------------


def test_terms_are_words_and_phrases_without_noise() -> None:
    text = (
        "@AcmeHelp ACME's App crashed AGAIN!!! 3rd time, refund me https://t.co/x1 "
        "www.acme.com #AppCrash it's a no-go"
    )
    assert post_terms(text, "acme") == [
        "app",
        "crashed",
        "time",
        "refund",
        "appcrash",
        "app crashed",  # "time refund" spans a comma: no phrase
    ]
    terms = post_terms(text, "acme")
    assert "app crashed" in terms and "app" in terms and "refund" in terms
    assert "appcrash" in terms  # a hashtag is a word
    assert not any(t.startswith(("acme", "http", "www", "@")) for t in terms)  # own name, links
    assert "acmehelp" not in terms  # mentions go
    assert not {"it's", "the", "a", "me"} & set(terms)  # stopwords go
    assert not any(len(t) < 3 or any(c.isdigit() for c in t) for t in terms)
    assert len(terms) == len(set(terms))


def test_a_bigram_never_spans_a_dropped_word() -> None:
    assert post_terms("battery is overheating", "globex") == ["battery", "overheating"]
    assert post_terms("battery overheating", "globex") == [
        "battery",
        "overheating",
        "battery overheating",
    ]
    assert post_terms("Globex Phone broke", "Globex Phone") == ["broke"]  # every word of the name


def test_terms_are_bounded_in_length_and_count() -> None:
    long_word = "a" * (MAX_TERM_CHARS + 1)
    assert post_terms(f"{long_word} fine", "x") == ["fine"]
    assert post_terms("\U00010400\U00010401\U00010402 okay fine", "x") == ["fine"]  # BMP only
    many = " ".join(f"w{chr(97 + i // 26)}{chr(97 + i % 26)}x" for i in range(100))
    assert len(post_terms(many, "x")) == 32


# --- sketch ---------------------------------------------------------------------------------


def test_sketch_is_bounded_and_keeps_a_frequent_term() -> None:
    sketch: dict[str, list[int]] = {}
    rounds = seen = 0
    rng = random.Random(1)
    for i in range(400):
        terms = [f"noise{rng.randrange(10**6)}" for _ in range(2)]
        if i % 3 == 0:
            terms.append("outage")
        more, seen = count_terms(sketch, terms, voice_bit(short_hash(str(i))), 8, seen)
        rounds += more
        assert len(sketch) <= 8
    count, mask = sketch["outage"]
    assert count <= 134 <= count + rounds  # never overstated, and the rounds cover the rest
    assert 100 < voices_in(mask) <= 300  # ~134 voices, from the mask


def test_one_voice_is_one_voice_however_often() -> None:
    sketch: dict[str, list[int]] = {}
    seen = 0
    for _ in range(50):
        _, seen = count_terms(sketch, ["scam"], voice_bit(short_hash("spammer")), 8, seen)
    count, mask = sketch["scam"]
    assert count == 50 and round(voices_in(mask)) == 1


# --- ranking --------------------------------------------------------------------------------


def _count(bucket: Bucket, terms: list[str], voice: str) -> None:
    """Count one negative post's terms into `bucket`, as alerts.buckets.add_post does."""
    bucket.term_total += len(terms)
    rounds, bucket.term_door = count_terms(
        bucket.terms,
        terms,
        voice_bit(short_hash(voice)),
        S.topic_terms_per_bucket,
        bucket.term_door,
    )
    bucket.term_rounds += rounds


def _baseline(rng: random.Random, buckets: int = 120) -> TopicBaseline:
    """Two hours of normal negative posts: 15 a minute, grumbles only."""
    base = TopicBaseline()
    for index in range(buckets):
        bucket = Bucket(index=index)
        for i in range(15):
            terms = rng.sample(GRUMBLES, 3)
            _count(bucket, terms, f"{index}/{i}")
        base.learn(bucket.terms, bucket.term_total, bucket.term_rounds, index, S)
    return base


def _window(rng: random.Random, posts: list[tuple[str, list[str]]]) -> WindowTerms:
    """One bucket's sketch of `(author, terms)` negative posts."""
    bucket = Bucket(index=0)
    for author, terms in posts:
        _count(bucket, terms, author)
    return merge([(bucket.terms, bucket.term_total, bucket.term_rounds)])


def test_a_planted_term_ranks_first_and_normal_grumbles_do_not_rank() -> None:
    rng = random.Random(2)
    base = _baseline(rng)
    posts = [(f"a{i}", rng.sample(GRUMBLES, 3)) for i in range(60)]
    posts += [(f"b{i}", [*rng.sample(GRUMBLES, 2), "outage"]) for i in range(30)]
    ranked = rank_terms(_window(rng, posts), base, S)
    assert [r.term for r in ranked][:1] == ["outage"]
    assert not {r.term for r in ranked} & set(GRUMBLES)
    assert ranked[0].z >= S.topic_min_z and ranked[0].voices > 25


def test_a_term_already_common_in_the_baseline_is_not_named() -> None:
    rng = random.Random(3)
    base = _baseline(rng)
    # Twice as many negative posts as usual, saying what they always say, plus a planted term
    # in a few: the usual words are frequent, but not unusual.
    posts = [(f"a{i}", rng.sample(GRUMBLES, 3)) for i in range(120)]
    posts += [(f"b{i}", ["recall", *rng.sample(GRUMBLES, 2)]) for i in range(12)]
    ranked = [r.term for r in rank_terms(_window(rng, posts), base, S)]
    assert ranked == ["recall"]


def test_one_spammer_repeating_a_word_is_not_a_topic() -> None:
    rng = random.Random(4)
    base = _baseline(rng)
    posts = [(f"a{i}", rng.sample(GRUMBLES, 3)) for i in range(60)]
    posts += [("spammer", ["boycott", f"variant{i}"]) for i in range(80)]  # distinct texts
    assert [r.term for r in rank_terms(_window(rng, posts), base, S)] == []


def test_a_new_brand_gets_its_most_frequent_terms() -> None:
    rng = random.Random(5)
    posts = [(f"a{i}", ["outage", rng.choice(GRUMBLES)]) for i in range(20)]
    posts += [(f"b{i}", ["refund"]) for i in range(8)]
    ranked = [r.term for r in rank_terms(_window(rng, posts), TopicBaseline(), S)]
    assert ranked[:2] == ["outage", "refund"]


def test_phrases_and_their_words_are_not_both_named() -> None:
    rng = random.Random(6)
    base = _baseline(rng)
    posts = [(f"a{i}", ["app", "crash", "app crash"]) for i in range(30)]
    posts += [(f"b{i}", ["app", "login"]) for i in range(20)]
    ranked = [r.term for r in rank_terms(_window(rng, posts), base, S)]
    assert ranked == ["app crash", "login"]


# --- baseline -------------------------------------------------------------------------------


def test_baseline_is_bounded_decays_and_round_trips() -> None:
    s = AlertSettings(topic_baseline_terms=10, topic_baseline_half_life_seconds=600)
    base = TopicBaseline()
    for index in range(30):
        sketch = {f"t{index}x{j}": [5, 1] for j in range(4)}
        base.learn(sketch, 20, 0, index, s)
        assert len(base.weights) <= 10
    assert base.total < 20 * 30 / 2  # decayed: 10 buckets (600 s) halve the weight
    before = base.weights["t29x0"]
    base.learn({}, 0, 0, 39, s)
    assert abs(base.weights["t29x0"] - before / 2) < 1e-9
    assert TopicBaseline.from_dict(json.loads(json.dumps(base.to_dict()))) == base


def test_old_state_without_terms_still_loads() -> None:
    state = BrandState(brand="acme", buckets={3: Bucket(index=3, posts=1)})
    stored = state.to_dict()
    del stored["topics"]
    for b in stored["buckets"]:
        del b["w"]
    loaded = BrandState.from_dict(stored)
    assert loaded.topics == TopicBaseline() and loaded.buckets[3].terms == {}


# --- engine ---------------------------------------------------------------------------------


def _minute(rng: random.Random, m: int, total: int, negatives: int, topic: list[str]) -> list:
    """`total` posts in minute m with varied texts; the first `negatives` negative, and of
    those, when `topic` is given, two in three also say one of its words."""
    posts: list[ScoredPost] = []
    for i in range(total):
        negative = i < negatives
        words = rng.sample(GRUMBLES if negative else FILLER, 3) + rng.sample(FILLER, 3)
        if negative and topic and i % 3:
            words.append(rng.choice(topic))
        rng.shuffle(words)
        text = "acme " + " ".join(words) + f" {'x' * (1 + i % 7)}{m}"  # distinct texts
        posts.append(post(m * 60 + 60 * (i + 0.5) / total, negative, author=f"m{m}a{i}", text=text))
    return posts


def test_a_spike_names_its_injected_words_in_the_trigger() -> None:
    rng = random.Random(7)
    run = Run(settings=SHARE_ONLY, roundtrip=True)
    for m in range(60):
        run.feed(_minute(rng, m, 100, 15, []))
    assert run.alerts == []
    assert run.state is not None and len(run.state.topics.weights) > 0
    for m in range(60, 66):
        run.feed(_minute(rng, m, 100, 45, ["refund", "outage"]))
    for m in range(66, 90):
        run.feed(_minute(rng, m, 100, 15, []))
    triggers = [a for a in run.alerts if a.action == "trigger"]
    resolves = [a for a in run.alerts if a.action == "resolve"]
    assert triggers and resolves
    for alert in triggers:
        assert set(alert.topic_terms) == {"refund", "outage"}, alert.topic_terms
        assert ", about: " in alert.summary
        assert all(t in alert.summary for t in alert.topic_terms)
    assert all(a.topic_terms == [] and "about" not in a.summary for a in resolves)
    old = json.loads(triggers[0].model_dump_json())
    del old["topic_terms"]  # a record written before topic terms still parses
    assert Alert.model_validate(old).topic_terms == []


def test_topic_terms_can_be_turned_off() -> None:
    rng = random.Random(8)
    run = Run(settings=AlertSettings(surge_enabled=False, topic_max_terms=0))
    for m in range(60):
        run.feed(_minute(rng, m, 100, 15, []))
    for m in range(60, 64):
        run.feed(_minute(rng, m, 100, 45, ["refund"]))
    assert run.alerts and all(a.topic_terms == [] for a in run.alerts)
    assert run.state is not None and run.state.topics.weights == {}
    assert all(b.terms == {} and b.term_total == 0 for b in run.state.buckets.values())
