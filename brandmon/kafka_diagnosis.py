"""Why a connection to Kafka failed, read from what librdkafka reported while it tried.

librdkafka retries a failed connection by itself and reports each failure to the error
callback, with a code (`_AUTHENTICATION`, `_SSL`, `_TRANSPORT`, `_RESOLVE`), and as a FAIL log
line; some reach only the log (a PLAINTEXT client on an SSL listener is a disconnect logged at
INFO). Both end with the state the connection had reached, "(after 2ms in state
AUTH_HANDSHAKE)": past CONNECT, something answered on that port. So:

    CONNECT, a name that does not resolve   unreachable: nothing answered
    AUTH_*, code _AUTHENTICATION            authentication: the broker refused the SASL
                                            mechanism or credentials (or has no SASL there)
    SSL_HANDSHAKE, code _SSL                protocol: TLS failed (no TLS on that listener, or a
                                            certificate that does not verify)
    APIVERSION_QUERY, UP                    protocol: the port answered, then closed the
                                            connection (a TLS or SASL listener reached without)

The first two kinds of refusal are final (a retry meets the same listener); the last is also
what a broker that is shutting down does, so it names the cause only once time is up.
brandmon.kafka_io.check_broker turns a Failure into the error the user reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from confluent_kafka import KafkaError

Cause = Literal["authentication", "protocol", "unreachable"]

#: librdkafka's syslog level for the logger: INFO, where a disconnect in APIVERSION_QUERY is.
LOG_LEVEL_INFO = 6
#: Error codes that say the broker answered and refused the SASL authentication.
_AUTH_CODES = frozenset({KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED})
_STATE = re.compile(r" \(after \d+ms in state (\w+)\)")
#: "FAIL [rdkafka#producer-1] [thrd:...]: " before a log line, then the broker's name.
_PREFIX = re.compile(r"^(?:FAIL \[[^\]]*\] \[[^\]]*\]: )?\S+/(?:bootstrap|\d+): ")
#: Causes from the most telling: a refusal explains the disconnects that came with it.
_RANK: dict[Cause, int] = {"authentication": 0, "protocol": 1, "unreachable": 2}


@dataclass(frozen=True)
class Failure:
    """One failed connection: its cause, librdkafka's words, and whether retrying can help."""

    cause: Cause
    reason: str
    final: bool


def classify(code: int | None, text: str) -> Failure | None:
    """The Failure an error (`code`, text) or a log line (no code) reports; None for reports
    that are not about one connection (e.g. "1/1 brokers are down")."""
    found = _STATE.search(text)
    if found is None:
        return None
    state = found[1]
    reason = _PREFIX.sub("", _STATE.sub("", text))
    if code in _AUTH_CODES or state.startswith("AUTH"):
        return Failure("authentication", reason, final=True)
    if code == KafkaError._SSL or state == "SSL_HANDSHAKE":
        return Failure("protocol", reason, final=True)
    if state in ("APIVERSION_QUERY", "UP"):
        return Failure("protocol", reason, final=False)
    return Failure("unreachable", reason, final=False)


class ConnectionReport:
    """Collects what one confluent-kafka client reports about its connections: give it the
    settings of `client_config()` (it is the client's error callback and its logger)."""

    def __init__(self) -> None:
        self.failures: list[Failure] = []

    def client_config(self) -> dict[str, Any]:
        return {"error_cb": self.error, "logger": self, "log_level": LOG_LEVEL_INFO}

    def error(self, error: KafkaError) -> None:
        self._add(classify(error.code(), error.str()))

    def log(self, level: int, fmt: str, *args: object) -> None:
        """The logger interface confluent-kafka calls (logging.Logger.log's)."""
        line = fmt % args if args else fmt
        if line.startswith("FAIL "):
            self._add(classify(None, line))

    def worst(self) -> Failure | None:
        """The most telling failure so far (the latest of the highest rank), or None."""
        if not self.failures:
            return None
        return min(reversed(self.failures), key=lambda failure: _RANK[failure.cause])

    def _add(self, failure: Failure | None) -> None:
        if failure is not None:
            self.failures.append(failure)
