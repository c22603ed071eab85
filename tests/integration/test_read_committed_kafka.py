"""Every consumer of brandmon's topics reads committed records only (issue 19), on the real
broker: a transactional producer writes records in a transaction it aborts, then others in one
it commits, and each consumer acts on the committed ones alone.

    score worker         posts          -> posts.scored
    alert worker         posts.scored   -> brand.sentiment counts
    notifier dispatcher  alerts         -> the log channel
    control follower     brandmon.control -> the model it promotes
    `brandmon consume`, `label export --from-topic`, `brandmon top`: what they read

Where the aborted records come first on their partition, a consumer that read them would meet
them before the committed ones, so reading until the committed records are in is enough to
see whether one slipped through. The control follower applies the latest request, so there
the aborted request comes last.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry
from pydantic import BaseModel
from typer.testing import CliRunner

from brandmon.alerts.dispatch import NotifierDispatcher
from brandmon.cli import app as brandmon_app
from brandmon.contracts.posts import ScoredPost
from brandmon.kafka_io import consume, ensure_topics
from brandmon.metrics import Metrics
from brandmon.model_export.labeling.sources import Rejections, from_topic
from brandmon.settings import Settings
from brandmon.stream.control import (
    CONTROL_PARTITION,
    ControlFollower,
    ControlMessage,
    ensure_control_topic,
)
from tests.alerts.harness import alerts_app
from tests.alerts.streams import traffic
from tests.alerts.top_records import alert, bucket
from tests.helpers import WorkerProcess, post, read_topic, values

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

#: (key, value) of one record.
Keyed = tuple[bytes | None, bytes]

BRANDS = ("acme", "globex", "initech")


def write_transactions(
    settings: Settings,
    topic: str,
    *,
    aborted: Sequence[Keyed],
    committed: Sequence[Keyed],
    aborted_first: bool = True,
    partition: int = -1,
) -> None:
    """Write `aborted` in a transaction that is aborted once the broker holds its records, and
    `committed` in one that is committed; in that order unless `aborted_first` is False."""
    producer = Producer(
        {
            **settings.confluent_config(),
            "transactional.id": f"brandmon-test-{uuid.uuid4().hex}",
            "log_level": 2,
        }
    )
    producer.init_transactions(30)
    batches = [(aborted, producer.abort_transaction), (committed, producer.commit_transaction)]
    for records, finish in batches if aborted_first else batches[::-1]:
        producer.begin_transaction()
        for key, value in records:
            producer.produce(topic, value, key=key, partition=partition)
        assert producer.flush(30) == 0  # on the broker before the transaction ends
        finish(30)


def keyed_posts(items: Sequence[dict[str, Any]]) -> list[Keyed]:
    return [(item["brand"].encode(), json.dumps(item).encode()) for item in items]


def keyed_models(items: Sequence[BaseModel], brand: Callable[[Any], str]) -> list[Keyed]:
    return [(brand(item).encode(), item.model_dump_json().encode()) for item in items]


def scored_posts(prefix: str, count: int) -> list[ScoredPost]:
    """`count` scored posts with ids `<prefix>-<n>`, one minute of one brand."""
    return [
        p.model_copy(update={"id": f"{prefix}-{i}"}) for i, p in enumerate(traffic([0], count, 0.2))
    ]


def test_score_worker_scores_committed_posts_only(
    test_settings: Settings, worker_factory: Callable[..., WorkerProcess]
) -> None:
    worker = worker_factory()
    worker.wait_ready()
    aborted = [post(i, brand=BRANDS[i % 3]) for i in range(30)]
    committed = [post(i, brand=BRANDS[i % 3]) for i in range(100, 130)]
    write_transactions(
        test_settings,
        test_settings.topic_posts,
        aborted=keyed_posts(aborted),
        committed=keyed_posts(committed),
    )

    wanted = {p["id"] for p in committed}
    records = read_topic(
        test_settings,
        test_settings.topic_scored,
        until=lambda got: wanted <= {p["id"] for p in values(got)},
    )
    assert sorted(p["id"] for p in values(records)) == sorted(wanted), worker.log()[-3000:]
    assert worker.metric("brandmon_posts_consumed_total") == len(committed)


def test_alert_worker_counts_committed_posts_only(
    test_settings: Settings, alert_worker_factory: Callable[..., WorkerProcess]
) -> None:
    worker = alert_worker_factory()
    worker.wait_ready()
    # a negative flood in minutes 0-4 that its producer took back, then ten calm minutes
    aborted = traffic(range(5), 30, 0.9, tag="-aborted")
    committed = traffic(range(10), 10, 0.1)
    write_transactions(
        test_settings,
        test_settings.topic_scored,
        aborted=keyed_models(aborted, lambda p: p.brand),
        committed=keyed_models(committed, lambda p: p.brand),
    )

    def first_five_closed(got: list[Any]) -> bool:
        assert worker.alive(), worker.log()[-3000:]
        return len({b["bucket_start"] for b in values(got)}) >= 5

    records = read_topic(
        test_settings, test_settings.topic_brand_sentiment, timeout=180, until=first_five_closed
    )
    by_start = {b["bucket_start"]: b for b in values(records)}
    first_five = [by_start[start] for start in sorted(by_start)[:5]]
    assert [(b["posts"], b["negatives"]) for b in first_five] == [(10, 1)] * 5


def test_notifier_dispatcher_sends_committed_alerts_only(
    test_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    ensure_topics(test_settings, [test_settings.topic_alerts])
    aborted = [alert("acme", 3).model_copy(update={"alert_id": "aborted-1"})]
    committed = [alert("acme", 3).model_copy(update={"alert_id": "committed-1"})]
    write_transactions(
        test_settings,
        test_settings.topic_alerts,
        aborted=keyed_models(aborted, lambda a: a.brand),
        committed=keyed_models(committed, lambda a: a.brand),
    )
    dispatcher = NotifierDispatcher(test_settings, Metrics(CollectorRegistry()))

    def sent() -> list[str]:  # the log channel's lines, as "... alert_id=<id>]"
        return [
            r.getMessage().rsplit("alert_id=", 1)[1].rstrip("]")
            for r in caplog.records
            if r.name == "brandmon.alerts.events"
        ]

    async def until_committed_sent() -> None:
        task = asyncio.create_task(dispatcher.run())
        deadline = time.monotonic() + 60
        while "committed-1" not in sent() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.INFO, logger="brandmon.alerts.events"):
        asyncio.run(until_committed_sent())
    assert sent() == ["committed-1"]


async def until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


class RecordingRollout:
    """What ControlFollower asks of a ModelRollout, recording the folders it is told to run."""

    active_path = Path("/models/running")

    def __init__(self) -> None:
        self.promoted: list[Path] = []

    async def promote(self, folder: Path, requested_by: str, trigger: str) -> None:
        self.promoted.append(folder)

    def refuse(self, detail: str, requested_by: str, trigger: str) -> None:
        raise AssertionError(f"a request was refused: {detail}")


def test_control_follower_applies_committed_requests_only(test_settings: Settings) -> None:
    ensure_control_topic(test_settings)
    rollout = RecordingRollout()
    follower = ControlFollower(test_settings, rollout)  # type: ignore[arg-type]

    def requests(*folders: str) -> list[Keyed]:
        group = test_settings.app_id.encode()
        return [
            (group, ControlMessage(action="promote", model_path=f).model_dump_json().encode())
            for f in folders
        ]

    def write(committed: str, aborted: str) -> None:
        write_transactions(
            test_settings,
            test_settings.topic_control,
            aborted=requests(aborted),
            committed=requests(committed),
            aborted_first=False,  # the follower applies the latest request
            partition=CONTROL_PARTITION,
        )

    async def follow() -> None:
        task = asyncio.create_task(follower.run())
        await until(lambda: len(rollout.promoted) >= 1)  # the group's latest at start
        await asyncio.to_thread(write, "/models/committed-later", "/models/aborted-later")
        await until(lambda: len(rollout.promoted) >= 2)  # a request while it follows
        await asyncio.sleep(1)  # anything else would be handled by now
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    write("/models/committed", "/models/aborted")
    asyncio.run(follow())
    assert rollout.promoted == [Path("/models/committed"), Path("/models/committed-later")]


def test_analyst_readers_read_committed_posts_only(test_settings: Settings) -> None:
    """`brandmon consume`, `label export --from-topic` and the library's `consume`."""
    topic = test_settings.topic_scored
    ensure_topics(test_settings, [topic])
    aborted, committed = scored_posts("aborted", 20), scored_posts("committed", 20)
    write_transactions(
        test_settings,
        topic,
        aborted=keyed_models(aborted, lambda p: p.brand),
        committed=keyed_models(committed, lambda p: p.brand),
    )
    wanted = [p.id for p in committed]

    read = consume(test_settings, [topic], idle_timeout=3.0, timeout=60)
    assert [r.json()["id"] for r in read] == wanted

    printed = CliRunner().invoke(brandmon_app, ["consume", topic, "--idle-timeout", "3"])
    assert printed.exit_code == 0, printed.output
    assert [json.loads(line)["id"] for line in printed.output.splitlines()] == wanted

    rejected = Rejections()
    exported = from_topic(test_settings, limit=100, timeout=60, rejected=rejected)
    assert [p.id for p in exported] == wanted
    assert rejected.count == 0, rejected.first


def test_top_shows_committed_buckets_only(test_settings: Settings) -> None:
    ensure_topics(test_settings, [test_settings.topic_alerts, test_settings.topic_brand_sentiment])
    write_transactions(
        test_settings,
        test_settings.topic_brand_sentiment,
        aborted=keyed_models([bucket("aborted", 0)], lambda b: b.brand),
        committed=keyed_models([bucket("committed", 0)], lambda b: b.brand),
    )
    result = CliRunner().invoke(alerts_app(), ["top", "--once"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert " committed " in result.output and " aborted " not in result.output
