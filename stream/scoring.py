"""The score stage's pure core: raw Kafka records in, scored posts and dead letters out.

No broker and no clock in here: the Faust agent turns events into `RawRecord`s, calls
`BatchScorer.score`, and delivers what comes back. Tests call the same method directly.
Parsing and dead letters are the base's (`brandmon.contracts.records`), shared with the
alert stage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from brandmon.contracts.classifier import (
    Classifier,
    Probabilities,
    StagedClassifier,
    to_predictions,
)
from brandmon.contracts.posts import DeadLetter, Post, ScoredPost, Scores
from brandmon.contracts.records import (
    PARSE_REASONS,
    RawRecord,
    RecordRejected,
    bounded_dead_letter,
    dead_letter,
    parse_post,
    parse_scored,
)
from brandmon.metrics import Metrics

if TYPE_CHECKING:
    from brandmon.stream.routing import LanguageRouter

__all__ = [
    "PARSE_REASONS",
    "BatchResult",
    "BatchScorer",
    "RawRecord",
    "RecordRejected",
    "bounded_dead_letter",
    "dead_letter",
    "parse_post",
    "parse_scored",
]

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    """What one batch produced: every input record is in exactly one of the two lists."""

    scored: list[tuple[RawRecord, ScoredPost]] = field(default_factory=list)
    dead: list[tuple[RawRecord, DeadLetter]] = field(default_factory=list)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class BatchScorer:
    """Validates a batch, scores the valid posts in one classifier call, and routes the rest.

    A classifier call that raises is retried once for the whole batch, then the batch is scored
    record by record, so one poison record goes to the DLQ and the others are still scored.

    `classifier` may be replaced at any time from another thread (a model promotion,
    stream/rollout.py): each batch reads it once when it starts and scores every record with
    that one model, so no batch is ever scored partly by one model and partly by another.

    With a `router` (stream/routing.py) the batch is split by language: `classifier` scores
    the languages its manifest lists, the router's registry the others.
    """

    def __init__(
        self,
        classifier: Classifier,
        metrics: Metrics,
        clock: Callable[[], datetime] = _utcnow,
        router: LanguageRouter | None = None,
    ) -> None:
        self.classifier = classifier
        self.metrics = metrics
        self.clock = clock
        self.router = router

    def score(self, records: Sequence[RawRecord]) -> BatchResult:
        result = BatchResult()
        now = self.clock()
        started = time.perf_counter()
        valid: list[tuple[RawRecord, Post]] = []
        for record in records:
            try:
                valid.append((record, parse_post(record.value)))
            except RecordRejected as exc:
                result.dead.append((record, dead_letter(record, exc.reason, exc.detail, now)))
        self._stage("parse", time.perf_counter() - started)
        self.metrics.posts_consumed.inc(len(records))
        self.metrics.batch_size.observe(len(records))
        if valid and self.router is not None:
            self.router.score(valid, self.classifier, self._score_valid, result, now)
        elif valid:
            self._score_valid(self.classifier, valid, result)  # the one model of this batch
        return result

    def _score_valid(
        self, clf: Classifier, valid: list[tuple[RawRecord, Post]], result: BatchResult
    ) -> None:
        texts = [post.text for _, post in valid]
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                probs = self._predict(clf, texts)
                break
            except Exception as exc:  # any model failure: retry, then isolate per record
                self.metrics.inference_retries.inc()
                log.warning(
                    "inference failed for a batch of %d (attempt %d): %r", len(texts), attempt, exc
                )
        else:
            self._score_one_by_one(clf, valid, result)
            return
        self.metrics.inference_seconds.observe(time.perf_counter() - started)
        scored_at = self.clock()
        for (record, post), prediction in zip(valid, to_predictions(probs), strict=True):
            result.scored.append(
                (record, self._scored(clf, post, prediction.label, prediction.scores, scored_at))
            )

    def _predict(self, clf: Classifier, texts: list[str]) -> Probabilities:
        """The classifier's probabilities, with tokenization and inference timed apart when
        it offers the two steps (a classifier that does not is timed as inference)."""
        started = time.perf_counter()
        if not isinstance(clf, StagedClassifier):
            probs = clf.predict_proba(texts)
            self._stage("inference", time.perf_counter() - started)
            return probs
        encoded = clf.tokenize(texts)
        tokenized = time.perf_counter()
        probs = clf.infer(encoded)
        self._stage("tokenize", tokenized - started)
        self._stage("inference", time.perf_counter() - tokenized)
        return probs

    def _stage(self, stage: str, seconds: float) -> None:
        self.metrics.batch_stage_seconds.labels(stage=stage).observe(seconds)

    def _score_one_by_one(
        self, clf: Classifier, valid: list[tuple[RawRecord, Post]], result: BatchResult
    ) -> None:
        for record, post in valid:
            try:
                probs = clf.predict_proba([post.text])
            except Exception as exc:  # this record is the poison: dead-letter it
                detail = f"the model raised on this post: {exc!r}"
                result.dead.append(
                    (record, dead_letter(record, "inference_failed", detail, self.clock()))
                )
                continue
            prediction = to_predictions(probs)[0]
            scored_at = self.clock()
            result.scored.append(
                (record, self._scored(clf, post, prediction.label, prediction.scores, scored_at))
            )

    @staticmethod
    def _scored(
        clf: Classifier, post: Post, label: str, scores: dict[str, float], scored_at: datetime
    ) -> ScoredPost:
        return ScoredPost(
            **post.model_dump(),
            label=label,
            scores=Scores(**scores),
            model_id=clf.model_id,
            model_version=clf.model_version,
            scored_at=scored_at,
        )
