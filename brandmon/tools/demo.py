"""`brandmon demo`: the whole job on one machine, on the shipped default model.

Starts a local Kafka broker (unless one already answers), a `brandmon worker` process, and a
simulator that feeds posts for a few brands with a negative spike on one of them; prints the
scored posts and any alerts as they arrive, then stops everything it started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from brandmon.broker import LocalBroker, answers
from brandmon.kafka_io import JsonProducer, consume, ensure_topics
from brandmon.settings import Settings
from brandmon.tools.simulate import PostSimulator, SimulationConfig, Spike
from brandmon.web import wait_ready

#: Alert timing for a demo that fits in minutes: 10 s buckets, 3-bucket windows, a baseline
#: trusted after 6 buckets and a 30 s quiet period. The clock-skew allowance shrinks with the
#: buckets (5 of them, as in production): at 10 s buckets the production 300 s would make a
#: brand's state hold 30 open buckets, more than its changelog record may carry. Production
#: defaults (1 min buckets, 5 min windows, 30 buckets of warm-up, 15 min quiet period) are
#: AlertSettings' defaults.
DEMO_ALERT_ENV = {
    "BRANDMON_ALERTS__BUCKET_SECONDS": "10",
    "BRANDMON_ALERTS__WINDOW_BUCKETS": "3",
    "BRANDMON_ALERTS__ALLOWED_LATENESS_SECONDS": "2",
    "BRANDMON_ALERTS__MAX_CLOCK_SKEW_SECONDS": "50",
    "BRANDMON_ALERTS__QUIET_SECONDS": "30",
    "BRANDMON_ALERTS__WARMUP_BUCKETS": "6",
}


def _local_broker(settings: Settings, home: Path) -> LocalBroker | None:
    host, _, port = settings.bootstrap_servers.split(",")[0].rpartition(":")
    if answers(host or "127.0.0.1", int(port)):
        return None
    if host not in {"localhost", "127.0.0.1", ""}:
        raise RuntimeError(f"no broker answers at {settings.bootstrap_servers}")
    broker = LocalBroker(home=home, port=int(port))
    print(f"starting a local Kafka broker on port {port} (logs: {broker.log_file}) ...")
    broker.start()
    return broker


def _start(
    command: list[str], settings: Settings, log: Path, extra: dict[str, str]
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BRANDMON_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "BRANDMON_LOG_LEVEL": "WARNING",
        **extra,
    }
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "brandmon.cli", *command],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _feed(settings: Settings, sim: PostSimulator, rate: float, stop: threading.Event) -> None:
    producer = JsonProducer(settings)
    started = time.monotonic()
    for index, post in enumerate(sim.posts()):
        if stop.is_set():
            break
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        producer.send(settings.topic_posts, post, key=post["brand"])
    producer.flush()


def _show(settings: Settings, seconds: float, every: int) -> dict[str, int]:
    seen = {"scored": 0, "alerts": 0}
    topics = [settings.topic_scored, settings.topic_alerts]
    for record in consume(settings, topics, from_beginning=False, timeout=seconds):
        value = json.loads(record.value or b"{}")
        if record.topic == settings.topic_alerts:
            seen["alerts"] += 1
            print(
                f"ALERT  {value.get('action', '?'):8} {value.get('severity', '?'):8} "
                f"{value.get('brand', '?')}: {value.get('summary', '')}"
            )
            continue
        seen["scored"] += 1
        if seen["scored"] % every == 0:
            if value["label"] is None:
                print(f"unscored {value['brand']:8} {value['lang']:8} {value['text'][:70]}")
                continue
            score = value["scores"][value["label"]]
            print(f"scored {value['brand']:8} {value['label']:8} {score:.2f}  {value['text'][:70]}")
    return seen


def run_demo(settings: Settings, duration: float, rate: float, home: Path, every: int) -> int:
    from brandmon.broker import free_port

    broker = _local_broker(settings, home / "kafka")
    workers: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    try:
        ensure_topics(
            settings,
            [
                settings.topic_posts,
                settings.topic_scored,
                settings.topic_dlq,
                settings.topic_alerts,
                settings.topic_brand_sentiment,
            ],
        )
        port, alerts_port = free_port(), free_port()
        log, alerts_log = home / "worker.log", home / "alerts-worker.log"
        print(f"starting the score worker (model: {settings.resolved_model_path}, log: {log})")
        print(f"starting the alert worker (log: {alerts_log}) ...")
        workers.append(_start(["worker"], settings, log, {"BRANDMON_WEB_PORT": str(port)}))
        workers.append(
            _start(
                ["alerts", "worker"],
                settings,
                alerts_log,
                {"BRANDMON_ALERTS_WEB_PORT": str(alerts_port), **DEMO_ALERT_ENV},
            )
        )
        wait_ready(workers[0], port, log)
        wait_ready(workers[1], alerts_port, alerts_log)
        print(
            f"workers ready; metrics on http://127.0.0.1:{port}/metrics and "
            f"http://127.0.0.1:{alerts_port}/metrics"
        )
        spike = Spike("acme", start=duration * 0.45, duration=duration * 0.25, negative_share=0.7)
        sim = PostSimulator(
            SimulationConfig(rate=rate, spike=spike), datetime.now(UTC), seed=int(time.time())
        )
        print(
            f"feeding {rate:g} posts/s for {duration:g} s; acme turns negative "
            f"from {spike.start:g} s to {spike.start + spike.duration:g} s\n"
        )
        feeder = threading.Thread(target=_feed, args=(settings, sim, rate, stop), daemon=True)
        feeder.start()
        seen = _show(settings, duration, every)
        print(
            f"\n{seen['scored']} posts scored on {settings.topic_scored}, "
            f"{seen['alerts']} alert events on {settings.topic_alerts}"
        )
        return 0
    finally:
        stop.set()
        for proc in workers:
            if proc.poll() is None:
                proc.terminate()
        for proc in workers:
            proc.wait(60)
        if broker is not None:
            broker.stop()
