"""`brandmon top` against the real Kafka broker: records on this test's own `brand.sentiment`
and `alerts` topics show on the screen, the lookback picks what is read, a missing topic or
broker is named, and the live view redraws and quits on Ctrl-C in a real terminal (tmux)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from typer.testing import CliRunner

from brandmon.contracts.alerts import Alert, BrandBucket
from brandmon.kafka_io import JsonProducer, ensure_topics
from brandmon.settings import Settings
from tests.alerts.harness import alerts_app
from tests.alerts.top_records import alert, bucket

runner = CliRunner()
WIDE = {"COLUMNS": "160"}


@pytest.fixture(autouse=True)
def no_lasting_log_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    """load_settings() masks secrets in the process's logs for good; undo it after each test."""
    import brandmon.redaction as redaction

    monkeypatch.setattr(redaction, "_active", [])


def publish(settings: Settings, *records: BrandBucket | Alert | bytes) -> None:
    producer = JsonProducer(settings)
    for record in records:
        if isinstance(record, bytes):
            producer.send(settings.topic_alerts, record, key="acme")
        else:
            topic = (
                settings.topic_brand_sentiment
                if isinstance(record, BrandBucket)
                else settings.topic_alerts
            )
            producer.send(topic, record.model_dump_json().encode(), key=record.brand)
    producer.flush()


def spike(brand: str = "acme") -> list[BrandBucket | Alert]:
    return [
        *(bucket(brand, m, 0.15) for m in range(4)),
        bucket(brand, 4, 0.42, posts=283, baseline=0.156, z=8.8, state="incident"),
        alert(brand, 3, severity="warning"),
        alert(brand, 4, severity="critical", started=3),
    ]


@pytest.mark.kafka
def test_once_shows_buckets_and_open_incidents(test_settings: Settings) -> None:
    ensure_topics(test_settings, [test_settings.topic_alerts, test_settings.topic_brand_sentiment])
    quiet: list[BrandBucket | Alert] = [bucket("zeta", 4, 0.08, posts=51, z=0.2), alert("zeta", 1)]
    closed = alert("zeta", 3, "resolve", rule="quiet", started=1)
    records = [*spike(), *quiet, closed]
    # at-least-once: everything delivered twice, plus a record that is not an alert
    publish(test_settings, *records, *records, b"not json")

    result = runner.invoke(alerts_app(), ["top", "--once"], env=WIDE)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "2 brands  ·  1 open incident" in result.output
    acme = next(line for line in lines if " acme " in line)
    zeta = next(line for line in lines if " zeta " in line)
    assert lines.index(acme) < lines.index(zeta)
    for cell in ("283", "42.0%", "15.6%", "8.8", "▃▃▃▃█", "CRITICAL baseline since 02:03"):
        assert cell in acme, (cell, acme)
    assert "8.0%" in zeta and "since" not in zeta  # its incident was resolved
    assert "skipped 1 unreadable record(s)" in result.output


@pytest.mark.kafka
def test_lookback_reads_recent_records_only_unless_from_beginning(
    test_settings: Settings,
) -> None:
    ensure_topics(test_settings, [test_settings.topic_alerts, test_settings.topic_brand_sentiment])
    producer = Producer(test_settings.confluent_config())
    two_hours_ago = int((time.time() - 7200) * 1000)
    for record in (bucket("old", 0), alert("old", 0, severity="critical")):
        topic = (
            test_settings.topic_brand_sentiment
            if isinstance(record, BrandBucket)
            else test_settings.topic_alerts
        )
        producer.produce(topic, record.model_dump_json().encode(), timestamp=two_hours_ago)
    assert producer.flush(30) == 0
    publish(test_settings, bucket("new", 0))

    recent = runner.invoke(alerts_app(), ["top", "--once", "--alerts-lookback", "1h"], env=WIDE)
    assert recent.exit_code == 0, recent.output
    assert " new " in recent.output and " old " not in recent.output

    # the default alerts lookback (24 h) still shows the old brand's open incident
    default = runner.invoke(alerts_app(), ["top", "--once"], env=WIDE)
    old = next(line for line in default.output.splitlines() if " old " in line)
    assert "CRITICAL" in old and "–" in old  # its bucket is older than --lookback 1h

    everything = runner.invoke(alerts_app(), ["top", "--once", "--from-beginning"], env=WIDE)
    assert everything.exit_code == 0, everything.output
    old = next(line for line in everything.output.splitlines() if " old " in line)
    assert "15.0%" in old and "CRITICAL" in old


@pytest.mark.kafka
def test_brand_filter(test_settings: Settings) -> None:
    ensure_topics(test_settings, [test_settings.topic_alerts, test_settings.topic_brand_sentiment])
    publish(test_settings, *spike("acme"), *spike("globex"))
    result = runner.invoke(alerts_app(), ["top", "--once", "--brand", "globex"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "globex" in result.output and "acme" not in result.output


@pytest.mark.kafka
def test_missing_topics_are_named_with_what_to_do(test_settings: Settings) -> None:
    result = runner.invoke(alerts_app(), ["top", "--once"], env=WIDE)
    assert result.exit_code == 1
    assert test_settings.topic_alerts in result.output
    assert test_settings.topic_brand_sentiment in result.output
    assert "BRANDMON_TOPIC_ALERTS" in result.output
    assert "brandmon alerts worker" in result.output


def test_unreachable_broker_is_named() -> None:
    from brandmon.broker import free_port

    server = f"127.0.0.1:{free_port()}"
    result = runner.invoke(
        alerts_app(), ["top", "--once"], env={**WIDE, "BRANDMON_BOOTSTRAP_SERVERS": server}
    )
    assert result.exit_code == 1
    assert f"no Kafka broker answered at {server}" in result.output
    assert "BRANDMON_BOOTSTRAP_SERVERS" in result.output


def test_bad_lookback_says_what_it_takes() -> None:
    result = runner.invoke(alerts_app(), ["top", "--lookback", "an hour"], env=WIDE)
    assert result.exit_code == 2
    assert "give e.g. 90s, 15m, 1h or 2d" in result.output


# --- the live view in a real terminal --------------------------------------------------------


class Tmux:
    """A tmux server of its own (its socket in the test's folder) running one command in a
    150x40 pane."""

    def __init__(self, socket: Path) -> None:
        self.socket = str(socket)

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", self.socket, *args], capture_output=True, text=True, check=True
        )
        return done.stdout

    def start(self, command: str) -> None:
        self.tmux("new-session", "-d", "-x", "150", "-y", "40", "-s", "top", command)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "top")

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in shown:
                return shown
            time.sleep(0.3)
        raise AssertionError(f"{text!r} not on the screen after {timeout} s:\n{self.screen()}")

    def kill(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (make test installs it: .ci/install-system.sh)")
    session = Tmux(tmp_path / "tmux.sock")
    yield session
    session.kill()


@pytest.mark.kafka
def test_live_view_redraws_and_quits_on_ctrl_c(
    test_settings: Settings, topic_env: dict[str, str], tmux: Tmux
) -> None:
    ensure_topics(test_settings, [test_settings.topic_alerts, test_settings.topic_brand_sentiment])
    publish(test_settings, *spike("acme"))
    # COLUMNS: rich takes it over the pane's size, which a detached session may not keep
    env = {**topic_env, "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "COLUMNS": "150"}
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    command = f"env {assignments} {sys.executable} -m brandmon.cli top --refresh 0.5"
    tmux.start(f"{command}; echo brandmon top exited with $?; sleep 60")

    first = tmux.wait_for("CRITICAL baseline since 02:03")
    assert "1 open incident" in first

    # a new incident on another brand appears without restarting
    publish(test_settings, bucket("globex", 4, 0.3, z=6.0), alert("globex", 4, severity="warning"))
    later = tmux.wait_for("WARNING baseline since 02:04")
    assert "2 open incidents" in later

    tmux.tmux("send-keys", "-t", "top", "C-c")
    last = tmux.wait_for("brandmon top exited with", timeout=20)
    assert "brandmon top exited with 0" in last
    assert "Traceback" not in last
    assert "2 open incidents" in last  # the last frame stays on the screen
