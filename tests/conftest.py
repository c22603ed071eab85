"""Shared fixtures: a real Kafka broker for the session, per-test topic names, and a worker
process running the real `brandmon worker` command.

The broker is started once per session from the Maven Central jars (brandmon.broker) on a free
loopback port, or taken from BRANDMON_TEST_BOOTSTRAP when that is set. With
BRANDMON_TEST_DOCKER=1 and a Docker engine, pytest-docker starts the compose file's broker.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from brandmon.settings import Settings
from tests.helpers import ALERT_WORKER, WorkerProcess

pytest_plugins = ["tests.model_fixtures"]

# CI runs the property tests with a fixed derivation of examples, so a submission's result does
# not depend on a lucky draw; developers' runs keep exploring new examples.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(REPO / "docker-compose.yml")


def _docker_bootstrap(request: pytest.FixtureRequest) -> str:
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


@pytest.fixture(scope="session")
def kafka_bootstrap(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """host:port of a real Kafka broker, started for this test session."""
    given = os.environ.get("BRANDMON_TEST_BOOTSTRAP")
    if given:
        yield given
        return
    if os.environ.get("BRANDMON_TEST_DOCKER") == "1":
        yield _docker_bootstrap(request)
        return
    from brandmon.broker import LocalBroker, free_port

    broker = LocalBroker(home=tmp_path_factory.mktemp("kafka"), port=free_port())
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def topic_env(kafka_bootstrap: str, tmp_path: Path) -> dict[str, str]:
    """BRANDMON_* variables for a worker that uses this test's own topics and group."""
    suffix = uuid.uuid4().hex[:8]
    return {
        "BRANDMON_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "BRANDMON_TOPIC_POSTS": f"posts-{suffix}",
        "BRANDMON_TOPIC_SCORED": f"posts.scored-{suffix}",
        "BRANDMON_TOPIC_DLQ": f"posts.dlq-{suffix}",
        "BRANDMON_TOPIC_ALERTS": f"alerts-{suffix}",
        "BRANDMON_TOPIC_BRAND_SENTIMENT": f"brand.sentiment-{suffix}",
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
