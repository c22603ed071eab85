"""What triggers a model promotion in a running score worker: the control topic and SIGHUP.

The control topic (BRANDMON_TOPIC_CONTROL, default `brandmon.control`) is compacted, one
partition, and keyed by the score workers' group (BRANDMON_APP_ID), so it keeps the latest
request of each group. Every worker of the group follows it with its own consumer without a
group (aiokafka on the worker's event loop; never librdkafka inside a worker, see
brandmon/broker_probe.py):

- at start it reads the partition up to its end and applies the group's latest request if
  that names another folder than the one it runs, so a restarted or added worker joins the
  group's current model;
- then every new request for its group is validated and applied (stream/rollout.py).

`brandmon model promote FOLDER` writes a request; `brandmon model rollback` writes one for the
folder a worker reports as its previous model. `brandmon model challenger FOLDER --mode ...`
(or `--clear`) writes a challenger request under its own key, `<app_id>/challenger`, so that
compaction keeps the group's latest promotion and its latest challenger request side by side;
at start a worker applies both, the promotion first. SIGHUP re-reads BRANDMON_MODEL_PATH (a
symlink or an active-model pointer file) and promotes what it names now.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import signal
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from brandmon.broker_probe import aiokafka_config
from brandmon.contracts.manifest import ManifestError, resolve_model_folder
from brandmon.kafka_io import READ_COMMITTED, JsonProducer, ensure_topics
from brandmon.settings import ChallengerMode, Settings
from brandmon.stream.rollout import ModelRollout

log = logging.getLogger(__name__)

#: The one partition requests are written to and read from.
CONTROL_PARTITION = 0
#: Seconds before a control consumer that failed (broker gone) starts again.
RETRY_SECONDS = 5.0
#: Compaction keeps the latest request per group; deletion of tombstones after a day.
CONTROL_TOPIC_CONFIG = {"cleanup.policy": "compact", "delete.retention.ms": "86400000"}


class ControlMessage(BaseModel):
    """One request on the control topic, keyed by the workers' group."""

    model_config = ConfigDict(extra="ignore", frozen=True, protected_namespaces=())

    action: Literal["promote"]
    #: The model folder as the workers see it (an absolute path on their machines).
    model_path: str = Field(min_length=1)
    requested_by: str = "unknown"
    requested_at: datetime | None = None
    request_id: str = ""


class ChallengerMessage(BaseModel):
    """One challenger request on the control topic, keyed by `challenger_key`."""

    model_config = ConfigDict(extra="ignore", frozen=True, protected_namespaces=())

    action: Literal["challenger"]
    #: The challenger's folder as the workers see it; None clears the challenger.
    model_path: str | None = Field(None, min_length=1)
    mode: ChallengerMode = "shadow"
    share: float = Field(0.1, ge=0, le=1)
    requested_by: str = "unknown"
    requested_at: datetime | None = None
    request_id: str = ""


def challenger_key(settings: Settings) -> bytes:
    """The control topic key of the group's challenger requests."""
    return f"{settings.app_id}/challenger".encode()


def ensure_control_topic(settings: Settings) -> None:
    """Create the compacted one-partition control topic if it does not exist yet."""
    ensure_topics(settings, [settings.topic_control], partitions=1, config=CONTROL_TOPIC_CONFIG)


def default_requester() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def send_promotion(settings: Settings, folder: Path, requested_by: str) -> ControlMessage:
    """Write a promote request for `folder` for the group BRANDMON_APP_ID; returns it."""
    message = ControlMessage(
        action="promote",
        model_path=str(folder),
        requested_by=requested_by,
        requested_at=datetime.now(UTC),
        request_id=uuid.uuid4().hex,
    )
    _write_request(settings, message, settings.app_id.encode())
    return message


def send_challenger(
    settings: Settings,
    folder: Path | None,
    mode: ChallengerMode,
    share: float,
    requested_by: str,
) -> ChallengerMessage:
    """Write a challenger request (None: clear it) for the group BRANDMON_APP_ID."""
    message = ChallengerMessage(
        action="challenger",
        model_path=str(folder) if folder is not None else None,
        mode=mode,
        share=share,
        requested_by=requested_by,
        requested_at=datetime.now(UTC),
        request_id=uuid.uuid4().hex,
    )
    _write_request(settings, message, challenger_key(settings))
    return message


def _write_request(settings: Settings, message: BaseModel, key: bytes) -> None:
    """Write one request to the control topic's single partition and wait for the broker."""
    ensure_control_topic(settings)
    producer = JsonProducer(settings)
    producer.send(
        settings.topic_control,
        message.model_dump_json().encode(),
        key=key,
        partition=CONTROL_PARTITION,
    )
    producer.flush(30)


Promote = Callable[[Path, str, str], Awaitable[object]]


class ControlFollower:
    """Follows the control topic for one group and hands each request to the rollout."""

    def __init__(self, settings: Settings, rollout: ModelRollout) -> None:
        self.settings = settings
        self.rollout = rollout
        self.group = settings.app_id.encode()
        self.challenger_key = challenger_key(settings)
        self.tp = TopicPartition(settings.topic_control, CONTROL_PARTITION)
        #: Offset of the last request handled: a restarted consumer never repeats one.
        self.handled = -1

    async def run(self) -> None:
        """Follow until cancelled; a failed consumer (broker gone) is started again."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never stop the worker: log, wait, start afresh
                log.warning(
                    "following the control topic %s failed: %r; retrying in %.0f s",
                    self.settings.topic_control,
                    exc,
                    RETRY_SECONDS,
                )
                await asyncio.sleep(RETRY_SECONDS)

    async def _follow(self) -> None:
        # earliest: without it, the consumer's own reset to the latest offset (no group, no
        # committed offset) can land after seek_to_beginning and skip the requests before
        # the end, so a starting worker would miss the group's latest request
        consumer = AIOKafkaConsumer(
            **aiokafka_config(self.settings),
            enable_auto_commit=False,
            group_id=None,
            auto_offset_reset="earliest",
            isolation_level=READ_COMMITTED,
        )
        await consumer.start()
        try:
            consumer.assign([self.tp])
            end = (await consumer.end_offsets([self.tp]))[self.tp]
            await consumer.seek_to_beginning(self.tp)
            latest = await self._latest_before(consumer, end)
            for key in (self.group, self.challenger_key):  # the promotion first
                if key in latest:
                    await self._handle(latest[key], at_start=True)
            async for record in consumer:
                if record.key in (self.group, self.challenger_key):
                    await self._handle(record, at_start=False)
        finally:
            await consumer.stop()

    async def _latest_before(
        self, consumer: AIOKafkaConsumer, end: int
    ) -> dict[bytes, ConsumerRecord[bytes, bytes]]:
        """The group's last promotion and challenger request before offset `end` (what
        compaction keeps), by key."""
        latest: dict[bytes, ConsumerRecord[bytes, bytes]] = {}
        while await consumer.position(self.tp) < end:
            batches = await consumer.getmany(self.tp, timeout_ms=1000)
            for record in batches.get(self.tp, []):
                if record.key in (self.group, self.challenger_key) and record.offset < end:
                    latest[record.key] = record
        return latest

    async def _handle(self, record: ConsumerRecord[bytes, bytes], *, at_start: bool) -> None:
        if record.offset <= self.handled:
            return
        self.handled = record.offset
        if record.value is None:  # a tombstone: the group's requests were deleted
            return
        trigger = "control topic (latest at start)" if at_start else "control topic"
        if record.key == self.challenger_key:
            await self._handle_challenger(record, record.value, trigger, at_start=at_start)
            return
        try:
            message = ControlMessage.model_validate_json(record.value)
        except ValidationError as exc:
            detail = (
                f"{self.tp.topic} offset {record.offset} is not a promote request: "
                f"{exc.errors(include_url=False, include_input=False)}"
            )
            self.rollout.refuse(detail, "unknown", trigger)
            return
        folder = Path(message.model_path)
        if at_start and folder == self.rollout.active_path:
            return  # already running the group's latest model
        await self.rollout.promote(folder, message.requested_by, trigger)

    async def _handle_challenger(
        self, record: ConsumerRecord[bytes, bytes], value: bytes, trigger: str, *, at_start: bool
    ) -> None:
        try:
            message = ChallengerMessage.model_validate_json(value)
        except ValidationError as exc:
            detail = (
                f"{self.tp.topic} offset {record.offset} is not a challenger request: "
                f"{exc.errors(include_url=False, include_input=False)}"
            )
            log.warning("challenger request refused (via %s): %s", trigger, detail)
            return
        folder = Path(message.model_path) if message.model_path is not None else None
        if at_start and self._already(folder, message):
            return  # already running the group's latest challenger (or none)
        await self.rollout.change_challenger(
            folder, message.mode, message.share, message.requested_by, trigger
        )

    def _already(self, folder: Path | None, message: ChallengerMessage) -> bool:
        current = self.rollout.scorer.challenger
        if folder is None or current is None:
            return folder is None and current is None
        same_share = message.mode == "shadow" or message.share == current.share
        return folder == current.path and message.mode == current.mode and same_share


def install_sighup(settings: Settings, rollout: ModelRollout) -> None:
    """SIGHUP: promote the folder BRANDMON_MODEL_PATH names now (symlink or pointer file)."""
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()

    async def reload() -> None:
        path = settings.resolved_model_path
        try:
            folder = resolve_model_folder(path)
        except ManifestError as exc:
            rollout.refuse(str(exc), "SIGHUP", "SIGHUP")
            return
        await rollout.promote(folder, "SIGHUP", "SIGHUP")

    def on_sighup() -> None:
        log.info("SIGHUP: re-reading the model path %s", settings.resolved_model_path)
        future = asyncio.create_task(reload())
        pending.add(future)
        future.add_done_callback(pending.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
