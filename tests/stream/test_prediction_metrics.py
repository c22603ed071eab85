"""The score agent counts what the model predicted for delivered posts: by brand, label and
model version (brandmon_predictions_total) and the top-class probability
(brandmon_prediction_confidence), with brands bounded by max_brand_series.

The agent runs on a stand-in Faust app (no broker): `prepare` scores a batch as in the worker,
and its `after_ack` is what the batch loop calls once the outputs are acknowledged.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from aiokafka.errors import MessageSizeTooLargeError
from prometheus_client import CollectorRegistry

from brandmon.contracts.classifier import Probabilities
from brandmon.delivery import Deliverer, Output
from brandmon.metrics import OTHER_BRANDS, Metrics
from brandmon.settings import Settings
from brandmon.stream.agent import ScoreAgent
from brandmon.tools.fake_classifier import FakeClassifier


class FakeApp:
    """Just what ScoreAgent's constructor asks of a Faust app."""

    def topic(self, name: str, **kw: Any) -> str:
        return name

    def agent(self, *args: Any, **kw: Any) -> Any:
        return lambda fn: fn


class Message:
    def __init__(self, offset: int, value: bytes, key: bytes) -> None:
        self.topic = "posts"
        self.partition = 0
        self.offset = offset
        self.value = value
        self.key = key
        self.timestamp = 1.0


class Event:
    def __init__(self, message: Message) -> None:
        self.message = message


class FixedClassifier:
    """Returns the given probability rows in turn (columns: negative, neutral, positive)."""

    model_id = "fixed@7"
    model_version = "7"

    def __init__(self, rows: Sequence[Sequence[float]]) -> None:
        self.rows = [list(row) for row in rows]

    def predict_proba(self, texts: Sequence[str]) -> Probabilities:
        taken, self.rows = self.rows[: len(texts)], self.rows[len(texts) :]
        return np.array(taken, dtype=np.float32)


async def _never_sent(out: Output) -> None:
    raise AssertionError("these tests do not deliver")


def make_agent(classifier: Any, max_brand_series: int = 1000) -> tuple[ScoreAgent, Metrics]:
    metrics = Metrics(CollectorRegistry(), max_brand_series=max_brand_series)
    agent = ScoreAgent(
        FakeApp(),  # type: ignore[arg-type]
        Settings(),
        metrics,
        classifier,
        deliverer=Deliverer(_never_sent, metrics),
    )
    return agent, metrics


def events(posts: Sequence[tuple[str, str]], start: int = 0) -> list[Event]:
    """One event per (brand, text); a brand of "" makes an invalid post (dead-lettered)."""
    out = []
    for i, (brand, text) in enumerate(posts, start):
        value = json.dumps(
            {"id": f"p{i}", "text": text, "brand": brand, "created_at": "2026-11-22T06:00:00Z"}
        ).encode()
        out.append(Event(Message(i, value, brand.encode())))
    return out


def score_and_ack(agent: ScoreAgent, batch: list[Event], ack: bool = True) -> None:
    prepared = asyncio.run(agent.prepare(batch))  # type: ignore[arg-type]
    if ack:
        prepared.after_ack(prepared.outputs)  # every output delivered as it is


def predictions(metrics: Metrics, brand: str, label: str, version: str) -> float:
    value = metrics.registry.get_sample_value(
        "brandmon_predictions_total", {"brand": brand, "label": label, "model_version": version}
    )
    return value or 0.0


def confidence(metrics: Metrics, suffix: str, label: str, version: str, **extra: str) -> float:
    value = metrics.registry.get_sample_value(
        f"brandmon_prediction_confidence_{suffix}",
        {"label": label, "model_version": version, **extra},
    )
    return value or 0.0


def test_delivered_predictions_are_counted_by_brand_label_and_model_version() -> None:
    agent, metrics = make_agent(FakeClassifier())
    batch = events(
        [
            ("acme", "I hate this"),
            ("acme", "love it"),
            ("acme", "a question"),
            ("globex", "awful service"),
            ("", "no brand: dead-lettered, not a prediction"),
        ]
    )
    score_and_ack(agent, batch, ack=False)
    # Scored but not yet acknowledged: nothing counted (a crash now replays the batch).
    assert predictions(metrics, "acme", "negative", "0") == 0
    score_and_ack(agent, batch)
    assert predictions(metrics, "acme", "negative", "0") == 1
    assert predictions(metrics, "acme", "positive", "0") == 1
    assert predictions(metrics, "acme", "neutral", "0") == 1
    assert predictions(metrics, "globex", "negative", "0") == 1
    # The histogram's count is the same count without the brand; the invalid post is in
    # neither (it is a dead letter).
    assert confidence(metrics, "count", "negative", "0") == 2
    assert confidence(metrics, "count", "positive", "0") == 1
    assert confidence(metrics, "count", "neutral", "0") == 1
    assert (
        metrics.registry.get_sample_value("brandmon_posts_dlq_total", {"reason": "invalid_field"})
        == 1
    )
    agent.close()


def test_confidence_is_the_top_class_probability_in_its_bucket() -> None:
    rows = [
        [0.45, 0.35, 0.20],  # negative, unsure: confidence 0.45
        [0.10, 0.30, 0.60],  # positive at exactly the 0.6 line
        [0.02, 0.03, 0.95],  # positive, sure
        [0.05, 0.91, 0.04],  # neutral
    ]
    agent, metrics = make_agent(FixedClassifier(rows))
    score_and_ack(agent, events([("acme", f"post {i}") for i in range(len(rows))]))
    assert confidence(metrics, "sum", "negative", "7") == pytest.approx(0.45, abs=1e-5)
    assert confidence(metrics, "sum", "positive", "7") == pytest.approx(0.60 + 0.95, abs=1e-5)
    assert confidence(metrics, "sum", "neutral", "7") == pytest.approx(0.91, abs=1e-5)
    # Buckets are cumulative: the unsure negative is at most 0.5, one positive at most 0.6.
    assert confidence(metrics, "bucket", "negative", "7", le="0.5") == 1
    assert confidence(metrics, "bucket", "negative", "7", le="0.4") == 0
    assert confidence(metrics, "bucket", "positive", "7", le="0.6") == 1
    assert confidence(metrics, "bucket", "positive", "7", le="0.9") == 1
    assert confidence(metrics, "bucket", "positive", "7", le="0.95") == 2
    assert confidence(metrics, "bucket", "neutral", "7", le="0.9") == 0
    assert confidence(metrics, "bucket", "neutral", "7", le="0.95") == 1
    assert predictions(metrics, "acme", "positive", "7") == 2
    agent.close()


def test_brands_beyond_the_cap_are_counted_as_other_and_nothing_is_lost() -> None:
    agent, metrics = make_agent(FakeClassifier(), max_brand_series=2)
    first = [("acme", "bad"), ("globex", "good"), ("initech", "bad"), ("umbrella", "bad")]
    score_and_ack(agent, events(first))
    # The two brands seen first keep their series, for good; later ones share _other.
    score_and_ack(agent, events([("acme", "bad"), ("hooli", "good")], start=10))
    assert predictions(metrics, "acme", "negative", "0") == 2
    assert predictions(metrics, "globex", "positive", "0") == 1
    assert predictions(metrics, OTHER_BRANDS, "negative", "0") == 2
    assert predictions(metrics, OTHER_BRANDS, "positive", "0") == 1
    for brand in ("initech", "umbrella", "hooli"):
        for label in ("negative", "neutral", "positive"):
            assert predictions(metrics, brand, label, "0") == 0
    brands = {
        sample.labels["brand"]
        for family in metrics.registry.collect()
        if family.name == "brandmon_predictions"
        for sample in family.samples
    }
    assert brands == {"acme", "globex", OTHER_BRANDS}
    # The sum over brands is every delivered prediction.
    total = sum(
        confidence(metrics, "count", label, "0") for label in ("negative", "neutral", "positive")
    )
    assert total == 6
    agent.close()


def test_a_post_that_cannot_be_written_is_dead_lettered_and_not_counted_as_scored() -> None:
    from datetime import UTC, datetime

    from brandmon.contracts.posts import ScoredPost
    from brandmon.contracts.records import RawRecord
    from brandmon.stream.agent import ScoreOutputs
    from brandmon.stream.scoring import BatchResult

    settings = Settings()
    now = datetime(2026, 11, 22, 6, tzinfo=UTC)
    fields = {
        "brand": "acme",
        "created_at": now,
        "label": "negative",
        "scores": {"negative": 0.8, "neutral": 0.1, "positive": 0.1},
        "model_id": "m",
        "model_version": "1",
        "scored_at": now,
    }
    good = ScoredPost.model_validate({"id": "ok", "text": "fine", **fields})
    broken = ScoredPost.model_construct(**{**good.__dict__, "id": "bad", "text": "half \ud83d"})
    result = BatchResult()
    for offset, post in enumerate((good, broken)):
        record = RawRecord("posts", 0, offset, b"acme", b"{}", 1.0)
        result.scored.append((record, post))
    outputs = ScoreOutputs(settings)(result)
    assert [o.topic for o in outputs] == [settings.topic_scored, settings.topic_dlq]
    assert json.loads(outputs[1].value)["reason"] == "unserializable"
    # the metrics read result.scored after the ack: the dead-lettered post is not in it
    assert [post.id for _, post in result.scored] == ["ok"]
    assert [letter.reason for _, letter in result.dead] == ["unserializable"]


def test_a_post_whose_record_was_too_large_is_counted_once_as_a_too_large_dead_letter() -> None:
    """The broker refuses the scored record of the long post; the deliverer sends its
    `too_large` dead letter instead, and the counts follow what was delivered (issue 19)."""
    agent, metrics = make_agent(FakeClassifier())
    settings = Settings()
    limit = 10_000  # the scored topic's max.message.bytes

    async def broker(out: Output) -> None:
        if len(out.value) > limit:
            raise MessageSizeTooLargeError()

    deliverer = Deliverer(broker, metrics, shrink=agent.outputs.shrink)
    batch = events([("acme", "bad"), ("acme", "good " * 5_000), ("", "no brand")])
    prepared = asyncio.run(agent.prepare(batch))  # type: ignore[arg-type]
    delivered = asyncio.run(deliverer.deliver(prepared.outputs))
    prepared.after_ack(delivered)

    on_topics = Counter(json.loads(out.value).get("reason", out.topic) for out in delivered)
    assert on_topics == {settings.topic_scored: 1, "too_large": 1, "invalid_field": 1}

    def sample(name: str, **labels: str) -> float:
        return metrics.registry.get_sample_value(name, labels) or 0.0

    assert sample("brandmon_posts_scored_total", label="negative") == 1
    assert sample("brandmon_posts_scored_total", label="positive") == 0
    assert sample("brandmon_posts_dlq_total", reason="too_large") == 1
    assert sample("brandmon_posts_dlq_total", reason="invalid_field") == 1
    assert predictions(metrics, "acme", "negative", "0") == 1
    assert predictions(metrics, "acme", "positive", "0") == 0
    agent.close()
