"""The alert agent on the real broker: a spike becomes one trigger on `alerts` and one webhook
call; SIGKILL mid-incident and a restart give no second trigger and exactly one resolve."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from brandmon.contracts.posts import ScoredPost
from brandmon.kafka_io import JsonProducer, Record, ensure_topics
from brandmon.settings import Settings
from tests.alerts.recorder import Recorder
from tests.alerts.streams import traffic
from tests.helpers import read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


class AlertWorker:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "brandmon.cli", "alerts", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def dead(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[AlertWorker]]:
    started: list[AlertWorker] = []
    yield started
    for worker in started:
        worker.kill()


def _produce(settings: Settings, posts: list[ScoredPost]) -> None:
    producer = JsonProducer(settings)
    for p in posts:
        producer.send(settings.topic_scored, p.model_dump_json().encode(), key=p.brand)
    producer.flush()


def _alerts(
    settings: Settings, until: str, timeout: float, worker: AlertWorker
) -> list[dict[str, object]]:
    def done(got: list[Record]) -> bool:
        assert not worker.dead(), worker.log()
        return any(json.loads(r.value or b"{}")["action"] == until for r in got)

    records = read_topic(settings, settings.topic_alerts, timeout=timeout, until=done)
    return [json.loads(r.value) for r in records if r.value]


def test_spike_one_trigger_kill_restart_one_resolve(
    topic_env: dict[str, str], test_settings: Settings, tmp_path: Path, workers: list[AlertWorker]
) -> None:
    from brandmon.broker import free_port

    settings = test_settings
    ensure_topics(settings, [settings.topic_scored, settings.topic_alerts])
    with Recorder() as hook:
        env = {
            **topic_env,
            "BRANDMON_ALERTS_WEB_PORT": str(free_port()),
            "BRANDMON_ALERTS__WEBHOOK_URL": hook.url("/hook"),
            "BRANDMON_ALERTS__ALLOW_INSECURE_HTTP": "true",
            "BRANDMON_ALERTS__NOTIFIER_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
        }
        # a negative-share spike at the brand's usual volume: one incident of the share rule
        # (a doubled volume would also open a mention-surge incident, tests/alerts/test_surge.py)
        _produce(settings, traffic(range(60), 100, 0.15) + traffic(range(60, 66), 100, 0.6))
        first = AlertWorker(env, tmp_path / "worker-0.log")
        workers.append(first)
        first.start()
        got = _alerts(settings, "trigger", timeout=180, worker=first)
        assert [a["action"] for a in got] == ["trigger"], first.log()
        assert len(hook.wait_for(1, timeout=30)) == 1
        time.sleep(4)  # let offsets and the table's changelog be committed
        first.kill()  # SIGKILL mid-incident

        _produce(settings, traffic(range(66, 70), 100, 0.6) + traffic(range(70, 90), 100, 0.15))
        second = AlertWorker(env, tmp_path / "worker-1.log")
        workers.append(second)
        second.start()
        got = _alerts(settings, "resolve", timeout=180, worker=second)
        assert [a["action"] for a in got] == ["trigger", "resolve"], second.log()
        assert got[0]["dedup_key"] == got[1]["dedup_key"]
        calls = hook.wait_for(2, timeout=30)
        time.sleep(2)
        assert [c.body["action"] for c in hook.requests] == ["trigger", "resolve"]
        assert calls[0].body["alert_id"] == got[0]["alert_id"]

    sentiment = read_topic(settings, settings.topic_brand_sentiment, expected=80, timeout=60)
    assert len({json.loads(r.value or b"{}")["bucket_id"] for r in sentiment}) >= 80
