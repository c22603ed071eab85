"""Broker errors that name their cause: what check_broker says when the broker refuses SASL or
TLS (against a real PLAINTEXT broker) or nothing answers, and how librdkafka's reports of the
listeners the test broker does not have (SASL, SSL) are read."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import KafkaError

from brandmon.broker import free_port
from brandmon.kafka_diagnosis import ConnectionReport, classify
from brandmon.kafka_io import BrokerUnreachableError, check_broker
from brandmon.settings import Settings

SASL = {
    "security_protocol": "SASL_PLAINTEXT",
    "sasl_mechanism": "PLAIN",
    "sasl_username": "brandmon",
    "sasl_password": "not-the-password",
}


def refusal(timeout: float = 10.0, **settings: str) -> BrokerUnreachableError:
    with pytest.raises(BrokerUnreachableError) as info:
        check_broker(Settings(**settings), timeout=timeout)  # type: ignore[arg-type]
    return info.value


@pytest.mark.kafka
def test_sasl_tls_and_no_broker_are_three_different_errors(kafka_bootstrap: str) -> None:
    sasl = refusal(bootstrap_servers=kafka_bootstrap, **SASL)
    tls = refusal(bootstrap_servers=kafka_bootstrap, security_protocol="SSL")
    unused = f"127.0.0.1:{free_port()}"
    nothing = refusal(timeout=3.0, bootstrap_servers=unused)

    assert type(sasl).__name__ == "BrokerAuthenticationError"
    assert f"the Kafka broker at {kafka_bootstrap} refused the SASL authentication" in str(sasl)
    assert "BRANDMON_SASL_PASSWORD" in str(sasl) and "not-the-password" not in str(sasl)

    assert type(tls).__name__ == "BrokerProtocolError"
    assert f"something answered at {kafka_bootstrap} but the SSL handshake failed" in str(tls)
    assert "BRANDMON_SECURITY_PROTOCOL" in str(tls)

    assert type(nothing) is BrokerUnreachableError
    assert f"no Kafka broker answered at {unused} within 3 s" in str(nothing)
    assert "Connection refused" in str(nothing) and "brandmon kafka start" in str(nothing)


@pytest.mark.kafka
def test_a_refused_handshake_is_reported_before_the_timeout(kafka_bootstrap: str) -> None:
    import time

    started = time.monotonic()
    refusal(timeout=30.0, bootstrap_servers=kafka_bootstrap, **SASL)
    assert time.monotonic() - started < 10


def test_settings_the_client_refuses_are_named_without_connecting(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    error = refusal(
        bootstrap_servers="127.0.0.1:1", security_protocol="SSL", ssl_cafile=str(missing)
    )
    assert type(error).__name__ == "KafkaSettingsError"
    assert "ssl.ca.location" in str(error) and "BRANDMON_SSL_*" in str(error)


# librdkafka's words (2.x) on the listeners the test broker lacks, recorded against a broker
# with SASL_PLAINTEXT and SSL listeners
WRONG_PASSWORD = (
    "sasl_plaintext://127.0.0.1:19093/bootstrap: SASL authentication error: Authentication "
    "failed: Invalid username or password (after 304ms in state AUTH_REQ)"
)
UNVERIFIED_CERTIFICATE = (
    "ssl://127.0.0.1:19094/bootstrap: SSL handshake failed: error:0A000086:SSL routines::"
    "certificate verify failed: broker certificate could not be verified (after 41ms in state "
    "SSL_HANDSHAKE)"
)
PLAINTEXT_ON_SSL_LISTENER = (
    "FAIL [rdkafka#producer-1] [thrd:127.0.0.1:19094/bootstrap]: 127.0.0.1:19094/bootstrap: "
    "Disconnected: connection closed by peer: receive 0 after POLLIN (after 1ms in state "
    "APIVERSION_QUERY)"
)
PLAINTEXT_ON_SASL_LISTENER = (
    "FAIL [rdkafka#producer-2] [thrd:127.0.0.1:19093/bootstrap]: 127.0.0.1:19093/bootstrap: "
    "Disconnected: connection closed by peer: receive 0 after POLLIN (after 300ms in state UP)"
)
REFUSED = (
    "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused (after 0ms "
    "in state CONNECT)"
)


@pytest.mark.parametrize(
    ("code", "text", "cause", "final"),
    [
        (KafkaError._AUTHENTICATION, WRONG_PASSWORD, "authentication", True),
        (KafkaError._SSL, UNVERIFIED_CERTIFICATE, "protocol", True),
        (None, PLAINTEXT_ON_SSL_LISTENER, "protocol", False),
        (None, PLAINTEXT_ON_SASL_LISTENER, "protocol", False),
        (KafkaError._TRANSPORT, REFUSED, "unreachable", False),
    ],
)
def test_each_report_is_read_as_its_cause(
    code: int | None, text: str, cause: str, final: bool
) -> None:
    failure = classify(code, text)
    assert failure is not None
    assert (failure.cause, failure.final) == (cause, final)
    assert "bootstrap" not in failure.reason and "in state" not in failure.reason


def test_the_most_telling_failure_wins() -> None:
    report = ConnectionReport()
    report.log(6, "%s", PLAINTEXT_ON_SSL_LISTENER)
    report.error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    first = report.worst()
    assert first is not None and first.cause == "protocol"
    report.error(KafkaError(KafkaError._AUTHENTICATION, WRONG_PASSWORD))
    report.error(KafkaError(KafkaError._TRANSPORT, REFUSED))
    assert report.worst() == classify(KafkaError._AUTHENTICATION, WRONG_PASSWORD)
