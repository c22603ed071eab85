"""The local Kafka broker (brandmon.broker) of each supported release: version names, the POM
and jar cache per version, ports outside the ephemeral range, and a real start / produce /
consume / restart / stop cycle."""

from __future__ import annotations

import logging
import random
import socket
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from brandmon.broker import (
    KAFKA4_VERSION,
    KAFKA_VERSION,
    BrokerError,
    LocalBroker,
    ephemeral_ports,
    free_port,
    jar_cache,
    pom_path,
    port_is_free,
    resolve_version,
)
from brandmon.cli import app
from brandmon.kafka_io import JsonProducer, consume, ensure_topics
from brandmon.settings import Settings
from tests.conftest import KAFKA_TEST_VERSIONS


@pytest.mark.parametrize(
    ("given", "exact"),
    [
        ("3.9.2", "3.9.2"),
        ("3.9", KAFKA_VERSION),
        ("3.x", KAFKA_VERSION),
        ("4", KAFKA4_VERSION),
        ("4.x", KAFKA4_VERSION),
        (KAFKA4_VERSION.rsplit(".", 1)[0] + ".x", KAFKA4_VERSION),
        ("4.0.2", "4.0.2"),
    ],
)
def test_version_names_resolve_to_exact_releases(given: str, exact: str) -> None:
    assert resolve_version(given) == exact


@pytest.mark.parametrize("bad", ["", "latest", "2.8.1", "5.0.0", "4.2.x.1", "3.8"])
def test_unsupported_versions_are_refused_with_the_supported_ones_named(bad: str) -> None:
    with pytest.raises(BrokerError, match=KAFKA4_VERSION):
        resolve_version(bad)


def test_each_release_line_has_its_pom_and_its_own_jar_cache() -> None:
    assert pom_path("3.9.2").is_file() and pom_path("4.x").is_file()
    assert pom_path("3.9.2") != pom_path("4.x")
    # the 4.x POM adds the slf4j binding to log4j2 that Kafka 4's own POM leaves out
    assert "log4j-slf4j-impl" in pom_path("4.x").read_text()
    assert f"<kafka.version>{KAFKA4_VERSION}<" in pom_path("4.x").read_text()
    assert jar_cache("3.9").parts[-2:] == (f"kafka-{KAFKA_VERSION}", "libs")
    assert jar_cache("4.x").parts[-2:] == (f"kafka-{KAFKA4_VERSION}", "libs")


@pytest.mark.parametrize(
    ("formatted", "asked"),
    [(KAFKA4_VERSION, KAFKA_VERSION), (KAFKA_VERSION, "4.x"), ("4.9.0", "4.x")],
)
def test_data_of_another_line_or_a_newer_release_is_not_opened(
    formatted: str, asked: str, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "meta.properties").write_text("version=1\n")
    (tmp_path / "kafka.version").write_text(f"{formatted}\n")
    broker = LocalBroker(home=tmp_path, port=free_port(), version=asked)
    with pytest.raises(BrokerError, match=f"--version {formatted}") as info:
        broker.start()
    assert str(tmp_path) in str(info.value)


def test_cli_names_an_unsupported_version(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["kafka", "start", "--home", str(tmp_path), "--port", "1", "--version", "5.0.0"]
    )
    assert result.exit_code == 1
    assert "5.0.0" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("32768\t60999\n", range(32768, 61000)),
        ("1024 65535", range(1024, 65536)),
        ("not a range", range(32768, 65536)),  # unreadable: Linux's and IANA's ranges
    ],
)
def test_the_ephemeral_range_is_read_from_the_kernel(
    content: str, expected: range, tmp_path: Path
) -> None:
    source = tmp_path / "ip_local_port_range"
    source.write_text(content)
    assert ephemeral_ports(source) == expected
    assert ephemeral_ports(tmp_path / "missing") == range(32768, 65536)


def test_chosen_ports_are_free_and_outside_the_ephemeral_range() -> None:
    """A client's source port can never be a chosen server port (issue 19: a client retrying
    127.0.0.1:39092 connected to itself and the broker could not start again there)."""
    ephemeral = ephemeral_ports()
    ports = {free_port() for _ in range(50)}
    assert not any(port in ephemeral for port in ports), sorted(ports)
    assert all(port_is_free("127.0.0.1", port) and port >= 10000 for port in ports)
    # a range that leaves only the top of the port space: the ports come from there
    rng = random.Random(7)
    assert all(free_port(ephemeral=range(10000, 65000), rng=rng) >= 65000 for _ in range(20))


def test_no_port_outside_the_ephemeral_range_is_an_error_that_says_what_to_do() -> None:
    with pytest.raises(BrokerError, match="ip_local_port_range"):
        free_port(ephemeral=range(1024, 65536))


def test_a_broker_port_in_the_ephemeral_range_is_named_as_the_risk_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # the kernel's pick: in the ephemeral range
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(BrokerError, match=f"port {port} .* taken .* ephemeral port range"):
            LocalBroker(home=tmp_path, port=port, jars=tmp_path).start()

    free = next(p for p in ephemeral_ports() if port_is_free("127.0.0.1", p))
    broker = LocalBroker(home=tmp_path, port=free, jars=tmp_path)
    with caplog.at_level(logging.WARNING, logger="brandmon.broker"):
        broker._check_port()
    assert f"port {free}; it is in this machine's ephemeral port range" in caplog.text


def _round_trip(bootstrap: str) -> None:
    """Create a topic, produce one JSON record, and read it back."""
    settings = Settings(bootstrap_servers=bootstrap)
    topic = f"broker-check-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [topic], partitions=2)
    producer = JsonProducer(settings)
    producer.send(topic, {"id": "p1", "text": "hello"}, key="acme")
    assert producer.flush() == 1
    records = list(consume(settings, [topic], max_records=1, timeout=60))
    assert [(r.key, r.json()) for r in records] == [(b"acme", {"id": "p1", "text": "hello"})]


@pytest.mark.kafka
def test_kafka4_broker_round_trips_a_record(kafka4_bootstrap: str) -> None:
    _round_trip(kafka4_bootstrap)


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.parametrize("version", KAFKA_TEST_VERSIONS)
def test_local_broker_starts_logs_restarts_and_stops(version: str, tmp_path: Path) -> None:
    broker = LocalBroker(home=tmp_path / "kafka", port=free_port(), version=version)
    try:
        broker.start()
        _round_trip(broker.bootstrap)
        # its log lands in the broker's log folder, written by the release asked for
        log = broker.log_file.read_text()
        assert broker.log_file.parent == broker.home / "logs"
        assert "Kafka Server started" in log
        assert f"metadata.version {broker.version.rsplit('.', 1)[0]}" in log
        assert broker.formatted_version() == broker.version

        assert broker.stop() is True
        assert broker.pid() is None and port_is_free(broker.host, broker.port)
        broker.start()  # the same home again: formatted data is reused, not formatted anew
        _round_trip(broker.bootstrap)
    finally:
        stopped = broker.stop()
    assert stopped is True and not broker.running()
