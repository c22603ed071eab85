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
from typing import TYPE_CHECKING, TypeVar

from brandmon.contracts.classifier import (
    Classifier,
    Prediction,
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
from brandmon.stream.challenger import Challenger, ShadowPair, scored_by_challenger

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

#: A post, or a champion's scored post in shadow mode (what a challenger record is made from).
P = TypeVar("P", bound=Post)


@dataclass
class BatchResult:
    """What one batch produced: every input record is in exactly one of `scored` and `dead`.

    With a challenger in shadow mode, `shadow` holds the challenger's record of scored posts
    (all of them, or none when the challenger failed on the batch); `challenger_model` is the
    (model_id, model_version) of the batch's challenger, if any.
    """

    scored: list[tuple[RawRecord, ScoredPost]] = field(default_factory=list)
    dead: list[tuple[RawRecord, DeadLetter]] = field(default_factory=list)
    shadow: list[tuple[RawRecord, ShadowPair]] = field(default_factory=list)
    challenger_model: tuple[str, str] | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class BatchScorer:
    """Validates a batch, scores the valid posts in one classifier call, and routes the rest.

    A classifier call that raises is retried once for the whole batch, then the batch is scored
    record by record, so one poison record goes to the DLQ and the others are still scored.

    `classifier` may be replaced at any time from another thread (a model promotion,
    stream/rollout.py): each batch reads it once when it starts and scores every record with
    that one model, so no batch is ever scored partly by one model and partly by another.

    `challenger` (stream/challenger.py) is read once per batch too; None (the default) costs
    nothing. Its failures never cost the champion's records: see that module's policy.

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
        self.challenger: Challenger | None = None
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
        clf, challenger = self.classifier, self.challenger  # the models of this batch
        if not valid:
            return result
        if challenger is not None:
            result.challenger_model = challenger.model

        def score_part(
            model: Classifier, part: list[tuple[RawRecord, Post]], into: BatchResult
        ) -> None:
            # the challenger stands in for the main model only (split mode), never for a
            # language's own model
            if challenger is not None and challenger.mode == "split" and model is clf:
                self._split(clf, challenger, part, into)
            else:
                self._score_valid(model, part, into)

        if self.router is not None:
            self.router.score(valid, clf, score_part, result, now)
        else:
            score_part(clf, valid, result)
        if challenger is not None and challenger.mode == "shadow":
            self._shadow(challenger, result, clf)
        return result

    def _shadow(self, challenger: Challenger, result: BatchResult, main: Classifier) -> None:
        """The challenger's record of every post the main model scored (none if it fails);
        posts a language's own model scored, or no model read, have no shadow."""
        clf = challenger.classifier

        def shadow_of(champion: ScoredPost, p: Prediction, scored_at: datetime) -> ScoredPost:
            return champion.model_copy(  # the same post, validated once already
                update={
                    "label": p.label,
                    "scores": Scores(**p.scores),
                    "model_id": clf.model_id,
                    "model_version": clf.model_version,
                    "scored_at": scored_at,
                }
            )

        champions = [
            (record, post)
            for record, post in result.scored
            if post.label is not None
            and (post.model_id, post.model_version) == (main.model_id, main.model_version)
        ]
        scored = self._challenger_scored(challenger, [post for _, post in champions], shadow_of)
        if scored is not None:
            result.shadow = [
                (record, ShadowPair(champion, shadow))
                for (record, champion), shadow in zip(champions, scored, strict=True)
            ]

    def _split(
        self,
        clf: Classifier,
        challenger: Challenger,
        valid: list[tuple[RawRecord, Post]],
        result: BatchResult,
    ) -> None:
        """The challenger scores its brands' posts, the champion the others (and the
        challenger's too when it fails). A brand is wholly on one side, so each brand's
        records keep their order."""
        ours: list[tuple[RawRecord, Post]] = []
        theirs: list[tuple[RawRecord, Post]] = []
        for record, post in valid:
            side = theirs if scored_by_challenger(post.brand, challenger.share) else ours
            side.append((record, post))
        if not theirs:
            self._score_valid(clf, valid, result)
            return
        clf_b = challenger.classifier

        def scored_by_b(post: Post, p: Prediction, scored_at: datetime) -> ScoredPost:
            return self._scored(clf_b, post, p.label, p.scores, scored_at)

        scored = self._challenger_scored(challenger, [post for _, post in theirs], scored_by_b)
        if scored is None:
            ours = valid  # the champion scores the challenger's share of this batch
        else:
            result.scored.extend((record, s) for (record, _), s in zip(theirs, scored, strict=True))
        if ours:
            self._score_valid(clf, ours, result)

    def _challenger_scored(
        self,
        challenger: Challenger,
        posts: Sequence[P],
        make: Callable[[P, Prediction, datetime], ScoredPost],
    ) -> list[ScoredPost] | None:
        """The challenger's scored posts, in order (`make` builds each record); None, counted,
        when scoring or building them fails."""
        if not posts:
            return []
        clf = challenger.classifier
        started = time.perf_counter()
        try:
            predictions = to_predictions(clf.predict_proba([post.text for post in posts]))
            scored_at = self.clock()
            scored = [make(post, p, scored_at) for post, p in zip(posts, predictions, strict=True)]
        except Exception as exc:  # any challenger failure: counted, the champion carries on
            self.metrics.challenger_errors.labels(mode=challenger.mode).inc()
            log.warning(
                "challenger %s failed on a batch of %d (%s mode): %r; the champion's records "
                "are delivered as usual",
                clf.model_id,
                len(posts),
                challenger.mode,
                exc,
            )
            return None
        self._stage("challenger", time.perf_counter() - started)
        return scored

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
