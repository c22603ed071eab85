"""Faults lose nothing and stall nothing (issue 8, item 10), on a real broker of the test's
own, so it can be restarted: a broker restart while posts are in flight, two score workers
with one SIGKILLed mid-stream (a rebalance), and both together.

Each test asserts what an analyst and an operator would notice: every post id comes out on
posts.scored within a bounded time while the surviving worker keeps running (no restart
needed to unstick a partition), and the group's committed offsets reach the end of posts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from brandmon.broker import LocalBroker, free_port
from brandmon.kafka_io import JsonProducer, Record, ensure_topics
from brandmon.settings import Settings
from brandmon.web import measure_lag
from tests.helpers import WorkerProcess, post, read_topic, values

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

POSTS = 6000
#: After the fault: the session timeout (15 s) and a rebalance, then the backlog itself.
SETTLE_TIMEOUT = 180.0


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory, kafka_version: str) -> Iterator[LocalBroker]:
    """A broker for this test alone (the session broker must not be restarted under others)."""
    own = LocalBroker(
        home=tmp_path_factory.mktemp("fault-kafka"), port=free_port(), version=kafka_version
    )
    own.start()
    try:
        yield own
    finally:
        own.stop()


@pytest.fixture
def env(topic_env: dict[str, str], broker: LocalBroker, tiny_model_dir: Path) -> dict[str, str]:
    return {
        **topic_env,
        "BRANDMON_BOOTSTRAP_SERVERS": broker.bootstrap,
        "BRANDMON_MODEL_PATH": str(tiny_model_dir),
    }


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    for i in range(2):
        started.append(
            WorkerProcess(
                {**env, "BRANDMON_WEB_PORT": str(free_port())}, tmp_path / f"worker-{i}.log"
            )
        )
    yield started
    for worker in started:
        worker.kill()


def _settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


def _produce_in_background(settings: Settings, rate: float) -> threading.Thread:
    """POSTS posts at `rate` per second over three brands, from a thread; survives a broker
    restart (the client buffers and retries)."""

    def run() -> None:
        producer = JsonProducer(settings, **{"message.timeout.ms": 120_000})
        started = time.monotonic()
        for i in range(POSTS):
            item = post(i, brand=("acme", "globex", "initech")[i % 3])
            producer.send(settings.topic_posts, item, key=item["brand"])
            ahead = i / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        producer.flush(timeout=150)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _two_workers_then_posts(workers: list[WorkerProcess], settings: Settings) -> threading.Thread:
    """Both workers ready and sharing the partitions, then posts flowing for 4 s."""
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.wait_ready()
    producing = _produce_in_background(settings, rate=600)
    time.sleep(4)
    return producing


def _restart(broker: LocalBroker, down: float = 3.0) -> None:
    broker.stop()
    time.sleep(down)
    broker.start()


def _assert_all_scored_and_committed(settings: Settings, survivor: WorkerProcess) -> None:
    ids: set[str] = set()

    def all_seen(got: list[Record]) -> bool:
        ids.update(v["id"] for v in values(got[-1:]))
        return len(ids) >= POSTS

    read_topic(settings, settings.topic_scored, timeout=SETTLE_TIMEOUT, until=all_seen)
    missing = {f"p{i}" for i in range(POSTS)} - ids
    # a worker that died (a segfault in native code once did, silently) says so first
    assert survivor.alive(), (
        f"the worker exited with status {survivor.proc.poll() if survivor.proc else None}",
        survivor.log()[-3000:],
    )
    assert not missing, (len(missing), sorted(missing)[:10], survivor.log()[-3000:])
    deadline = time.monotonic() + 60
    lag: dict[int, int] = {}
    while time.monotonic() < deadline:
        lag = measure_lag(settings, settings.app_id, settings.topic_posts)
        if sum(lag.values()) == 0:
            break
        time.sleep(1)
    assert sum(lag.values()) == 0, f"committed offsets stuck behind the end: lag {lag}"
    assert survivor.alive(), survivor.log()[-3000:]
    survivor.wait_ready(timeout=30)


def test_broker_restart_while_posts_are_in_flight(env, broker, workers, monkeypatch):
    settings = _settings(env, monkeypatch)
    ensure_topics(settings, [settings.topic_posts])
    worker = workers[0]
    worker.start()
    worker.wait_ready()
    producing = _produce_in_background(settings, rate=600)
    time.sleep(3)
    _restart(broker)
    producing.join(200)
    _assert_all_scored_and_committed(settings, worker)


def test_a_worker_sigkilled_mid_stream_loses_nothing(env, workers, monkeypatch):
    settings = _settings(env, monkeypatch)
    ensure_topics(settings, [settings.topic_posts])
    producing = _two_workers_then_posts(workers, settings)
    workers[1].kill()  # SIGKILL: its partitions move to the survivor after the session timeout
    producing.join(200)
    _assert_all_scored_and_committed(settings, workers[0])


def test_sigkill_and_broker_restart_together_lose_nothing(env, broker, workers, monkeypatch):
    settings = _settings(env, monkeypatch)
    ensure_topics(settings, [settings.topic_posts])
    producing = _two_workers_then_posts(workers, settings)
    workers[1].kill()
    time.sleep(2)
    _restart(broker)
    producing.join(200)
    _assert_all_scored_and_committed(settings, workers[0])
