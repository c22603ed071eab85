"""Faults lose nothing and stall nothing (issue 8, item 10), on a real broker of the test's
own, so it can be restarted: a broker restart while posts are in flight, two score workers
with one SIGKILLed mid-stream (a rebalance), and both together.

Each test asserts what an analyst and an operator would notice: every post the broker
acknowledged comes out on posts.scored while the surviving worker keeps running (no restart
needed to unstick a partition), and the group's committed offsets reach the end of posts.

Holding on a slow machine (issue 17): the test's own producer counts as sent only what the
broker acknowledged, and produces again what it could not deliver across the restart
(tests.helpers.AckedPosts), so a producer that gave up is never read as posts the worker lost;
every wait goes on while its count grows and gives up only after a stretch with no progress
(or a hard cap within the test's time limit), and says what it waited for and what was
missing (ids, their partitions, the group's lag).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from brandmon.broker import LocalBroker, free_port
from brandmon.kafka_io import ensure_topics
from brandmon.settings import Settings
from brandmon.web import measure_lag
from tests.helpers import AckedPosts, TopicIds, WorkerProcess, post, wait_for_progress

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

POSTS = 6000
RATE = 600.0
#: The fault strikes once this many posts are acknowledged: mid-stream, however slow the
#: machine (about 2.5 s into the 10 s of posts).
FAULT_AFTER = POSTS // 4
#: A wait gives up after this long without progress: longer than the session timeout (15 s)
#: and a rebalance, and a restarted broker's and client's reconnection backoff on 2 busy cores.
STALL = 120.0
#: Everything in a test body: within pytest's 600 s limit, leaving room for the fixtures (a
#: broker of its own, two workers) and the teardown.
BUDGET = 460.0


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


class Deadline:
    """The test body's time budget: each wait's cap is what is left of it."""

    def __init__(self, seconds: float = BUDGET) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(1.0, self.end - time.monotonic())


@pytest.fixture
def deadline() -> Deadline:
    return Deadline()


@pytest.fixture
def posts(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[AckedPosts]:
    """POSTS posts over three brands at RATE per second, from a thread (not started yet)."""
    settings = _settings(env, monkeypatch)
    ensure_topics(settings, [settings.topic_posts])
    items = [post(i, brand=("acme", "globex", "initech")[i % 3]) for i in range(POSTS)]
    producer = AckedPosts(
        settings, settings.topic_posts, items, key=lambda item: item["brand"], rate=RATE
    )
    yield producer
    producer.stop()


def _settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


def _start(workers: list[WorkerProcess]) -> None:
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.wait_ready()


def _restart(broker: LocalBroker, down: float = 3.0) -> None:
    broker.stop()
    time.sleep(down)  # the fault itself: the broker stays down this long
    broker.start()


def _lag(settings: Settings) -> dict[int, int] | str:
    try:
        return measure_lag(settings, settings.app_id, settings.topic_posts)
    except Exception as exc:  # the broker did not answer this time: no progress
        return f"lag not measured: {exc!r}"


def _assert_all_scored_and_committed(
    settings: Settings, posts: AckedPosts, survivor: WorkerProcess, deadline: Deadline
) -> None:
    # every post must be acknowledged first: one the broker never took is no post lost
    posts.wait_acked(stall=STALL, cap=deadline.left())
    sent = posts.acked

    def survivor_log() -> str:
        code = survivor.proc.poll() if survivor.proc is not None else None
        state = "running" if survivor.alive() else f"exited with {code}"
        return f"surviving worker {state}; its log ends:\n{survivor.log()[-3000:]}"

    scored = TopicIds(settings, settings.topic_scored)
    try:

        def arrived() -> float:
            # a worker that died (a segfault in native code once did, silently) says so first
            assert survivor.alive(), survivor_log()
            scored.poll(0.5)
            return len(scored.ids & sent.keys())

        def what_is_missing() -> str:
            missing = sorted(sent.keys() - scored.ids, key=lambda i: int(i[1:]))
            by_partition = Counter(sent[i][0] for i in missing)
            offsets = {
                p: (min(sent[i][1] for i in missing if sent[i][0] == p), n)
                for p, n in sorted(by_partition.items())
            }
            return (
                f"expected {len(sent)} post ids on {settings.topic_scored}, "
                f"{len(scored.ids & sent.keys())} arrived ({scored.records} records, by "
                f"partition of posts.scored {dict(scored.partitions)}); "
                f"{len(missing)} missing, first {missing[:20]}; missing by partition of "
                f"{settings.topic_posts} (first offset, count): {offsets}; group lag by "
                f"partition: {_lag(settings)}\n{posts.summary()}\n{survivor_log()}"
            )

        wait_for_progress(
            f"all {len(sent)} acknowledged posts on {settings.topic_scored}",
            arrived,
            lambda n: n >= len(sent),
            stall=STALL,
            cap=deadline.left(),
            report=what_is_missing,
            poll=0,
        )
    finally:
        scored.close()
    last: dict[str, dict[int, int] | str] = {}

    def committed() -> float:
        last["lag"] = lag = _lag(settings)
        return -sum(lag.values()) if isinstance(lag, dict) else float("-inf")

    wait_for_progress(
        f"the group's committed offsets to reach the end of {settings.topic_posts}",
        committed,
        lambda behind: behind == 0,
        stall=60.0,
        cap=min(120.0, deadline.left()),
        report=lambda: f"lag by partition: {last.get('lag')}\n{survivor_log()}",
        poll=1.0,
    )
    assert survivor.alive(), survivor_log()
    survivor.wait_ready(timeout=30)
    print(posts.summary())  # -rP shows how often the producer had to produce again


def test_broker_restart_while_posts_are_in_flight(env, broker, workers, posts, deadline):
    worker = workers[0]
    _start([worker])
    posts.start().wait_acked(FAULT_AFTER, stall=STALL, cap=deadline.left())
    _restart(broker)
    _assert_all_scored_and_committed(posts.settings, posts, worker, deadline)


def test_a_worker_sigkilled_mid_stream_loses_nothing(env, workers, posts, deadline):
    _start(workers)
    posts.start().wait_acked(FAULT_AFTER, stall=STALL, cap=deadline.left())
    workers[1].kill()  # SIGKILL: its partitions move to the survivor after the session timeout
    _assert_all_scored_and_committed(posts.settings, posts, workers[0], deadline)


def test_sigkill_and_broker_restart_together_lose_nothing(env, broker, workers, posts, deadline):
    _start(workers)
    posts.start().wait_acked(FAULT_AFTER, stall=STALL, cap=deadline.left())
    workers[1].kill()
    # the broker goes down while the group still waits for the killed member's session
    # timeout: a few hundred posts later (about 1 s at RATE)
    posts.wait_acked(FAULT_AFTER + int(RATE), stall=STALL, cap=deadline.left())
    _restart(broker)
    _assert_all_scored_and_committed(posts.settings, posts, workers[0], deadline)
