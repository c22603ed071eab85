"""Nothing lost, nothing stuck (issue 8), on the real broker with the real `brandmon worker`:
poison records between valid posts on one partition, records too large for their topic,
and a stop while records are in hand. And each record counted once, as what it was
delivered as (issue 19)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from brandmon.broker import free_port
from brandmon.contracts.records import PARSE_REASONS
from brandmon.kafka_io import JsonProducer, admin
from brandmon.settings import Settings
from brandmon.web import measure_lag
from tests.conftest import KAFKA_TEST_VERSIONS
from tests.helpers import WorkerProcess, post, read_topic, values
from tests.integration.poison_worker import POISON

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


def one_record_per_reason() -> dict[str, bytes | None]:
    """A record for each reason the score worker dead-letters with, by reason; all but
    `unserializable` (a scored record that cannot be written as JSON), which no input
    reaches: parsing refuses the lone surrogates that would cause it
    (tests/stream/test_prediction_metrics.py builds one by hand)."""
    valid = post(0, lang="en")
    return {
        "empty_value": None,
        "invalid_utf8": b"\xff\xfe\xfd",
        "too_deep": b"[" * 200,
        "invalid_json": b"not json",
        "invalid_number": _with(valid, b'"n": NaN'),
        "not_an_object": b"[1, 2, 3]",
        "missing_field": _json({k: v for k, v in valid.items() if k != "text"}),
        "invalid_field": _json({**valid, "created_at": "not a time"}),
        "invalid_unicode": _with(valid, b'"text": "half an emoji \\ud83d"'),
        "empty_text": _json({**valid, "text": "\u200b\u200d\ufeff"}),
        "control_character": _json({**valid, "brand": "acme\nFORGED log line"}),
        "time_out_of_range": _json({**valid, "created_at": "9999-12-31T23:59:59-05:00"}),
        # valid, but its scored record exceeds the scored topic's 100 kB
        "too_large": _json(post(1, text="a" * 150_000, lang="en")),
        # valid, but the model raises on it (tests/integration/poison_worker.py)
        "inference_failed": _json(post(2, text=f"a {POISON} pill", lang="en")),
    }


@pytest.fixture
def poison_worker(
    topic_env: dict[str, str], tiny_model_dir: Path, tmp_path: Path
) -> Iterator[WorkerProcess]:
    """`brandmon worker` on the fake classifier that raises on POISON (not started yet)."""
    env = {
        **topic_env,
        "BRANDMON_MODEL_PATH": str(tiny_model_dir),
        "BRANDMON_WEB_PORT": str(free_port()),
    }
    worker = WorkerProcess(
        env, tmp_path / "poison-worker.log", command=(), module="tests.integration.poison_worker"
    )
    yield worker
    worker.kill()


def counted(worker: WorkerProcess, name: str, *labels: str) -> Counter[tuple[str, ...]]:
    """The worker's counter `name` by the values of `labels` (series at zero left out)."""
    return Counter(
        {
            tuple(sample[label] for label in labels): value
            for sample, value in worker.samples(name)
            if value
        }
    )


def test_counters_match_the_records_on_the_topics(test_settings, poison_worker):
    """Valid posts (one of them unscored: no model reads its language) between records that
    end in every dead-letter reason: brandmon_posts_scored_total{label},
    brandmon_posts_dlq_total{reason} and brandmon_predictions_total count exactly the records
    on posts.scored and posts.dlq, each once, as what it was delivered as (issue 19)."""
    create_topics(test_settings)
    poison_worker.start()
    poison_worker.wait_ready()
    dead_ends = one_record_per_reason()
    assert set(dead_ends) == {*PARSE_REASONS, "too_large", "inference_failed"}
    unscored = post(999, text="Je déteste ce service, le colis est arrivé cassé", lang="fr")
    valid = [post(100 + i, lang="en") for i in range(len(dead_ends))]
    items = [_json(unscored)]
    for value, good in zip(dead_ends.values(), valid, strict=True):
        items += [value, _json(good)]
    produce(test_settings, items)

    posts = [unscored, *valid]
    scored = values(read_topic(test_settings, test_settings.topic_scored, expected=len(posts)))
    dead = values(read_topic(test_settings, test_settings.topic_dlq, expected=len(dead_ends)))
    assert sorted(p["id"] for p in scored) == sorted(p["id"] for p in posts)
    assert sorted(d["reason"] for d in dead) == sorted(dead_ends)

    on_topics = {
        "brandmon_posts_scored_total": Counter((p["label"] or "unscored",) for p in scored),
        "brandmon_posts_dlq_total": Counter((d["reason"],) for d in dead),
        "brandmon_predictions_total": Counter(
            (p["brand"], p["label"], p["model_version"]) for p in scored if p["label"]
        ),
    }
    assert on_topics["brandmon_posts_scored_total"][("unscored",)] == 1
    labels = {
        "brandmon_posts_scored_total": ("label",),
        "brandmon_posts_dlq_total": ("reason",),
        "brandmon_predictions_total": ("brand", "label", "model_version"),
    }
    deadline = time.monotonic() + 30  # counted after the ack, a moment after the records land
    while True:
        on_metrics = {name: counted(poison_worker, name, *labels[name]) for name in labels}
        if on_metrics == on_topics or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert on_metrics == on_topics
