"""The score stage's pure core: raw Kafka records in, scored posts and dead letters out.

No broker and no clock in here: the Faust agent turns events into `RawRecord`s, calls
`BatchScorer.score`, and delivers what comes back. Tests call the same method directly.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from brandmon.metrics import Metrics
from stream.classifier import Classifier, to_predictions
from stream.schema import DeadLetter, Post, ScoredPost, Scores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawRecord:
    """One message as read from Kafka, before anything is trusted about it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None = None  # the message's Kafka timestamp, seconds since the epoch

    @property
    def source(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass
class BatchResult:
    """What one batch produced: every input record is in exactly one of the two lists."""

    scored: list[tuple[RawRecord, ScoredPost]] = field(default_factory=list)
    dead: list[tuple[RawRecord, DeadLetter]] = field(default_factory=list)


class RecordRejected(ValueError):
    """A record that is not a valid post; `reason` is the DLQ reason code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _schema_reason(exc: ValidationError) -> tuple[str, str]:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "record"
    if first["type"] == "missing":
        return "missing_field", f"required field {where!r} is missing"
    if where == "text" and first["type"] == "value_error":
        return "empty_text", "field 'text' is empty or only whitespace"
    return "invalid_field", f"field {where!r}: {first['msg']}"


def parse_post(value: bytes | None) -> Post:
    """Decode and validate one `posts` value, or raise RecordRejected with a reason code."""
    if value is None or value == b"":
        raise RecordRejected("empty_value", "the record has no value (null or empty)")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordRejected("invalid_utf8", f"value is not UTF-8: {exc}") from exc
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordRejected("invalid_json", f"value is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise RecordRejected("not_an_object", f"value is JSON {type(obj).__name__}, not an object")
    try:
        return Post.model_validate(obj)
    except ValidationError as exc:
        raise RecordRejected(*_schema_reason(exc)) from exc


def dead_letter(record: RawRecord, reason: str, detail: str, now: datetime) -> DeadLetter:
    return DeadLetter(
        reason=reason,
        detail=detail[:2000],
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key_b64=base64.b64encode(record.key).decode() if record.key is not None else None,
        value_b64=base64.b64encode(record.value or b"").decode(),
        failed_at=now,
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


class BatchScorer:
    """Validates a batch, scores the valid posts in one classifier call, and routes the rest.

    A classifier call that raises is retried once for the whole batch, then the batch is scored
    record by record, so one poison record goes to the DLQ and the others are still scored.
    """

    def __init__(
        self,
        classifier: Classifier,
        metrics: Metrics,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.classifier = classifier
        self.metrics = metrics
        self.clock = clock

    def score(self, records: Sequence[RawRecord]) -> BatchResult:
        result = BatchResult()
        now = self.clock()
        valid: list[tuple[RawRecord, Post]] = []
        for record in records:
            try:
                valid.append((record, parse_post(record.value)))
            except RecordRejected as exc:
                result.dead.append((record, dead_letter(record, exc.reason, exc.detail, now)))
        self.metrics.posts_consumed.inc(len(records))
        self.metrics.batch_size.observe(len(records))
        if valid:
            self._score_valid(valid, result)
        for _, letter in result.dead:
            self.metrics.posts_dlq.labels(reason=letter.reason).inc()
        return result

    def _score_valid(self, valid: list[tuple[RawRecord, Post]], result: BatchResult) -> None:
        texts = [post.text for _, post in valid]
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                probs = self.classifier.predict_proba(texts)
                break
            except Exception as exc:  # any model failure: retry, then isolate per record
                self.metrics.inference_retries.inc()
                log.warning(
                    "inference failed for a batch of %d (attempt %d): %r", len(texts), attempt, exc
                )
        else:
            self._score_one_by_one(valid, result)
            return
        self.metrics.inference_seconds.observe(time.perf_counter() - started)
        scored_at = self.clock()
        for (record, post), prediction in zip(valid, to_predictions(probs), strict=True):
            result.scored.append(
                (record, self._scored(post, prediction.label, prediction.scores, scored_at))
            )

    def _score_one_by_one(self, valid: list[tuple[RawRecord, Post]], result: BatchResult) -> None:
        for record, post in valid:
            try:
                probs = self.classifier.predict_proba([post.text])
            except Exception as exc:  # this record is the poison: dead-letter it
                detail = f"the model raised on this post: {exc!r}"
                result.dead.append(
                    (record, dead_letter(record, "inference_failed", detail, self.clock()))
                )
                continue
            prediction = to_predictions(probs)[0]
            result.scored.append(
                (record, self._scored(post, prediction.label, prediction.scores, self.clock()))
            )

    def _scored(
        self, post: Post, label: str, scores: dict[str, float], scored_at: datetime
    ) -> ScoredPost:
        return ScoredPost(
            **post.model_dump(),
            label=label,
            scores=Scores(**scores),
            model_id=self.classifier.model_id,
            model_version=self.classifier.model_version,
            scored_at=scored_at,
        )
