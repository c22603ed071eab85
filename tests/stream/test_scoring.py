"""BatchScorer without a broker: every record ends up scored or dead-lettered, never lost."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from brandmon.contracts.classifier import Probabilities
from brandmon.metrics import Metrics
from brandmon.stream.scoring import BatchScorer, RawRecord
from brandmon.tools.fake_classifier import FakeClassifier

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


def rec(offset: int, value: bytes | None, key: bytes | None = b"acme") -> RawRecord:
    return RawRecord("posts", 0, offset, key, value, timestamp=1.0)


def good(i: int, text: str = "fine") -> bytes:
    return json.dumps(
        {"id": f"p{i}", "text": text, "brand": "acme", "created_at": "2026-11-22T06:00:00Z"}
    ).encode()


def scorer(classifier: object | None = None) -> tuple[BatchScorer, Metrics]:
    metrics = Metrics(CollectorRegistry())
    return BatchScorer(classifier or FakeClassifier(), metrics, clock=lambda: NOW), metrics


def test_valid_posts_are_scored_in_one_call_with_label_scores_and_model() -> None:
    fake = FakeClassifier()
    s, metrics = scorer(fake)
    result = s.score(
        [rec(0, good(0, "I hate this")), rec(1, good(1, "love it")), rec(2, good(2, "a question"))]
    )
    assert fake.calls == [3]
    assert [p.label for _, p in result.scored] == ["negative", "positive", "neutral"]
    first = result.scored[0][1]
    assert first.id == "p0" and first.model_id == "fake@0" and first.scored_at == NOW
    assert abs(first.scores.negative + first.scores.neutral + first.scores.positive - 1) < 1e-4
    assert metrics.registry.get_sample_value("brandmon_posts_consumed_total") == 3


def test_bad_records_go_to_the_dlq_with_reason_source_and_original_bytes() -> None:
    s, metrics = scorer()
    result = s.score([rec(5, b"\x00garbage", key=b"k1"), rec(6, good(6))])
    assert [p.id for _, p in result.scored] == ["p6"]
    ((source, letter),) = result.dead
    assert source.offset == 5
    assert (letter.reason, letter.topic, letter.partition, letter.offset) == (
        "invalid_json",
        "posts",
        0,
        5,
    )
    assert base64.b64decode(letter.value_b64) == b"\x00garbage"
    assert base64.b64decode(letter.key_b64 or "") == b"k1"
    assert letter.id == "posts/0/5" and letter.original_size == 8 and not letter.truncated
    # counted by the agent once the dead letter is acknowledged, not before
    assert (
        metrics.registry.get_sample_value("brandmon_posts_dlq_total", {"reason": "invalid_json"})
        is None
    )


def test_a_poison_post_is_isolated_and_the_rest_of_its_batch_is_scored() -> None:
    fake = FakeClassifier(poison="poison")
    s, metrics = scorer(fake)
    result = s.score([rec(0, good(0)), rec(1, good(1, "poison pill")), rec(2, good(2))])
    assert sorted(p.id for _, p in result.scored) == ["p0", "p2"]
    assert [(r.offset, d.reason) for r, d in result.dead] == [(1, "inference_failed")]
    # whole batch twice (try + retry), then one call per post
    assert fake.calls == [3, 3, 1, 1, 1]
    assert metrics.registry.get_sample_value("brandmon_inference_retries_total") == 2


class FlakyOnce:
    """Fails its first call only, like a transient runtime error."""

    model_id, model_version = "flaky@1", "1"

    def __init__(self) -> None:
        self.inner = FakeClassifier()
        self.calls = 0

    def predict_proba(self, texts: Sequence[str]) -> Probabilities:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("transient")
        return self.inner.predict_proba(texts)


def test_a_transient_failure_is_retried_once_for_the_whole_batch() -> None:
    flaky = FlakyOnce()
    s, _ = scorer(flaky)
    result = s.score([rec(i, good(i)) for i in range(4)])
    assert len(result.scored) == 4 and not result.dead
    assert flaky.calls == 2


def test_scores_follow_the_classifier_column_order() -> None:
    class Fixed:
        model_id, model_version = "fixed@1", "1"

        def predict_proba(self, texts: Sequence[str]) -> Probabilities:
            return np.tile(np.array([[0.2, 0.1, 0.7]], dtype=np.float32), (len(texts), 1))

    s, _ = scorer(Fixed())
    ((_, post),) = s.score([rec(0, good(0))]).scored
    assert post.label == "positive"
    assert (post.scores.negative, post.scores.neutral, post.scores.positive) == (0.2, 0.1, 0.7)


records = st.lists(
    st.one_of(
        st.builds(lambda i: ("ok", good(i)), st.integers(0, 10_000)),
        st.builds(lambda i: ("ok", good(i, "poison here")), st.integers(0, 10_000)),
        st.builds(lambda b: ("bad", b), st.binary(max_size=40)),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(records)
def test_every_record_comes_out_exactly_once(batch: list[tuple[str, bytes]]) -> None:
    s, _ = scorer(FakeClassifier(poison="poison"))
    raws = [rec(i, value) for i, (_, value) in enumerate(batch)]
    result = s.score(raws)
    offsets = sorted([r.offset for r, _ in result.scored] + [r.offset for r, _ in result.dead])
    assert offsets == list(range(len(batch)))
    for record, post in result.scored:
        assert json.loads(record.value or b"{}")["id"] == post.id


POISON = [
    b"[" * 200_000,
    b'{"id": "x", "text": "t", "brand": "acme", "created_at": 1, "likes": ' + b"9" * 5000 + b"}",
    b'{"id": "x", "text": "\\ud83d", "brand": "acme", "created_at": "2026-11-22T06:00:00Z"}',
    b'{"id": "x", "text": "t", "brand": "acme", "created_at": "9999-12-31T23:59:59-05:00"}',
    b'{"id": "x", "text": "t", "brand": "acme", "created_at": "0001-01-01T00:00:00Z"}',
    b'{"id": "x", "text": "t", "brand": "acme", "created_at": NaN}',
    b'{"id": "x", "text": "\\u200b", "brand": "acme", "created_at": "2026-11-22T06:00:00Z"}',
    b'{"id": "x", "text": "t", "brand": "ac\\nme", "created_at": "2026-11-22T06:00:00Z"}',
]


def test_poison_records_are_dead_lettered_and_the_posts_behind_them_scored() -> None:
    """The measurement of issue 8 without a broker: poison first, then 20 valid posts."""
    s, _ = scorer()
    batch = [rec(i, value) for i, value in enumerate(POISON)]
    batch += [rec(len(POISON) + i, good(i)) for i in range(20)]
    result = s.score(batch)
    assert [p.id for _, p in result.scored] == [f"p{i}" for i in range(20)]
    assert [r.offset for r, _ in result.dead] == list(range(len(POISON)))
    assert [d.reason for _, d in result.dead] == [
        "too_deep",
        "invalid_number",
        "invalid_unicode",
        "time_out_of_range",
        "time_out_of_range",
        "invalid_number",
        "empty_text",
        "control_character",
    ]
    for _, letter in result.dead:  # every dead letter can be written and read back
        assert type(letter).model_validate_json(letter.model_dump_json()) == letter


class TwoStepClassifier(FakeClassifier):
    """The fake, offering tokenize and infer apart as the ONNX classifier does."""

    def tokenize(self, texts: Sequence[str]) -> list[str]:
        return list(texts)

    def infer(self, encoded: list[str]) -> Probabilities:
        return self.predict_proba(encoded)


def _stage_count(metrics: Metrics, stage: str) -> float | None:
    return metrics.registry.get_sample_value("brandmon_batch_stage_seconds_count", {"stage": stage})


def test_each_batch_times_parsing_tokenization_and_inference_apart() -> None:
    s, metrics = scorer(TwoStepClassifier())
    s.score([rec(0, good(0)), rec(1, b"not json")])
    for stage in ("parse", "tokenize", "inference"):
        assert _stage_count(metrics, stage) == 1, stage


def test_a_classifier_without_two_steps_is_timed_as_inference() -> None:
    s, metrics = scorer(FakeClassifier())
    s.score([rec(0, good(0))])
    assert _stage_count(metrics, "inference") == 1
    assert _stage_count(metrics, "tokenize") is None
