"""A challenger beside the champion in a running `brandmon worker`, on a real Kafka broker,
while posts keep coming: shadow mode writes every post to posts.scored (champion) and to the
shadow topic (challenger) with the same ids, split mode scores each brand with the model its
hash picks; and a challenger set, refused and cleared at run time through the control topic."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from brandmon.contracts.manifest import load_manifest
from brandmon.settings import Settings
from brandmon.stream.challenger import scored_by_challenger
from tests.helpers import WorkerProcess, read_topic, values
from tests.integration.test_rollout_kafka import (
    BRANDS,
    Feeder,
    brandmon,
    ready,
    scored_after,
    wait_for,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

#: Split share: of BRANDS, globex and initech hash below it, acme above.
SHARE = 0.4


def metric_sum(worker: WorkerProcess, name: str, **labels: str) -> float:
    """The sum of the worker's samples of `name` with these labels."""
    body = httpx.get(worker.url("/metrics"), timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def wait_metric(worker: WorkerProcess, name: str, expected: float, **labels: str) -> None:
    """Counters move after a batch's acks: wait for them to catch up with the topics."""
    deadline = time.monotonic() + 30
    while (got := metric_sum(worker, name, **labels)) != expected:
        assert time.monotonic() < deadline, f"{name}{labels} = {got}, expected {expected}"
        time.sleep(0.3)


def shadow_after(settings: Settings, sent: int) -> list[dict[str, Any]]:
    records = read_topic(settings, settings.topic_scored_shadow, expected=sent, timeout=120)
    return values(records)


def test_shadow_mode_writes_every_post_to_both_topics(
    test_settings, worker_factory, tiny_model_dir: Path, tiny_model_b_dir: Path
):
    a, b = load_manifest(tiny_model_dir), load_manifest(tiny_model_b_dir)
    worker = worker_factory(BRANDMON_CHALLENGER_PATH=str(tiny_model_b_dir))
    worker.wait_ready()
    body = ready(worker)
    assert body["model_id"] == a.model_id
    assert body["challenger"]["model_id"] == b.model_id and body["challenger"]["mode"] == "shadow"
    assert worker.metric("brandmon_model_info", model_id=b.model_id, role="challenger") == 1
    with Feeder(test_settings) as feeder:
        time.sleep(4)
        sent = feeder.stop()

    scored = scored_after(test_settings, sent)  # every post once, none lost
    assert {(p["model_id"], p["model_version"]) for p in scored} == {(a.model_id, a.version)}
    shadow = shadow_after(test_settings, sent)
    ids = [p["id"] for p in shadow]
    assert len(ids) == len(set(ids)) == sent, "a shadow record was lost or written twice"
    assert set(ids) == {p["id"] for p in scored}
    assert {(p["model_id"], p["model_version"]) for p in shadow} == {(b.model_id, b.version)}
    champion = {p["id"]: p for p in scored}
    for p in shadow:
        assert (p["brand"], p["text"]) == (champion[p["id"]]["brand"], champion[p["id"]]["text"])

    wait_metric(worker, "brandmon_shadow_comparisons_total", sent)
    agree = sum(p["label"] == champion[p["id"]]["label"] for p in shadow)
    assert metric_sum(worker, "brandmon_shadow_comparisons_total", agreement="agree") == agree
    wait_metric(worker, "brandmon_role_predictions_total", sent, role="challenger")
    assert metric_sum(worker, "brandmon_role_predictions_total", role="champion") == sent
    assert metric_sum(worker, "brandmon_challenger_errors_total") == 0


def test_split_mode_scores_each_brand_with_the_model_its_hash_picks(
    test_settings, worker_factory, tiny_model_dir: Path, tiny_model_b_dir: Path
):
    a, b = load_manifest(tiny_model_dir), load_manifest(tiny_model_b_dir)
    picked = {brand: scored_by_challenger(brand, SHARE) for brand in BRANDS}
    assert set(picked.values()) == {True, False}, "the test needs brands on both sides"
    worker = worker_factory(
        BRANDMON_CHALLENGER_PATH=str(tiny_model_b_dir),
        BRANDMON_CHALLENGER_MODE="split",
        BRANDMON_CHALLENGER_SHARE=str(SHARE),
    )
    worker.wait_ready()
    assert ready(worker)["challenger"]["share"] == SHARE
    with Feeder(test_settings) as feeder:
        time.sleep(4)
        sent = feeder.stop()

    scored = scored_after(test_settings, sent)  # every post once, none lost
    for p in scored:
        expected = b if picked[p["brand"]] else a
        assert (p["model_id"], p["model_version"]) == (expected.model_id, expected.version), p
    by_challenger = sum(picked[p["brand"]] for p in scored)
    wait_metric(worker, "brandmon_role_predictions_total", by_challenger, role="challenger")
    assert metric_sum(worker, "brandmon_role_predictions_total", role="champion") == (
        sent - by_challenger
    )
    assert metric_sum(worker, "brandmon_shadow_comparisons_total") == 0
    # nothing on the shadow topic in split mode
    assert not read_topic(test_settings, test_settings.topic_scored_shadow, timeout=3)


def test_a_challenger_is_set_refused_and_cleared_through_the_control_topic(
    test_settings, topic_env, worker_factory, tiny_model_dir, tiny_model_b_dir, tmp_path
):
    a, b = load_manifest(tiny_model_dir), load_manifest(tiny_model_b_dir)
    # written before the worker starts: the worker applies the group's latest request at start
    done = brandmon(topic_env, "model", "challenger", str(tiny_model_b_dir), "--mode", "shadow")
    assert done.returncode == 0, done.stderr
    worker = worker_factory()
    worker.wait_ready()
    body = wait_for(worker, lambda r: r["challenger"] is not None, "the challenger never came")
    assert body["challenger"]["model_id"] == b.model_id
    assert body["last_challenger_change"]["trigger"] == "control topic (latest at start)"
    tampered = shutil.copytree(tiny_model_b_dir, tmp_path / "tampered")
    with (tampered / "tokenizer.json").open("a") as fh:
        fh.write(" ")
    with Feeder(test_settings) as feeder:
        time.sleep(2)
        done = brandmon(topic_env, "model", "challenger", str(tampered), "--requested-by", "t")
        assert done.returncode == 0, done.stderr
        body = wait_for(
            worker,
            lambda r: r["last_challenger_change"]["outcome"] == "bad_checksum",
            "the tampered challenger was not refused",
        )
        assert body["challenger"]["model_path"] == str(tiny_model_b_dir.resolve())
        time.sleep(2)
        done = brandmon(topic_env, "model", "challenger", "--clear")
        assert done.returncode == 0, done.stderr
        wait_for(worker, lambda r: r["challenger"] is None, "the challenger was not cleared")
        assert worker.metric("brandmon_model_info", role="challenger") is None
        time.sleep(2)
        sent = feeder.stop()

    scored = scored_after(test_settings, sent)  # the champion's records: all, once
    assert {p["model_id"] for p in scored} == {a.model_id}
    shadow = values(
        read_topic(
            test_settings, test_settings.topic_scored_shadow, until=lambda _: False, timeout=8
        )
    )
    ids = [p["id"] for p in shadow]
    assert len(ids) == len(set(ids)) and {p["model_id"] for p in shadow} == {b.model_id}
    assert 0 < len(ids) < sent
    # per brand, the posts scored while the challenger was set: a prefix in produce order
    for brand in BRANDS:
        order = [
            p["id"] for p in sorted(scored, key=lambda p: int(p["id"][1:])) if p["brand"] == brand
        ]
        mine = {p["id"] for p in shadow if p["brand"] == brand}
        assert set(order[: len(mine)]) == mine, brand
    assert worker.metric("brandmon_challenger_changes_total", outcome="bad_checksum") == 1
    assert worker.metric("brandmon_challenger_changes_total", outcome="cleared") == 1
    assert worker.alive()
