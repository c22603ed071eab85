"""The score pipeline on a real Kafka broker, with the real `brandmon worker` process and a
real (tiny, randomly initialised) DistilBERT exported to ONNX."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter

import httpx
import pytest

from brandmon.contracts.manifest import load_manifest
from brandmon.kafka_io import JsonProducer
from brandmon.settings import Settings
from tests.conftest import KAFKA_TEST_VERSIONS
from tests.helpers import post, read_topic, values

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def send(settings: Settings, items: list[dict[str, object] | bytes | None]) -> None:
    producer = JsonProducer(settings)
    for item in items:
        if isinstance(item, dict):
            producer.send(settings.topic_posts, item, key=str(item.get("brand", "")))
        else:
            producer._producer.produce(settings.topic_posts, item, key=b"raw")
    producer.flush()


@pytest.mark.parametrize("kafka_version", KAFKA_TEST_VERSIONS, indirect=True)
def test_n_posts_in_give_n_scored_records_with_the_same_ids(
    test_settings, worker_factory, tiny_model_dir
):
    manifest = load_manifest(tiny_model_dir)
    worker = worker_factory()
    worker.wait_ready()
    posts = [post(i, brand=("acme", "globex", "initech")[i % 3]) for i in range(300)]
    send(test_settings, posts)

    records = read_topic(test_settings, test_settings.topic_scored, expected=300, timeout=120)
    scored = values(records)
    assert sorted(p["id"] for p in scored) == sorted(p["id"] for p in posts)
    by_id = {p["id"]: p for p in posts}
    for record, out in zip(records, scored, strict=True):
        assert record.key == out["brand"].encode()  # key = brand, as on the input
        assert out["brand"] == by_id[out["id"]]["brand"]
        assert out["text"] == by_id[out["id"]]["text"]
        assert out["label"] in {"negative", "neutral", "positive"}
        assert abs(sum(out["scores"].values()) - 1) < 1e-3
        assert (out["model_id"], out["model_version"]) == (manifest.model_id, manifest.version)
        assert record.headers["brandmon-source"].startswith(test_settings.topic_posts.encode())
    assert worker.metric("brandmon_posts_scored_total", label=scored[0]["label"]) >= 1
    # a brand's posts (one key, one partition) come out in the order they went in
    for brand in ("acme", "globex", "initech"):
        sent = [p["id"] for p in posts if p["brand"] == brand]
        assert [out["id"] for out in scored if out["brand"] == brand] == sent, brand


def test_bad_records_reach_the_dlq_with_reasons_and_the_worker_keeps_scoring(
    test_settings, worker_factory
):
    worker = worker_factory()
    worker.wait_ready()
    bad = [
        b"not json",
        b"\xff\xfe\xfd",
        b"[1,2,3]",
        None,
        json.dumps({"id": "m1", "brand": "acme", "created_at": "2026-11-22T06:00:00Z"}).encode(),
        json.dumps(post(900, text="   ")).encode(),
        json.dumps({**post(901), "created_at": "not a time"}).encode(),
    ]
    good = [post(i) for i in range(20)]
    send(test_settings, [good[0], *bad[:4], *good[1:10], *bad[4:], *good[10:]])

    dead = values(read_topic(test_settings, test_settings.topic_dlq, expected=len(bad)))
    assert Counter(d["reason"] for d in dead) == Counter(
        {
            "invalid_json": 1,
            "invalid_utf8": 1,
            "not_an_object": 1,
            "empty_value": 1,
            "missing_field": 1,
            "empty_text": 1,
            "invalid_field": 1,
        }
    )
    for letter in dead:
        assert letter["topic"] == test_settings.topic_posts
        assert letter["offset"] >= 0 and letter["detail"]
    scored = values(read_topic(test_settings, test_settings.topic_scored, expected=20))
    assert sorted(p["id"] for p in scored) == sorted(p["id"] for p in good)

    # still alive and still scoring after all that
    assert httpx.get(worker.url("/live"), timeout=5).status_code == 200
    send(test_settings, [post(500)])
    later = read_topic(test_settings, test_settings.topic_scored, expected=21)
    assert "p500" in {p["id"] for p in values(later)}


def test_sigkill_mid_stream_and_restart_lose_no_post(test_settings, worker_factory):
    total = 3000
    posts = [
        post(i, brand=("acme", "globex")[i % 2], text=f"long day {i} " * 8) for i in range(total)
    ]
    send(test_settings, posts)
    first = worker_factory(BRANDMON_MAX_BATCH="32")
    first.wait_ready()
    # let it get part-way, then kill it without warning
    read_topic(test_settings, test_settings.topic_scored, expected=300, timeout=120)
    first.kill()
    partial = len(read_topic(test_settings, test_settings.topic_scored, timeout=5))
    assert partial < total, "the worker finished before it could be killed; raise `total`"

    second = worker_factory()
    second.wait_ready()
    records = read_topic(
        test_settings,
        test_settings.topic_scored,
        timeout=240,
        until=lambda got: len({json.loads(r.value)["id"] for r in got}) >= total,
    )
    ids = Counter(json.loads(r.value)["id"] for r in records)
    missing = {p["id"] for p in posts} - set(ids)
    assert not missing, f"{len(missing)} posts were lost"


def test_sigterm_finishes_the_batch_commits_and_exits_cleanly(test_settings, worker_factory):
    total = 1500
    posts = [post(i, text=f"steady traffic {i} " * 6) for i in range(total)]
    send(test_settings, posts)
    first = worker_factory()
    first.wait_ready()
    read_topic(test_settings, test_settings.topic_scored, expected=200, timeout=120)
    assert first.terminate(timeout=60) == 0
    done = values(read_topic(test_settings, test_settings.topic_scored, timeout=5))
    assert "stopped" in first.log().lower() or "stopping" in first.log().lower()

    second = worker_factory()
    second.wait_ready()
    records = read_topic(
        test_settings,
        test_settings.topic_scored,
        timeout=240,
        until=lambda got: len({json.loads(r.value)["id"] for r in got}) >= total,
    )
    ids = Counter(json.loads(r.value)["id"] for r in records)
    assert set(ids) == {p["id"] for p in posts}
    # a clean stop commits what it delivered: the restart replays nothing already scored
    duplicates = [i for i, n in ids.items() if n > 1]
    assert not duplicates, (
        f"{len(duplicates)} posts scored twice after a clean stop ({len(done)} before)"
    )


def test_worker_names_an_unreachable_broker_and_exits(topic_env, tiny_model_dir, tmp_path):
    env = {
        **topic_env,
        "BRANDMON_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "BRANDMON_MODEL_PATH": str(tiny_model_dir),
    }
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "brandmon.cli", "worker"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    assert "127.0.0.1:1" in out.stderr and "brandmon kafka start" in out.stderr
    assert "Traceback" not in out.stderr
    assert time.monotonic() - started < 60
