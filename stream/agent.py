"""The score agent: the thin Faust shell around `BatchScorer`, on the shared batch loop.

    posts (raw bytes, key = brand)
      -> BatchScorer.score(records)             in the inference thread: scored + dead letters
      -> to_outputs(result)                     JSON bytes; a record that cannot be written
                                                becomes a dead letter instead
      -> BatchLoop: deliver every output, then ack the batch (brandmon/batches.py)
      -> ScoreOutputs.settle(result, delivered)  the result as delivered: a post whose record
                                                was too large became a `too_large` letter
      -> metrics                                each delivered record counted once

Batches are eager (brandmon/batches.py): the next batch goes to the model as soon as it is
free, with whatever is queued, up to max_batch and no more than the model scores in
max_batch_seconds. Each stage of each batch is timed into brandmon_batch_stage_seconds.

Delivery is at-least-once: a batch's input is acked only after all its outputs are
acknowledged by the broker, so a worker that dies mid-batch replays it; consumers
deduplicate on the post `id` (scored records) or the `source` (dead letters). With a
challenger in shadow mode (stream/challenger.py) the challenger's records for the shadow topic
are outputs of the same batch, delivered before the ack like the others. Batch N is
delivered while batch N+1 is scored; acks stay in order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import EventT

from brandmon.batches import (
    BatchLoop,
    BatchSizer,
    Prepared,
    Progress,
    faust_send,
    topic_exists,
)
from brandmon.contracts.classifier import Classifier
from brandmon.contracts.posts import DeadLetter, ScoredPost
from brandmon.contracts.records import RawRecord, bounded_dead_letter, dead_letter
from brandmon.delivery import Deliverer, Output
from brandmon.metrics import Metrics
from brandmon.settings import Settings
from brandmon.stream.challenger import CHALLENGER, count_comparisons, role_of
from brandmon.stream.routing import LanguageRouter
from brandmon.stream.scoring import BatchResult, BatchScorer

log = logging.getLogger(__name__)

#: Bytes of the original record kept in a dead letter that had to be cut to fit the topic.
CUT_PREFIX_BYTES = 4096


def to_raw(event: EventT[Any]) -> RawRecord:
    message = event.message
    return RawRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        timestamp=message.timestamp,
    )


def _headers(record: RawRecord) -> tuple[tuple[str, bytes], ...]:
    return (("brandmon-source", record.source.encode()),)


def _dlq_key(record: RawRecord) -> bytes | None:
    # the original key, unless it is itself the reason the record could not be written
    return record.key if record.key is None or len(record.key) <= 1024 else None


class ScoreOutputs:
    """Turns a scored batch into records for `posts.scored` and `posts.dlq`, and in shadow
    mode the challenger's for the shadow topic (pure)."""

    def __init__(self, settings: Settings) -> None:
        self.scored_topic = settings.topic_scored
        self.dlq_topic = settings.topic_dlq
        self.shadow_topic = settings.topic_scored_shadow

    def __call__(self, result: BatchResult) -> list[Output]:
        outputs: list[Output] = []
        written: list[tuple[RawRecord, ScoredPost]] = []
        for record, post in result.scored:
            try:
                value = post.model_dump_json().encode()
            except ValueError as exc:  # e.g. text that cannot be encoded: a dead letter
                detail = f"the scored record cannot be written as JSON: {exc!r}"
                letter = dead_letter(record, "unserializable", detail, datetime.now(UTC))
                result.dead.append((record, letter))
                continue
            written.append((record, post))
            key = post.brand.encode()
            outputs.append(self._output(self.scored_topic, key, value, record))
        # a dead-lettered post is no longer a scored one (metrics count each record once)
        result.scored[:] = written
        if result.shadow:
            outputs.extend(self._shadow(result, written))
        for record, letter in result.dead:
            value = letter.model_dump_json().encode()
            outputs.append(self._output(self.dlq_topic, _dlq_key(record), value, record))
        return outputs

    def settle(self, result: BatchResult, delivered: Sequence[Output]) -> None:
        """Make `result` say what `delivered` holds (its outputs as acknowledged), so each
        record is counted as what reached the topics: a scored or shadow record the broker
        refused as too large, and whose `too_large` dead letter was sent instead (`shrink`),
        leaves `result.scored` (or `result.shadow`), and its dead letter joins `result.dead`.
        """
        sent = {(out.topic, out.source) for out in delivered}
        lettered = {record.source for record, _ in result.dead}
        result.scored[:] = [
            (record, post)
            for record, post in result.scored
            if (self.scored_topic, record.source) in sent
        ]
        result.shadow[:] = [
            (record, pair)
            for record, pair in result.shadow
            if (self.shadow_topic, record.source) in sent
        ]
        result.dead.extend(
            (out.origin, DeadLetter.model_validate_json(out.value))
            for out in delivered
            if out.topic == self.dlq_topic and out.source not in lettered
        )

    def _shadow(
        self, result: BatchResult, written: list[tuple[RawRecord, ScoredPost]]
    ) -> list[Output]:
        """The challenger's records of the posts whose champion record is written."""
        on_scored = {id(record) for record, _ in written}
        kept = []
        outputs = []
        for record, pair in result.shadow:
            if id(record) not in on_scored:
                continue  # dead-lettered above: the shadow topic follows the scored one
            try:
                value = pair.shadow.model_dump_json().encode()
            except ValueError as exc:  # the champion's record was written: only the shadow lacks
                log.warning("shadow record of %s not written: %r", record.source, exc)
                continue
            kept.append((record, pair))
            outputs.append(
                self._output(self.shadow_topic, pair.shadow.brand.encode(), value, record)
            )
        result.shadow[:] = kept
        return outputs

    @staticmethod
    def _output(topic: str, key: bytes | None, value: bytes, record: RawRecord) -> Output:
        return Output(topic, key, value, _headers(record), source=record.source, origin=record)

    def shrink(self, out: Output) -> Output | None:
        """A bounded `too_large` dead letter for a record the broker refused as too large."""
        record = out.origin
        if not isinstance(record, RawRecord):
            return None
        reason, detail = "too_large", f"the scored record of {len(out.value)} bytes"
        if out.topic == self.dlq_topic:  # our own dead letter: keep why the record failed
            first = json.loads(out.value)
            reason, detail = first["reason"], f"{first['detail']}; its dead letter"
        detail += f" is larger than topic {out.topic!r} accepts: cut to a prefix"
        letter = bounded_dead_letter(record, reason, detail, CUT_PREFIX_BYTES)
        value = letter.model_dump_json().encode()
        return Output(self.dlq_topic, _dlq_key(record), value, out.headers, out.source, record)


class ScoreAgent:
    """Consumes `posts`, scores batches off the event loop, delivers and only then acks."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        metrics: Metrics,
        classifier: Classifier,
        deliverer: Deliverer | None = None,
        router: LanguageRouter | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.scorer = BatchScorer(classifier, metrics, router=router)
        self.outputs = ScoreOutputs(settings)
        self.posts = app.topic(settings.topic_posts, partitions=settings.topic_partitions)
        topics = {
            settings.topic_scored: app.topic(settings.topic_scored),
            settings.topic_dlq: app.topic(settings.topic_dlq),
            settings.topic_scored_shadow: app.topic(settings.topic_scored_shadow),
        }
        self.deliverer = deliverer or Deliverer(
            faust_send(topics),
            metrics,
            shrink=self.outputs.shrink,
            topic_settings={
                settings.topic_scored: "BRANDMON_TOPIC_SCORED",
                settings.topic_dlq: "BRANDMON_TOPIC_DLQ",
                settings.topic_scored_shadow: "BRANDMON_TOPIC_SCORED_SHADOW",
            },
            exists=topic_exists(settings),
        )
        self.progress = Progress("score")
        self.loop = BatchLoop(
            max_batch=settings.max_batch,
            max_wait=settings.max_wait,
            deliverer=self.deliverer,
            progress=self.progress,
            stop_grace=settings.stop_grace_seconds,
            pipelined=True,
            sizer=BatchSizer(settings.max_batch, settings.max_batch_seconds or None),
            timer=self._time,
        )
        # one thread: the model already uses every core, and batches must stay in order
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="brandmon-infer")
        app.agent(self.posts, name="brandmon.score", concurrency=1)(self.run)

    async def run(self, stream: faust.StreamT[Any]) -> None:
        await self.loop.run(stream, self.prepare)

    async def prepare(self, events: Sequence[EventT[Any]]) -> Prepared:
        records = [to_raw(event) for event in events]
        loop = asyncio.get_running_loop()
        result, outputs = await loop.run_in_executor(self._executor, self._score, records)
        return Prepared(outputs, after_ack=lambda delivered: self._account(result, delivered))

    def _score(self, records: list[RawRecord]) -> tuple[BatchResult, list[Output]]:
        result = self.scorer.score(records)
        started = time.perf_counter()
        outputs = self.outputs(result)
        self._time("serialize", time.perf_counter() - started)
        return result, outputs

    def _time(self, stage: str, seconds: float) -> None:
        self.metrics.batch_stage_seconds.labels(stage=stage).observe(seconds)

    def _account(self, result: BatchResult, delivered: Sequence[Output]) -> None:
        """Counters for a delivered batch (after its records are acknowledged): each record
        once, as what it was delivered as."""
        self.outputs.settle(result, delivered)
        now = time.time()
        for record, post in result.scored:
            self.metrics.posts_scored.labels(label=post.label or "unscored").inc()
            if record.timestamp:
                self.metrics.latency_seconds.observe(max(0.0, now - record.timestamp))
        for _, letter in result.dead:
            self.metrics.posts_dlq.labels(reason=letter.reason).inc()
        self.metrics.observe_predictions(post for _, post in result.scored)
        if result.challenger_model is not None:
            self._account_roles(result, result.challenger_model)

    def _account_roles(self, result: BatchResult, challenger: tuple[str, str]) -> None:
        """Predictions by role, and shadow mode's comparisons (a batch with a challenger)."""
        for _, post in result.scored:
            role = role_of(post, challenger)
            self.metrics.role_predictions.labels(role=role, label=post.label).inc()
        for _, pair in result.shadow:
            self.metrics.role_predictions.labels(role=CHALLENGER, label=pair.shadow.label).inc()
        count_comparisons(self.metrics, (pair for _, pair in result.shadow))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
