"""Helpers for integration tests: a worker subprocess and topic readers."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from brandmon.kafka_io import Record, consume, consumer_config
from brandmon.settings import Settings

#: A worker on 2 busy cores takes 5-20 s to load the model, join the group and get partitions.
READY_TIMEOUT = 90.0
#: `brandmon alerts worker`: the alert aggregator, serving on BRANDMON_ALERTS_WEB_PORT.
ALERT_WORKER = ("alerts", "worker")


#: The test pytest is running now (tests/conftest.py sets it around each test), for require_mark.
_running: list[pytest.Item] = []


def require_mark(what: str, *marks: str) -> None:
    """Fail the running test unless it carries one of `marks`: it is about to start `what` (a
    broker, a server, a worker), which `pytest -m "not kafka and not server"` must never do.

    Outside a test (no test running, e.g. a script importing these helpers) it does nothing.
    """
    if not _running:
        return
    item = _running[-1]
    if not any(item.get_closest_marker(mark) for mark in marks):
        wanted = " or ".join(f"@pytest.mark.{mark}" for mark in marks)
        pytest.fail(
            f"{item.nodeid} starts {what} but is not marked {wanted}; mark it so that "
            '`pytest -m "not kafka and not server"` leaves it out',
            pytrace=False,
        )


class WorkerProcess:
    """`brandmon worker` in a child process with its own environment and log file.

    `command` and `port_var` run another brandmon worker command, e.g. the alert worker:
    `WorkerProcess(env, log, command=ALERT_WORKER, port_var="BRANDMON_ALERTS_WEB_PORT")`;
    `module` runs another entry point than brandmon's CLI (`python -m module *command`).
    """

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        command: tuple[str, ...] = ("worker",),
        port_var: str = "BRANDMON_WEB_PORT",
        module: str = "brandmon.cli",
    ) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.command = command
        self.module = module
        self.port = int(env[port_var])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        program = "brandmon" if self.module == "brandmon.cli" else f"python -m {self.module}"
        require_mark(f"`{' '.join([program, *self.command])}`", "kafka")
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.command],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url("/ready"), timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"worker not ready after {timeout} s:\n{self.log()[-4000:]}")

    def metric(self, name: str, **labels: str) -> float | None:
        """The value of the first sample of `name` with these labels (among others)."""
        for sample_labels, value in self.samples(name):
            if all(sample_labels.get(k) == v for k, v in labels.items()):
                return value
        return None

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        """(labels, value) of every sample of `name` on /metrics."""
        from prometheus_client.parser import text_string_to_metric_families

        body = httpx.get(self.url("/metrics"), timeout=5).text
        return [
            (sample.labels, float(sample.value))
            for family in text_string_to_metric_families(body)
            for sample in family.samples
            if sample.name == name
        ]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(30)

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


def read_topic(
    settings: Settings,
    topic: str,
    expected: int | None = None,
    timeout: float = 120.0,
    until: Callable[[list[Record]], bool] | None = None,
) -> list[Record]:
    """Read `topic` from its start until `expected` records (or `until` holds) or `timeout`."""
    done = until or (lambda got: expected is not None and len(got) >= expected)
    records: list[Record] = []
    for record in consume(settings, [topic], timeout=timeout):
        records.append(record)
        if done(records):
            break
    return records


def post(i: int, brand: str = "acme", text: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"p{i}",
        "text": text or f"post number {i} about {brand}",
        "brand": brand,
        "created_at": "2026-11-22T06:00:00Z",
        **extra,
    }


def values(records: list[Record]) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in records if r.value is not None]


class Stalled(AssertionError):
    """A wait that saw no progress for too long, or ran past its cap; says what it waited for."""


def wait_for_progress(
    what: str,
    measure: Callable[[], float],
    done: Callable[[float], bool],
    *,
    stall: float,
    cap: float,
    report: Callable[[], str] = lambda: "",
    poll: float = 0.5,
) -> float:
    """Wait until `done(measure())`, for as long as `measure()` keeps growing: give up after
    `stall` seconds without a new high, or `cap` seconds in all, raising Stalled with `what`,
    the last measure and `report()`. `measure` may block for a while itself (e.g. a poll)."""
    started = time.monotonic()
    moved = started
    best = value = measure()
    while not done(value):
        now = time.monotonic()
        if now - moved > stall or now - started > cap:
            why = (
                f"no progress for {now - moved:.0f} s"
                if now - moved > stall
                else f"still moving after the {cap:.0f} s cap"
            )
            raise Stalled(
                f"waited {now - started:.0f} s for {what}: {why} (at {value:g})\n{report()}"
            )
        time.sleep(poll)
        value = measure()
        if value > best:
            best, moved = value, time.monotonic()
    return value


class AckedPosts:
    """Produces `items` (dicts with an "id") to `topic` from a thread at `rate` per second, and
    counts as sent only what the broker acknowledged (delivery reports), producing again what
    was not, until every item is acknowledged or `give_up_after` seconds have passed:

    - a record whose delivery failed (e.g. timed out while the broker restarted) is produced
      again;
    - a producer that gets no acknowledgement for `stuck_after` seconds while records are
      outstanding is replaced by a new one, which produces every unacknowledged record again.
      Seen on a slow machine: after a broker restart, librdkafka's idempotent producer
      delivered nothing more (no error either) until message.timeout.ms ran out, while the
      workers' own clients had long reconnected.

    So a test's "every post comes out" means every post the broker took; duplicates on `topic`
    are possible (at-least-once), and a post that was never acknowledged is never counted.
    `acked` maps each acknowledged id to its (partition, offset) on `topic`; `summary()` and
    the client's last debug lines (`debug_tail()`) say what happened.
    """

    def __init__(
        self,
        settings: Settings,
        topic: str,
        items: Sequence[dict[str, Any]],
        *,
        key: Callable[[dict[str, Any]], str],
        rate: float,
        give_up_after: float = 420.0,
        message_timeout_ms: int = 300_000,
        stuck_after: float = 30.0,
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.items = {item["id"]: item for item in items}
        self.key = key
        self.rate = rate
        self.give_up_after = give_up_after
        self.message_timeout_ms = message_timeout_ms
        self.stuck_after = stuck_after
        self.acked: dict[str, tuple[int, int]] = {}
        self.produced = 0
        self.reproduced = 0
        self.producers = 0
        self.replaced: list[str] = []
        self.errors: Counter[str] = Counter()
        self.failure: BaseException | None = None
        self._failed: list[str] = []
        self._fatal = False
        self._generation = 0
        self._last_ack = time.monotonic()
        self._retired: list[Any] = []
        self._debug: deque[str] = deque(maxlen=300)
        # a logger of its own outside the logging tree: the client's debug lines reach only
        # this ring (nothing propagates to root, whatever configures logging meanwhile)
        self._log = logging.Logger("librdkafka", logging.DEBUG)
        self._log.addHandler(_Ring(self._debug))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="acked-posts", daemon=True)

    # --- the producer thread (delivery reports and client logs are served on it, in poll) ---

    def _producer(self) -> Any:
        from confluent_kafka import Producer

        self.producers += 1
        self._generation = self.producers
        self._last_ack = time.monotonic()

        def on_error(err: Any) -> None:
            self.errors[f"client: {err.name()}"] += 1  # e.g. _TRANSPORT, _ALL_BROKERS_DOWN
            if err.fatal():
                self._fatal = True

        conf = {
            **self.settings.confluent_config(),
            "enable.idempotence": True,
            "linger.ms": 5,
            # outlasts a broker restart on a slow machine; what still fails is produced again
            "message.timeout.ms": self.message_timeout_ms,
            "error_cb": on_error,
            # the client's own account of the idempotence state, connections and leaders,
            # kept for a failure's report (a few thousand lines a test)
            "debug": "eos,broker,topic,metadata",
            "logger": self._log,
        }
        return Producer(conf)

    def _produce(self, producer: Any, post_id: str) -> None:
        item = self.items[post_id]
        generation = self._generation

        def delivered(err: Any, msg: Any) -> None:
            if generation != self._generation:
                return  # a replaced producer's report: its records were produced again
            if err is None:
                self.acked.setdefault(post_id, (msg.partition(), msg.offset()))
                self._last_ack = time.monotonic()
            else:
                self.errors[err.str()] += 1
                self._failed.append(post_id)

        while True:
            try:
                producer.produce(
                    self.topic, json.dumps(item).encode(), key=self.key(item), on_delivery=delivered
                )
                break
            except BufferError:  # local queue full: serve delivery reports, then retry
                producer.poll(0.05)
        self.produced += 1
        producer.poll(0)

    def _replace(self, producer: Any, why: str) -> Any:
        """A new producer that produces every unacknowledged record again."""
        self.replaced.append(f"{why} at {len(self.acked)} acknowledged")
        self._debug.append(f"--- replacing producer {self.producers}: {why}")
        producer.purge()
        self._retired.append(producer)  # not destroyed here: that may wait on its connections
        producer = self._producer()
        self._failed = [i for i in self.items if i not in self.acked]
        return producer

    def _answers(self) -> bool:
        """Whether the (first) broker accepts connections: a producer waiting for a broker
        that is down is not stuck."""
        from brandmon.broker import answers

        host, _, port = self.settings.bootstrap_servers.split(",")[0].rpartition(":")
        return answers(host, int(port))

    def _run(self) -> None:
        try:
            producer = self._producer()
            started = time.monotonic()
            for i, post_id in enumerate(self.items):
                self._produce(producer, post_id)
                ahead = i / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            while not self._stop.is_set() and len(self.acked) < len(self.items):
                if time.monotonic() - started > self.give_up_after:
                    return
                producer.poll(0.2)
                if self._fatal:  # an idempotent producer that cannot go on
                    self._fatal = False
                    producer = self._replace(producer, "a fatal error")
                elif time.monotonic() - self._last_ack > self.stuck_after and self._answers():
                    producer = self._replace(
                        producer, f"no acknowledgement for {self.stuck_after:.0f} s"
                    )
                failed, self._failed = self._failed, []
                for post_id in dict.fromkeys(failed):
                    if post_id not in self.acked:
                        self._produce(producer, post_id)
                        self.reproduced += 1
            producer.flush(5)
        except BaseException as exc:  # re-raised by wait(), not lost in the thread
            self.failure = exc

    # --- the test's side ---

    def start(self) -> AckedPosts:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def missing(self) -> list[str]:
        return [post_id for post_id in self.items if post_id not in self.acked]

    def summary(self) -> str:
        return (
            f"producer: {len(self.acked)} of {len(self.items)} posts acknowledged by the broker "
            f"({self.produced} produced, {self.reproduced} of them again; "
            f"{self.producers} producer(s), replaced: {self.replaced or 'none'}); "
            f"delivery errors: {dict(self.errors)}"
        )

    def debug_tail(self, lines: int = 40) -> str:
        return "\n".join(list(self._debug)[-lines:])

    def _check(self) -> None:
        if self.failure is not None:
            raise AssertionError(f"the producer thread failed: {self.failure!r}\n{self.summary()}")

    def wait_acked(self, count: int | None = None, *, stall: float, cap: float) -> None:
        """Wait until `count` (default: all) posts are acknowledged, while acks keep coming."""
        wanted = len(self.items) if count is None else count

        def acked() -> float:
            self._check()
            return len(self.acked)

        wait_for_progress(
            f"the broker to acknowledge {wanted} of {len(self.items)} posts",
            acked,
            lambda n: n >= wanted,
            stall=stall,
            cap=cap,
            report=lambda: (
                f"{self.summary()}; first missing: {self.missing()[:10]}\n"
                f"the producer client's last debug lines:\n{self.debug_tail()}"
            ),
        )


class _Ring(logging.Handler):
    """Keeps formatted log lines in a bounded deque."""

    def __init__(self, lines: deque[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class TopicIds:
    """Reads `topic` from its start, collecting the "id" of each JSON record (distinct ids, and
    how many records in all: at-least-once allows duplicates)."""

    def __init__(self, settings: Settings, topic: str) -> None:
        from confluent_kafka import Consumer

        self.topic = topic
        self.ids: set[str] = set()
        self.records = 0
        self.partitions: Counter[int] = Counter()
        conf = {
            "group.id": f"brandmon-test-reader-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
        self._consumer = Consumer(consumer_config(settings, conf))
        self._consumer.subscribe([topic])

    def poll(self, seconds: float = 0.5) -> int:
        """Read what arrives within `seconds`; the number of distinct ids so far."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            for msg in self._consumer.consume(500, timeout=left):
                if msg.error() is not None or msg.value() is None:
                    continue  # partition EOF, or a transient error the client retries
                self.records += 1
                self.partitions[msg.partition()] += 1
                self.ids.add(json.loads(msg.value())["id"])
        return len(self.ids)

    def close(self) -> None:
        self._consumer.close()
