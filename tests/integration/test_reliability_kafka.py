"""Nothing lost, nothing stuck (issue 8), on the real broker with the real `brandmon worker`:
poison records between valid posts on one partition, records too large for their topic,
and a stop while records are in hand."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import pytest
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from brandmon.kafka_io import JsonProducer, admin
from brandmon.settings import Settings
from brandmon.web import measure_lag
from tests.conftest import KAFKA_TEST_VERSIONS
from tests.helpers import post, read_topic, values

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

#: One key for everything: every record lands on the same partition, behind each other.
KEY = b"acme"


def hostile_records() -> list[tuple[str, bytes | None]]:
    """(what it is, bytes): records that crashed or slipped through the worker before."""
    valid = post(0)
    return [
        ("deep nesting", b"[" * 200_000),
        ("5,000-digit integer in an ignored field", b'{"n": ' + b"9" * 5000 + b"}"),
        ("5,000-digit integer beside a valid post", _with(valid, b'"n": ' + b"7" * 5000)),
        ("lone surrogate in text", _with(valid, b'"text": "half an emoji \\ud83d"')),
        ("year 9999 minus five hours", _json({**valid, "created_at": "9999-12-31T23:59:59-05:00"})),
        ("year 1 plus one hour", _json({**valid, "created_at": "0001-01-01T00:00:00+01:00"})),
        ("Go zero time", _json({**valid, "created_at": "0001-01-01T00:00:00Z"})),
        ("NaN time", _with(valid, b'"created_at": NaN')),
        ("zero-width text", _json({**valid, "text": "\u200b\u200d\ufeff"})),
        ("newline in brand", _json({**valid, "brand": "acme\nFORGED log line"})),
        ("not UTF-8", b"\xff\xfe\xfd"),
        ("null value", None),
        ("empty value", b""),
        ("JSON list", b"[1, 2, 3]"),
        ("300 kB of garbage (its dead letter exceeds the DLQ topic's limit)", b"x" * 300_000),
    ]


def _json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


def _with(valid: dict[str, Any], field: bytes) -> bytes:
    """A valid post's JSON with one more raw field (overriding by position: last wins)."""
    return _json(valid)[:-1] + b", " + field + b"}"


def create_topics(settings: Settings) -> None:
    """posts on one partition; scored and DLQ topics with small max.message.bytes."""
    client = admin(settings)
    futures = client.create_topics(
        [
            NewTopic(settings.topic_posts, 1, 1),
            NewTopic(settings.topic_scored, 3, 1, config={"max.message.bytes": "100000"}),
            NewTopic(settings.topic_dlq, 3, 1, config={"max.message.bytes": "200000"}),
        ]
    )
    for future in futures.values():
        future.result()


def produce(settings: Settings, items: list[bytes | None]) -> None:
    producer = JsonProducer(settings, **{"message.max.bytes": 1_000_000})
    for item in items:
        producer._producer.produce(settings.topic_posts, item, key=KEY)
    producer.flush()


def wait_committed(settings: Settings, end: int, timeout: float = 60.0) -> dict[int, int]:
    deadline = time.monotonic() + timeout
    lag: dict[int, int] = {}
    while time.monotonic() < deadline:
        lag = measure_lag(settings, settings.app_id, settings.topic_posts)
        if sum(lag.values()) == 0:
            return lag
        time.sleep(1)
    raise AssertionError(f"the group's commits did not reach the end ({end} records): lag {lag}")


@pytest.mark.parametrize("kafka_version", KAFKA_TEST_VERSIONS, indirect=True)
def test_poison_records_between_valid_posts_lose_nothing(test_settings, worker_factory):
    """Every valid post is scored, every poison record dead-lettered with a reason, the
    group commits to the end, and the worker stays up, ready, and stops on SIGTERM."""
    create_topics(test_settings)
    worker = worker_factory()
    worker.wait_ready()

    hostile = hostile_records()
    big = post(10_000, text="a" * 150_000)  # valid, but its scored record exceeds 100 kB
    items: list[bytes | None] = []
    valid: list[dict[str, Any]] = []
    for i, (_, value) in enumerate(hostile):
        items.append(value)
        for j in range(10):  # ten valid posts behind every poison record
            valid.append(post(i * 100 + j))
            items.append(_json(valid[-1]))
    items.append(_json(big))
    produce(test_settings, items)

    expected_dead = len(hostile) + 1
    scored = values(read_topic(test_settings, test_settings.topic_scored, expected=len(valid)))
    dead = values(read_topic(test_settings, test_settings.topic_dlq, expected=expected_dead))

    assert sorted(p["id"] for p in scored) == sorted(p["id"] for p in valid), worker.log()[-3000:]
    assert len(dead) == expected_dead, [d["reason"] for d in dead]
    assert len({d["id"] for d in dead}) == expected_dead
    assert all(d["reason"] and d["detail"] for d in dead)
    by_offset = {d["offset"]: d for d in dead}
    poison_offsets = [i * 11 for i in range(len(hostile))]
    assert sorted(by_offset) == [*poison_offsets, len(items) - 1]
    for offset, (what, value) in zip(poison_offsets, hostile, strict=True):
        letter = by_offset[offset]
        original = value or b""
        assert letter["original_size"] == len(original), what
        assert letter["sha256"] == hashlib.sha256(original).hexdigest(), what
        kept = base64.b64decode(letter["value_b64"])
        assert original.startswith(kept), what
        assert letter["truncated"] == (len(kept) < len(original)), what
    for offset in (poison_offsets[0], poison_offsets[-1]):  # too large for the DLQ topic
        cut = by_offset[offset]
        assert cut["truncated"] and len(cut["value_b64"]) < 10_000
        assert cut["reason"] != "too_large"  # the reason it failed is kept
        assert "cut to a prefix" in cut["detail"]
    too_large = by_offset[len(items) - 1]
    assert too_large["reason"] == "too_large"
    assert too_large["original_size"] == len(_json(big))

    wait_committed(test_settings, len(items))
    assert worker.alive()
    worker.wait_ready(timeout=5)
    started = time.monotonic()
    assert worker.terminate(timeout=30) == 0
    assert time.monotonic() - started < 30


def test_a_fresh_worker_on_poisoned_history_scores_it_all(test_settings, worker_factory):
    """Records already on the topic before the worker starts (the restart case): the worker
    neither crashes on them nor leaves the partition stuck."""
    create_topics(test_settings)
    hostile = hostile_records()
    items: list[bytes | None] = []
    valid = []
    for i, (_, value) in enumerate(hostile):
        valid.append(post(i))
        items += [value, _json(valid[-1])]
    produce(test_settings, items)

    worker = worker_factory()
    worker.wait_ready()
    scored = values(read_topic(test_settings, test_settings.topic_scored, expected=len(valid)))
    assert sorted(p["id"] for p in scored) == sorted(p["id"] for p in valid)
    wait_committed(test_settings, len(items))
    assert worker.alive()
