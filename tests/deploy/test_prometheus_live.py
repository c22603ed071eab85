"""A real Prometheus server (Debian's binary) scraping a real `brandmon worker` and a real
`brandmon alerts worker` on a real Kafka broker, as two jobs like the compose stack: the
throughput, latency, lag, DLQ and model series (score worker) and the per-brand series (alert
worker) arrive with sensible values, and the shipped rules evaluate against them without
errors."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from brandmon.kafka_io import JsonProducer
from brandmon.settings import Settings
from tests.deploy.repo import DASHBOARDS, RULE_FILES, dashboard_queries
from tests.helpers import WorkerProcess, post

PROMETHEUS_BIN = shutil.which("prometheus")
pytestmark = [
    pytest.mark.kafka,
    pytest.mark.slow,
    pytest.mark.skipif(
        PROMETHEUS_BIN is None,
        reason="the prometheus server is not installed (Debian package `prometheus`; "
        ".ci/install-system.sh)",
    ),
]

#: Scrape and evaluate every 2 s so the test sees series within seconds, not minutes; not 1 s,
#: because on 2 busy cores a worker's /metrics can take longer than a 1 s scrape timeout.
SCRAPE_INTERVAL = "2s"
#: Posts fed in waves, so rate() windows see traffic spread over several scrapes.
WAVES, PER_WAVE = 4, 100
BAD_RECORDS = [b"not json", b"{broken"]
BRANDS = ("acme", "globex", "initech")
#: Seconds of event time the posts cover (buckets are 60 s, closed 30 s after their end).
EVENT_SPAN = 240.0
#: Scrape job names, as in deploy/prometheus/prometheus.yml (the shipped rules name them).
SCORE_JOB, ALERTS_JOB = "brandmon-worker", "brandmon-alerts"
#: Dashboard panels that must show data once posts have flowed (the brand and alert panels
#: need closed event-time buckets or incidents, which this short test doesn't produce).
PANELS_WITH_DATA = {
    "Consumed / s",
    "Scored / s",
    "DLQ share",
    "Consumer lag",
    "Workers up",
    "Latency p95",
    "Model in use",
    "Throughput",
    "Scored by label",
    "Consumed per worker",
    "Dead letters by reason",
    "Produce-to-scored latency",
    "Inference time per batch",
    "Batch size",
    "Consumer lag per partition",
    "Predicted label share per model version",
    "Label share per brand",
    "Prediction confidence",
    "Low-confidence share (top-class probability <= 0.6)",
}


class PrometheusServer:
    """`prometheus` on a free loopback port with its own config and TSDB in a temp folder."""

    def __init__(self, workdir: Path, targets: dict[str, int]) -> None:
        """`targets`: scrape job name -> port of the one process on 127.0.0.1 it scrapes."""
        from brandmon.broker import free_port

        self.port = free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "prometheus.log"
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
            # The shipped rules, unchanged: they must evaluate cleanly on real series.
            "rule_files": [str(path) for path in RULE_FILES],
            "scrape_configs": [
                {
                    "job_name": job,
                    "scrape_timeout": SCRAPE_INTERVAL,
                    "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
                }
                for job, port in targets.items()
            ],
        }
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        assert PROMETHEUS_BIN is not None
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                PROMETHEUS_BIN,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready after {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant vector result of `expr`: [{'metric': {...}, 'value': [ts, 'str']}, ...]."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def shows_data(self, expr: str, since: float) -> bool:
        """Whether a dashboard panel of `expr` over [since, now] draws anything: a range
        query, as Grafana runs it, with at least one point that is a number."""
        data = self.api(
            "query_range", query=expr, start=str(since), end=str(time.time()), step="5s"
        )
        return any(
            not math.isnan(float(value))
            for series in data["result"]
            for _, value in series["values"]
        )

    def scalar(self, expr: str) -> float | None:
        """The value of a one-series result, None when there is no series."""
        result = self.query(expr)
        assert len(result) <= 1, f"{expr} gave {len(result)} series"
        return float(result[0]["value"][1]) if result else None

    def wait_for(
        self, expr: str, ok: Callable[[float | None], bool], timeout: float = 90.0
    ) -> float | None:
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.scalar(expr)
            if ok(value):
                return value
            time.sleep(0.5)
        raise AssertionError(f"{expr} = {value} after {timeout} s\nprometheus log:\n{self.log()}")


@pytest.fixture
def worker(worker_factory: Callable[..., WorkerProcess]) -> WorkerProcess:
    proc = worker_factory()
    proc.wait_ready()
    return proc


@pytest.fixture
def alert_worker(alert_worker_factory: Callable[..., WorkerProcess]) -> WorkerProcess:
    proc = alert_worker_factory()
    proc.wait_ready()
    return proc


@pytest.fixture
def prometheus(
    worker: WorkerProcess, alert_worker: WorkerProcess, tmp_path: Path
) -> Iterator[PrometheusServer]:
    server = PrometheusServer(
        tmp_path / "prometheus", {SCORE_JOB: worker.port, ALERTS_JOB: alert_worker.port}
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def feed(settings: Settings) -> int:
    """Send the posts in waves (plus a few bad records); returns the number sent.

    Event times spread over the last EVENT_SPAN seconds, so the alert worker closes a few
    one-minute buckets per brand and sets the per-brand gauges.
    """
    producer = JsonProducer(settings)
    total = WAVES * PER_WAVE
    start = time.time() - EVENT_SPAN
    sent = 0
    for wave in range(WAVES):
        for i in range(PER_WAVE):
            n = wave * PER_WAVE + i
            brand = BRANDS[n % len(BRANDS)]
            at = datetime.fromtimestamp(start + EVENT_SPAN * n / total, UTC).isoformat()
            producer.send(settings.topic_posts, post(n, brand=brand, created_at=at), key=brand)
        producer.flush()
        sent += PER_WAVE
        time.sleep(1.5)
    for raw in BAD_RECORDS:
        producer.send(settings.topic_posts, raw, key="raw")
    producer.flush()
    return sent + len(BAD_RECORDS)


def test_prometheus_scrapes_throughput_latency_and_lag(
    worker: WorkerProcess,
    alert_worker: WorkerProcess,
    prometheus: PrometheusServer,
    test_settings: Settings,
) -> None:
    job = f'job="{SCORE_JOB}"'
    alerts_job = f'job="{ALERTS_JOB}"'
    prometheus.wait_for(f"up{{{job}}}", lambda v: v == 1, timeout=30)
    prometheus.wait_for(f"up{{{alerts_job}}}", lambda v: v == 1, timeout=30)

    started = time.time()
    total = feed(test_settings)
    good = total - len(BAD_RECORDS)

    # Throughput: every record consumed, every good one scored, the bad ones dead-lettered.
    prometheus.wait_for(f"sum(brandmon_posts_consumed_total{{{job}}})", lambda v: v == total)
    prometheus.wait_for(f"sum(brandmon_posts_scored_total{{{job}}})", lambda v: v == good)
    dlq = prometheus.query(f"sum by (reason) (brandmon_posts_dlq_total{{{job}}})")
    assert {r["metric"]["reason"]: float(r["value"][1]) for r in dlq} == {
        "invalid_json": len(BAD_RECORDS)
    }
    labels = prometheus.query(f"sum by (label) (brandmon_posts_scored_total{{{job}}})")
    assert {r["metric"]["label"] for r in labels} <= {"negative", "neutral", "positive"}
    # What the model predicted: every scored post once, by brand, label and model version, and
    # one confidence each (the histogram's count is the same count without the brand).
    prometheus.wait_for(f"sum(brandmon_predictions_total{{{job}}})", lambda v: v == good)
    assert prometheus.scalar(f"sum(brandmon_prediction_confidence_count{{{job}}})") == good
    brands = prometheus.query(f"sum by (brand) (brandmon_predictions_total{{{job}}})")
    assert {r["metric"]["brand"] for r in brands} == set(BRANDS)
    assert (
        len(prometheus.query(f"count by (model_version) (brandmon_predictions_total{{{job}}})"))
        == 1
    )
    mean_confidence = prometheus.scalar(
        f"sum(brandmon_prediction_confidence_sum{{{job}}}) "
        f"/ sum(brandmon_prediction_confidence_count{{{job}}})"
    )
    assert mean_confidence is not None and 1 / 3 <= mean_confidence <= 1, mean_confidence
    # The dashboard's throughput query showed the traffic: its peak over the test, with
    # windows of a few scrapes, is above zero and no more than everything in one second.
    peak_rate = prometheus.scalar(
        f"max_over_time(sum(rate(brandmon_posts_consumed_total{{{job}}}[10s]))[5m:2s])"
    )
    assert peak_rate is not None and 0 < peak_rate <= total, peak_rate

    # Latency: one observation per scored post, and quantiles in a sensible range.
    assert prometheus.scalar(f"sum(brandmon_produce_to_scored_seconds_count{{{job}}})") == good
    p95 = prometheus.scalar(
        "histogram_quantile(0.95, sum by (le) "
        f"(rate(brandmon_produce_to_scored_seconds_bucket{{{job}}}[5m])))"
    )
    assert p95 is not None and math.isfinite(p95) and 0 < p95 < 60, p95
    batches = prometheus.scalar(f"sum(brandmon_inference_seconds_count{{{job}}})")
    assert batches is not None and 1 <= batches <= good
    mean_inference = prometheus.scalar(
        f"sum(brandmon_inference_seconds_sum{{{job}}}) "
        f"/ sum(brandmon_inference_seconds_count{{{job}}})"
    )
    assert mean_inference is not None and 0 < mean_inference < 5, mean_inference
    # Batch sizes add up to the records taken (good and bad alike).
    assert prometheus.scalar(f"sum(brandmon_batch_size_sum{{{job}}})") == total

    # Lag: one series per partition of the posts topic, never negative nor above what was
    # sent, and back to 0 once the worker has committed everything.
    topic = f'topic="{test_settings.topic_posts}"'
    partitions = test_settings.topic_partitions
    prometheus.wait_for(
        f"count(brandmon_consumer_lag{{{job}, {topic}}})", lambda v: v == partitions, timeout=30
    )
    prometheus.wait_for(f"max(brandmon_consumer_lag{{{job}, {topic}}})", lambda v: v == 0)
    assert prometheus.scalar(f"min(brandmon_consumer_lag{{{job}, {topic}}})") == 0
    peak = prometheus.scalar(f"max(max_over_time(brandmon_consumer_lag{{{job}, {topic}}}[10m]))")
    assert peak is not None and 0 <= peak <= total

    # Per-brand window gauges from the alert worker, once its first buckets have closed.
    prometheus.wait_for(
        f"count(brandmon_brand_negative_share{{{alerts_job}}})", lambda v: v == len(BRANDS)
    )
    per_brand = total // len(BRANDS) + 1
    for brand in BRANDS:
        selector = f'{alerts_job}, brand="{brand}"'
        share = prometheus.scalar(f"brandmon_brand_negative_share{{{selector}}}")
        posts = prometheus.scalar(f"brandmon_brand_posts_window{{{selector}}}")
        assert share is not None and 0 <= share <= 1, (brand, share)
        assert posts is not None and 1 <= posts <= per_brand, (brand, posts)
        # The voices gauges feed the spike rules: consistent with the share and the posts.
        voices = prometheus.scalar(f"brandmon_brand_voices_window{{{selector}}}")
        negative = prometheus.scalar(f"brandmon_brand_negative_voices_window{{{selector}}}")
        assert voices is not None and negative is not None, brand
        assert 0 <= negative <= voices <= posts, (brand, negative, voices, posts)
        assert share == pytest.approx(negative / voices if voices else 0.0), brand
    # The spike rules' recorded series appear for every brand (their groups run once a
    # minute, so allow for one evaluation); the Wilson lower bound is never above the share
    # (up to rounding: with no negatives it is 0 give or take 1e-17).
    for record in (
        "job_brand:brandmon_brand_negative_voices_window:max",
        "job_brand:brandmon_brand_negative_share:wilson_lower95",
    ):
        prometheus.wait_for(
            f"count({record}{{{alerts_job}}})", lambda v: v == len(BRANDS), timeout=90
        )
    above_share = prometheus.query(
        f"job_brand:brandmon_brand_negative_share:wilson_lower95{{{alerts_job}}} "
        f"> on (job, brand) job_brand:brandmon_brand_negative_share:max + 1e-9"
    )
    assert not above_share, above_share

    # Each stage's series come from its own process only: the score worker exports no brand
    # gauges, the alert worker scores nothing and reports no lag (the two share the metric
    # definitions, so the alert worker's unlabelled score counters exist and stay 0).
    assert not prometheus.query(f"brandmon_brand_negative_share{{{job}}}")
    assert not prometheus.query(f"brandmon_posts_scored_total{{{alerts_job}}}")
    assert not prometheus.query(f"brandmon_consumer_lag{{{alerts_job}}}")
    assert prometheus.scalar(f"sum(brandmon_posts_consumed_total{{{alerts_job}}})") in (None, 0)

    # Model in use.
    (info,) = prometheus.query(f"brandmon_model_info{{{job}}}")
    assert info["metric"]["provider"].lower().startswith("cpu")  # cpu or CPUExecutionProvider
    assert info["metric"]["model_id"] and info["metric"]["model_version"]
    assert info["metric"]["role"] == "champion"

    # Every dashboard query is accepted by the server, and the pipeline panels show data over
    # the test's time range, as the dashboard draws them (an instant query at the end would
    # miss a rate whose traffic is more than a window ago).
    for dashboard in DASHBOARDS:
        shown: dict[str, bool] = {}
        for title, expr in dashboard_queries(dashboard):
            prometheus.query(expr)  # accepted as an instant query too
            shown[title] = shown.get(title, False) or prometheus.shows_data(expr, started)
        assert set(shown) >= PANELS_WITH_DATA, PANELS_WITH_DATA - set(shown)
        empty = {title for title in PANELS_WITH_DATA if not shown[title]}
        assert not empty, f"{dashboard.name}: panels without data: {empty}"


def test_shipped_rules_evaluate_cleanly_on_real_series(
    worker: WorkerProcess, alert_worker: WorkerProcess, prometheus: PrometheusServer
) -> None:
    for job in (SCORE_JOB, ALERTS_JOB):
        prometheus.wait_for(f'up{{job="{job}"}}', lambda v: v == 1, timeout=30)

    def evaluated() -> list[dict[str, Any]]:
        groups = prometheus.api("rules")["groups"]
        return [rule for group in groups for rule in group["rules"]]

    # The brand groups evaluate once a minute, at an offset of Prometheus' choosing.
    deadline = time.monotonic() + 90
    while True:
        rules = evaluated()
        if rules and all(not r["lastEvaluation"].startswith("0001") for r in rules):
            break
        assert time.monotonic() < deadline, json.dumps(rules, indent=1)[:4000]
        time.sleep(0.5)
    assert len(rules) == sum(
        len(g["rules"]) for path in RULE_FILES for g in yaml.safe_load(path.read_text())["groups"]
    )
    broken = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert not broken, broken
    # Healthy, idle score and alert workers are neither down, absent nor stalled.
    firing = prometheus.query('ALERTS{alertstate="firing"}')
    assert not firing, firing
