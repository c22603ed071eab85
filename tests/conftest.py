"""Shared fixtures: a real Kafka broker for the session, per-test topic names, and a worker
process running the real `brandmon worker` command.

The broker is started once per session from the Maven Central jars (brandmon.broker) on a free
loopback port outside the ephemeral range (brandmon.broker.free_port, as every server a test
starts), or taken from BRANDMON_TEST_BOOTSTRAP when that is set. With
BRANDMON_TEST_DOCKER=1 and a Docker engine, pytest-docker starts the compose file's broker.
BRANDMON_TEST_KAFKA_VERSION (e.g. 4.x) picks the Kafka release of that session broker.

Tests that must pass on every supported Kafka release select the broker with an indirect
parameter; `topic_env`, `test_settings`, `worker_factory` and `alert_worker_factory` then all
point at that broker, started lazily (once per session and version) when first asked for:

    @pytest.mark.parametrize("kafka_version", KAFKA_TEST_VERSIONS, indirect=True)
    def test_something(test_settings, worker_factory): ...

Marks: a test that starts a broker (or a worker, which needs one) carries `kafka`; one that
starts another server (Label Studio, Prometheus) carries `server` (or `kafka` when it needs a
broker too), so `pytest -m "not kafka and not server"` starts none. Collection refuses a test
whose fixtures start one without its mark (pytest_collection_modifyitems below), and whatever
starts a broker, a worker or a server at run time fails an unmarked test that gets that far
(tests.helpers.require_mark: the broker fixtures, LocalBroker, WorkerProcess, Label Studio).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import settings as hypothesis_settings

from brandmon.settings import Settings
from tests import helpers
from tests.helpers import ALERT_WORKER, WorkerProcess, require_mark

if TYPE_CHECKING:
    from brandmon.broker import LocalBroker

pytest_plugins = ["tests.model_fixtures", "tests.label_studio_fixture"]

# CI runs the property tests with a fixed derivation of examples, so a submission's result does
# not depend on a lucky draw; developers' runs keep exploring new examples.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

REPO = Path(__file__).resolve().parent.parent
#: The Kafka releases that version-parametrized tests run against: the default 3.9 line and
#: the pinned Kafka 4 release (brandmon.broker.KAFKA4_VERSION); ids stay stable across bumps.
KAFKA_TEST_VERSIONS = ["3.9", "4.x"]

#: Fixtures that start a Kafka broker (or a worker, which needs one), directly or through the
#: fixtures they ask for: a test with any of them in its closure must be marked `kafka`.
BROKER_FIXTURES = frozenset(
    {
        "local_brokers",
        "kafka_bootstrap",
        "kafka4_bootstrap",
        "any_kafka_bootstrap",
        "topic_env",
        "test_settings",
        "worker_factory",
        "alert_worker_factory",
        "docker_services",  # pytest-docker: the compose file's broker
    }
)
#: Fixtures that start another server: a test with any of them must be marked `server`, or
#: `kafka` (which leaves it out of the fast set just as well) when it needs a broker too.
#: `label_studio`: tests/label_studio_fixture.py; `prometheus`: deploy/test_prometheus_live.py.
SERVER_FIXTURES = frozenset({"label_studio", "prometheus"})
SERVER_MARKS = ("server", "kafka")


def unmarked_servers(item: pytest.Item) -> list[str]:
    """What `item` starts through its fixtures without the mark that says so, e.g.
    ["a Kafka broker (topic_env, test_settings) without @pytest.mark.kafka"]."""
    closure = set(getattr(item, "fixturenames", ()))
    problems = []
    brokers = sorted(closure & BROKER_FIXTURES)
    if brokers and item.get_closest_marker("kafka") is None:
        problems.append(f"a Kafka broker ({', '.join(brokers)}) without @pytest.mark.kafka")
    servers = sorted(closure & SERVER_FIXTURES)
    if servers and not any(item.get_closest_marker(mark) for mark in SERVER_MARKS):
        problems.append(f"a server ({', '.join(servers)}) without @pytest.mark.server")
    return problems


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: every collected test is checked
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse the run when a test starts a broker or a server without its mark: `pytest -m
    "not kafka and not server"` would start it anyway."""
    problems = [
        f"{item.nodeid} starts {problem}" for item in items for problem in unmarked_servers(item)
    ]
    if problems:
        raise pytest.UsageError(
            "tests that start a broker or a server must say so with a mark "
            "(see tests/conftest.py):\n  " + "\n  ".join(problems)
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """Name the running test for tests.helpers.require_mark (a stack: pytester runs nest)."""
    helpers._running.append(item)
    try:
        return (yield)
    finally:
        helpers._running.pop()


@pytest.fixture(scope="session", autouse=True)
def _brokers_need_the_kafka_mark() -> Iterator[None]:
    """A test that starts a Kafka broker's JVM itself (brandmon.broker.LocalBroker, as the
    fault and broker tests do, or `brandmon kafka start` in-process) fails unless it is marked
    `kafka`. LocalBroker._java is where every broker (and its storage format) is spawned; the
    checks before it (a taken port, data of another release) stay open to unmarked tests."""
    from brandmon.broker import LocalBroker

    spawn = LocalBroker._java

    def guarded(self: LocalBroker, main: str, *args: str, **popen: object) -> Any:
        require_mark(f"a Kafka broker's JVM ({main})", "kafka")
        return spawn(self, main, *args, **popen)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LocalBroker, "_java", guarded)
        yield


def _session_version() -> str:
    """The Kafka release of the session broker (`kafka_bootstrap`)."""
    from brandmon.broker import KAFKA_VERSION, resolve_version

    return resolve_version(os.environ.get("BRANDMON_TEST_KAFKA_VERSION") or KAFKA_VERSION)


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(REPO / "docker-compose.yml")


def _docker_bootstrap(request: pytest.FixtureRequest) -> str:
    require_mark("the compose file's Kafka broker", "kafka")
    if shutil.which("docker") is None:
        pytest.skip("BRANDMON_TEST_DOCKER=1 but there is no docker client")
    services = request.getfixturevalue("docker_services")
    port = services.port_for("kafka", 9092)
    bootstrap = f"127.0.0.1:{port}"

    def up() -> bool:
        from brandmon.broker import answers

        return answers("127.0.0.1", port)

    services.wait_until_responsive(timeout=120.0, pause=1.0, check=up)
    return bootstrap


class LocalBrokers:
    """Local brokers for this session, one per Kafka release, each started when first asked
    for (its jars fetched from Maven Central first if they are not cached) and all stopped at
    the end."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._started: dict[str, LocalBroker] = {}

    def bootstrap(self, version: str) -> str:
        from brandmon.broker import LocalBroker, free_port, resolve_version

        version = resolve_version(version)
        if version not in self._started:
            require_mark(f"a Kafka {version} broker", "kafka")
            home = self._tmp.mktemp(f"kafka-{version}")
            broker = LocalBroker(home=home, port=free_port(), version=version)
            broker.start()  # BrokerError says what is missing (Maven, Java, the network)
            self._started[version] = broker
        return self._started[version].bootstrap

    def stop_all(self) -> None:
        for broker in self._started.values():
            broker.stop()


@pytest.fixture(scope="session")
def local_brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBrokers]:
    brokers = LocalBrokers(tmp_path_factory)
    try:
        yield brokers
    finally:
        brokers.stop_all()


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> str:
    """host:port of a real Kafka broker (BRANDMON_TEST_KAFKA_VERSION, default 3.9.2), started
    for this test session."""
    given = os.environ.get("BRANDMON_TEST_BOOTSTRAP")
    if given:
        return given
    if os.environ.get("BRANDMON_TEST_DOCKER") == "1":
        return _docker_bootstrap(request)
    brokers: LocalBrokers = request.getfixturevalue("local_brokers")
    return brokers.bootstrap(_session_version())


@pytest.fixture(scope="session")
def kafka4_bootstrap(request: pytest.FixtureRequest) -> str:
    """host:port of a local Kafka 4 broker (brandmon.broker.KAFKA4_VERSION), started for this
    session only when a test asks for it; the session broker when that is already Kafka 4."""
    from brandmon.broker import KAFKA4_VERSION

    if _session_version() == KAFKA4_VERSION:
        return str(request.getfixturevalue("kafka_bootstrap"))
    brokers: LocalBrokers = request.getfixturevalue("local_brokers")
    return brokers.bootstrap(KAFKA4_VERSION)


@pytest.fixture
def kafka_version(request: pytest.FixtureRequest) -> str:
    """The exact Kafka release this test runs against: the indirect parameter
    (`@pytest.mark.parametrize("kafka_version", ["3.9", "4.x"], indirect=True)`, any form
    brandmon.broker.resolve_version takes), or the session broker's release."""
    from brandmon.broker import resolve_version

    param = getattr(request, "param", None)
    return resolve_version(str(param)) if param is not None else _session_version()


@pytest.fixture
def any_kafka_bootstrap(kafka_version: str, request: pytest.FixtureRequest) -> str:
    """host:port of a broker of `kafka_version`: the session broker (`kafka_bootstrap`, which
    honours BRANDMON_TEST_BOOTSTRAP) for its own release, else a local broker of that release."""
    if kafka_version == _session_version():
        return str(request.getfixturevalue("kafka_bootstrap"))
    brokers: LocalBrokers = request.getfixturevalue("local_brokers")
    return brokers.bootstrap(kafka_version)


@pytest.fixture
def topic_env(any_kafka_bootstrap: str, tmp_path: Path) -> dict[str, str]:
    """BRANDMON_* variables for a worker that uses this test's own topics and group, on the
    broker of this test's `kafka_version` (the session broker unless parametrized)."""
    suffix = uuid.uuid4().hex[:8]
    return {
        "BRANDMON_BOOTSTRAP_SERVERS": any_kafka_bootstrap,
        "BRANDMON_TOPIC_POSTS": f"posts-{suffix}",
        "BRANDMON_TOPIC_SCORED": f"posts.scored-{suffix}",
        "BRANDMON_TOPIC_DLQ": f"posts.dlq-{suffix}",
        "BRANDMON_TOPIC_ALERTS": f"alerts-{suffix}",
        "BRANDMON_TOPIC_BRAND_SENTIMENT": f"brand.sentiment-{suffix}",
        "BRANDMON_TOPIC_SCORED_DLQ": f"posts.scored.dlq-{suffix}",
        "BRANDMON_TOPIC_SCORED_SHADOW": f"posts.scored.shadow-{suffix}",
        "BRANDMON_TOPIC_ALERTS_DLQ": f"alerts.dlq-{suffix}",
        "BRANDMON_TOPIC_CONTROL": f"brandmon.control-{suffix}",
        "BRANDMON_APP_ID": f"brandmon-test-{suffix}",
        "BRANDMON_ALERTS_APP_ID": f"brandmon-test-alerts-{suffix}",
        "BRANDMON_DATA_DIR": str(tmp_path / "worker-data"),
        "BRANDMON_TOPIC_PARTITIONS": "3",
    }


@pytest.fixture
def test_settings(topic_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in topic_env.items():
        monkeypatch.setenv(key, value)
    return Settings()


@pytest.fixture
def worker_factory(
    topic_env: dict[str, str],
    tiny_model_dir: Path,
    tmp_path: Path,
) -> Iterator[type[WorkerProcess] | object]:
    """Start `brandmon worker` processes on this test's topics; all are killed at the end."""
    started: list[WorkerProcess] = []

    def start(**extra: str) -> WorkerProcess:
        from brandmon.broker import free_port

        env = {
            **topic_env,
            "BRANDMON_MODEL_PATH": str(tiny_model_dir),
            "BRANDMON_WEB_PORT": str(free_port()),
            **extra,
        }
        proc = WorkerProcess(env, log_path=tmp_path / f"worker-{len(started)}.log")
        started.append(proc)
        proc.start()
        return proc

    yield start
    for proc in started:
        proc.kill()


@pytest.fixture
def alert_worker_factory(
    topic_env: dict[str, str],
    tmp_path: Path,
) -> Iterator[type[WorkerProcess] | object]:
    """Start `brandmon alerts worker` processes on this test's topics (its own consumer group,
    BRANDMON_ALERTS_APP_ID); all are killed at the end."""
    started: list[WorkerProcess] = []

    def start(**extra: str) -> WorkerProcess:
        from brandmon.broker import free_port

        env = {**topic_env, "BRANDMON_ALERTS_WEB_PORT": str(free_port()), **extra}
        proc = WorkerProcess(
            env,
            log_path=tmp_path / f"alert-worker-{len(started)}.log",
            command=ALERT_WORKER,
            port_var="BRANDMON_ALERTS_WEB_PORT",
        )
        started.append(proc)
        proc.start()
        return proc

    yield start
    for proc in started:
        proc.kill()
