"""Helpers for integration tests: a worker subprocess and topic readers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from brandmon.kafka_io import Record, consume
from brandmon.settings import Settings

#: A worker on 2 busy cores takes 5-20 s to load the model, join the group and get partitions.
READY_TIMEOUT = 90.0
#: `brandmon alerts worker`: the alert aggregator, serving on BRANDMON_ALERTS_WEB_PORT.
ALERT_WORKER = ("alerts", "worker")


class WorkerProcess:
    """`brandmon worker` in a child process with its own environment and log file.

    `command` and `port_var` run another brandmon worker command, e.g. the alert worker:
    `WorkerProcess(env, log, command=ALERT_WORKER, port_var="BRANDMON_ALERTS_WEB_PORT")`.
    """

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        command: tuple[str, ...] = ("worker",),
        port_var: str = "BRANDMON_WEB_PORT",
    ) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.command = command
        self.port = int(env[port_var])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "brandmon.cli", *self.command],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url("/ready"), timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"worker not ready after {timeout} s:\n{self.log()[-4000:]}")

    def metric(self, name: str, **labels: str) -> float | None:
        from prometheus_client.parser import text_string_to_metric_families

        body = httpx.get(self.url("/metrics"), timeout=5).text
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(30)

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


def read_topic(
    settings: Settings,
    topic: str,
    expected: int | None = None,
    timeout: float = 120.0,
    until: Callable[[list[Record]], bool] | None = None,
) -> list[Record]:
    """Read `topic` from its start until `expected` records (or `until` holds) or `timeout`."""
    done = until or (lambda got: expected is not None and len(got) >= expected)
    records: list[Record] = []
    for record in consume(settings, [topic], timeout=timeout):
        records.append(record)
        if done(records):
            break
    return records


def post(i: int, brand: str = "acme", text: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"p{i}",
        "text": text or f"post number {i} about {brand}",
        "brand": brand,
        "created_at": "2026-11-22T06:00:00Z",
        **extra,
    }


def values(records: list[Record]) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in records if r.value is not None]
