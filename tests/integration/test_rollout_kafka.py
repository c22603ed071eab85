"""Model promotion and rollback in a running `brandmon worker`, on a real Kafka broker, while
posts keep coming: `brandmon model promote/rollback` through the control topic, SIGHUP with
an active-model pointer file, and a tampered folder that is refused."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from brandmon.contracts.manifest import load_manifest
from brandmon.kafka_io import JsonProducer
from brandmon.settings import Settings
from tests.helpers import WorkerProcess, post, read_topic, values

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

BRANDS = ("acme", "globex", "initech")


class Feeder:
    """Produces posts p<first>, p<first + 1>, ... (brand by turns, key = brand) until
    stopped; `sent` is the next post's number."""

    def __init__(self, settings: Settings, every: float = 0.01, first: int = 0) -> None:
        self.settings = settings
        self.every = every
        self.sent = first
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Feeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        producer = JsonProducer(self.settings)
        while not self._stop.is_set():
            brand = BRANDS[self.sent % len(BRANDS)]
            producer.send(self.settings.topic_posts, post(self.sent, brand=brand), key=brand)
            self.sent += 1
            if self.sent % 20 == 0:
                producer.flush()
            time.sleep(self.every)
        producer.flush()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(30)
        return self.sent


def brandmon(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "brandmon.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def ready(worker: WorkerProcess) -> dict[str, Any]:
    response = httpx.get(worker.url("/ready"), timeout=5)
    body: dict[str, Any] = response.json()
    body["status"] = response.status_code
    return body


def wait_for(worker: WorkerProcess, check: Callable[[dict[str, Any]], bool], what: str) -> dict:
    deadline = time.monotonic() + 90
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = ready(worker)
        if check(body):
            return body
        time.sleep(0.3)
    raise AssertionError(f"{what}: /ready says {body}\n{worker.log()[-3000:]}")


def scored_after(settings: Settings, sent: int) -> list[dict[str, Any]]:
    records = read_topic(settings, settings.topic_scored, expected=sent, timeout=120)
    scored = values(records)
    ids = [p["id"] for p in scored]
    assert len(ids) == len(set(ids)), "a post was scored twice"
    assert set(ids) == {f"p{i}" for i in range(sent)}, "a post was lost"
    return scored


def models_per_brand(scored: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Per brand (one partition of posts), the models in produce order with repeats
    collapsed. The worker scores a partition in offset order, so a batch split between two
    models, or a post scored by the old model after the new one took over, shows up as an
    extra change. (Produce order, not the order on posts.scored: a batch's outputs are sent
    concurrently, and the first ones can land out of order while the topic's metadata is
    fetched.)"""
    runs: dict[str, list[str]] = {}
    for p in sorted(scored, key=lambda p: int(p["id"][1:])):
        models = runs.setdefault(p["brand"], [])
        if not models or models[-1] != p["model_id"]:
            models.append(p["model_id"])
    return runs


def test_promote_then_roll_back_while_posts_flow(
    test_settings, topic_env, worker_factory, tiny_model_dir: Path, tiny_model_b_dir: Path
):
    a, b = load_manifest(tiny_model_dir), load_manifest(tiny_model_b_dir)
    assert (a.model_id, a.version) != (b.model_id, b.version)
    worker = worker_factory()
    worker.wait_ready()
    assert ready(worker)["model_id"] == a.model_id
    with Feeder(test_settings) as feeder:
        time.sleep(3)
        done = brandmon(topic_env, "model", "promote", str(tiny_model_b_dir), "--requested-by", "t")
        assert done.returncode == 0, done.stderr
        body = wait_for(worker, lambda r: r["model_id"] == b.model_id, "B never became active")
        assert body["model_version"] == b.version and body["status"] == 200
        assert body["model_path"] == str(tiny_model_b_dir.resolve())
        assert body["previous_model_path"] == str(tiny_model_dir.resolve())
        assert body["last_promotion"]["outcome"] == "promoted"
        assert body["last_promotion"]["requested_by"] == "t"
        assert worker.metric("brandmon_model_info", model_id=b.model_id, role="champion") == 1
        assert worker.metric("brandmon_model_info", model_id=a.model_id) is None
        time.sleep(3)
        done = brandmon(topic_env, "model", "rollback", "--worker", worker.url(""))
        assert done.returncode == 0, done.stderr
        wait_for(worker, lambda r: r["model_id"] == a.model_id, "the rollback to A never came")
        time.sleep(3)
        sent = feeder.stop()
    assert worker.metric("brandmon_model_promotions_total", outcome="promoted") == 2

    scored = scored_after(test_settings, sent)
    for brand, models in models_per_brand(scored).items():
        assert models == [a.model_id, b.model_id, a.model_id], brand
    versions = {(p["model_id"], p["model_version"]) for p in scored}
    assert versions == {(a.model_id, a.version), (b.model_id, b.version)}


def test_a_tampered_folder_is_refused_and_sighup_follows_the_pointer(
    test_settings, topic_env, worker_factory, tiny_model_dir, tiny_model_b_dir, tmp_path
):
    a, b = load_manifest(tiny_model_dir), load_manifest(tiny_model_b_dir)
    pointer = tmp_path / "active-model"
    pointer.write_text(f"{tiny_model_dir}\n")
    worker = worker_factory(BRANDMON_MODEL_PATH=str(pointer))
    worker.wait_ready()
    tampered = shutil.copytree(tiny_model_b_dir, tmp_path / "tampered")
    with (tampered / "tokenizer.json").open("a") as fh:
        fh.write(" ")
    with Feeder(test_settings) as feeder:
        time.sleep(2)
        done = brandmon(topic_env, "model", "promote", str(tampered))
        assert done.returncode == 0, done.stderr
        body = wait_for(
            worker,
            lambda r: (r["last_promotion"] or {}).get("outcome") == "bad_checksum",
            "the tampered folder was not refused",
        )
        assert body["status"] == 200 and body["model_id"] == a.model_id
        assert "tokenizer.json" in body["last_promotion"]["detail"]
        assert body["last_promotion"]["model_path"] == str(tampered)
        assert worker.metric("brandmon_model_promotions_total", outcome="bad_checksum") == 1
        time.sleep(2)
        pointer.write_text(f"{tiny_model_b_dir}\n")
        assert worker.proc is not None
        worker.proc.send_signal(signal.SIGHUP)
        body = wait_for(worker, lambda r: r["model_id"] == b.model_id, "SIGHUP did not promote")
        assert body["last_promotion"]["trigger"] == "SIGHUP"
        time.sleep(2)
        sent = feeder.stop()

    scored = scored_after(test_settings, sent)
    for brand, models in models_per_brand(scored).items():
        assert models == [a.model_id, b.model_id], brand
    assert worker.alive()
