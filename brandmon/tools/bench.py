"""`brandmon bench`: the one benchmark of brandmon. Speed of the classifier alone, of the
transformers `pipeline()` reference, and of the pipeline through the real broker and worker,
measured in the same run.

Phases (each result is a key of the printed JSON):
1. `classifier`: the ONNX classifier alone on the texts, in batches of max_batch as the
   worker calls it (no Kafka); best and median of --repeats passes.
2. `reference`: transformers `pipeline()` (PyTorch) on a sample of the same texts and the same
   model's PyTorch checkpoint, one text per call and in batches of 32, when one is given
   (--reference).
3. `end_to_end`: all posts produced at once to a fresh topic; a `brandmon worker` process
   scores them; throughput is posts / (last scored - first produced).
4. `half_rate`: posts produced at half the end-to-end rate; produce-to-scored latency
   percentiles against the targets (p99 <= 0.30 s, p50 <= 0.10 s).
5. `ceiling`: the classifier's compute ceiling here (brandmon.tools.ceiling): int8 and fp32
   matmul throughput turned into texts/s at the texts' mean token count; `ratios` gives the
   classifier's and the pipeline's fraction of it.
6. `language`: the score stage's language identification alone (stream/language.py) on the
   same texts in batches of max_batch, and the languages it found; `ratios` gives
   `classifier_with_language_vs_classifier`, the classifier's throughput with identification
   in front of it as a fraction of its throughput alone (docs/languages.md).

The end-to-end phases also report, per batch, the mean seconds of each stage the worker
timed (`stage_seconds_per_batch`: wait, parse, language, tokenize, inference, serialize,
deliver).

`--classifier-only` runs phases 1, 2, 5 and 6 and needs no broker. This is a benchmark, not a test:
other processes on the machine change the figures.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brandmon.kafka_io import JsonProducer, consume, ensure_topics
from brandmon.metrics import SCORE_STAGES
from brandmon.model_export.data import read_texts
from brandmon.settings import Settings

#: The targets of issue 10, checked in the printed JSON.
TARGET_P99_SECONDS = 0.30
TARGET_P50_SECONDS = 0.10
TARGET_VS_CLASSIFIER = 0.95
TARGET_VS_REFERENCE = 6.0
TARGET_VS_INT8_CEILING = 0.75


def load_texts(path: Path | None, count: int, seed: int = 3) -> list[str]:
    """`count` texts: from a JSONL or text file (cycled when it holds fewer), or simulated."""
    if path is None:
        from datetime import UTC, datetime

        from brandmon.tools.simulate import PostSimulator, SimulationConfig

        sim = PostSimulator(SimulationConfig(), datetime(2026, 1, 1, tzinfo=UTC), seed=seed)
        return [p["text"] for p in sim.posts(count)]
    texts = read_texts(path, count)
    return [texts[i % len(texts)] for i in range(count)]


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values)
    return {f"p{q}": round(float(np.percentile(arr, q)), 4) for q in (50, 95, 99)} | {
        "max": round(float(arr.max()), 4),
        "mean": round(float(arr.mean()), 4),
    }


def bench_classifier(settings: Settings, texts: list[str], repeats: int = 1) -> dict[str, Any]:
    """Texts per second of the classifier the worker loads, fed batches of max_batch."""
    from brandmon.stream.classifier import classifier_for

    clf = classifier_for(settings)
    clf.predict_proba(texts[: settings.max_batch])  # warm-up: first call allocates
    passes: list[tuple[float, float]] = []  # (tokenize, infer) seconds of one pass
    for _ in range(repeats):
        tokenize = infer = 0.0
        for i in range(0, len(texts), settings.max_batch):
            started = time.perf_counter()
            ids = clf.tokenize(texts[i : i + settings.max_batch])
            tokenized = time.perf_counter()
            clf.infer(ids)
            tokenize += tokenized - started
            infer += time.perf_counter() - tokenized
        passes.append((tokenize, infer))
    totals = [t + i for t, i in passes]
    best = min(range(repeats), key=lambda r: totals[r])
    lengths = [len(ids) for ids in clf.tokenize(texts[:2000])]
    return {
        "texts": len(texts),
        "repeats": repeats,
        "seconds": round(totals[best], 3),
        "tokenize_seconds": round(passes[best][0], 3),
        "infer_seconds": round(passes[best][1], 3),
        "texts_per_second": round(len(texts) / totals[best], 1),
        "texts_per_second_median": round(len(texts) / statistics.median(totals), 1),
        "batch": settings.max_batch,
        "micro_batch": settings.micro_batch,
        "threads": clf.threads,
        "spinning": clf.spinning,
        "model": clf.model_id,
        "file": clf.model_file.name,
        "provider": clf.provider,
        "mean_tokens": round(statistics.mean(lengths), 1),
    }


def bench_language(settings: Settings, texts: list[str], repeats: int = 1) -> dict[str, Any]:
    """Posts per second of the score stage's language identification (stream/language.py),
    fed batches of max_batch as the stage feeds it, and the languages it found."""
    from collections import Counter

    from brandmon.stream.language import FastTextRanker, LanguagePolicy, identify

    if not settings.lang_routing:
        return {"skipped": "BRANDMON_LANG_ROUTING is off"}
    ranker = FastTextRanker()
    policy = LanguagePolicy(
        settings.lang_min_letters, settings.lang_min_confidence, settings.lang_override_confidence
    )
    hints: list[str | None] = [None] * settings.max_batch
    passes: list[float] = []
    found: Counter[str] = Counter()
    for _ in range(repeats):
        started = time.perf_counter()
        for i in range(0, len(texts), settings.max_batch):
            batch = texts[i : i + settings.max_batch]
            guesses = identify(batch, hints[: len(batch)], ranker, policy)
            if not passes:
                found.update(guess.lang for guess in guesses)
        passes.append(time.perf_counter() - started)
    best = min(passes)
    return {
        "texts": len(texts),
        "seconds": round(best, 3),
        "texts_per_second": round(len(texts) / best, 1) if best > 0 else None,
        "languages": dict(found.most_common(10)),
    }


def bench_ceiling(settings: Settings, mean_tokens: float) -> dict[str, Any]:
    """The classifier's compute ceiling here (brandmon.tools.ceiling), with its threads."""
    from brandmon.stream.classifier import classifier_for
    from brandmon.tools.ceiling import ceiling

    try:
        import onnx  # noqa: F401
    except ImportError:
        return {"skipped": "the ceiling reads the ONNX graph: install the export extra (onnx)"}
    clf = classifier_for(settings)
    return ceiling(clf.model_file, mean_tokens, settings.micro_batch, clf.threads, clf.spinning)


def bench_reference(checkpoint: Path, texts: list[str]) -> dict[str, Any]:
    """transformers pipeline() on PyTorch fp32: one text per call, then batch_size=32."""
    import torch
    from transformers import pipeline

    torch.set_num_threads(os.cpu_count() or 1)
    pipe = pipeline(
        "text-classification", model=str(checkpoint), tokenizer=str(checkpoint), device=-1
    )
    pipe(texts[:8], truncation=True)  # warm-up
    started = time.perf_counter()
    for text in texts:
        pipe(text, truncation=True)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    pipe(texts, batch_size=32, truncation=True)
    batched = time.perf_counter() - started
    return {
        "texts": len(texts),
        "seconds": round(seconds, 3),
        "texts_per_second": round(len(texts) / seconds, 1),
        "batch32_texts_per_second": round(len(texts) / batched, 1),
        "how": "transformers pipeline(), PyTorch fp32, one text per call (and batch_size=32)",
        "torch": torch.__version__,
    }


def _bench_settings(base: Settings) -> Settings:
    suffix = uuid.uuid4().hex[:8]
    return base.model_copy(
        update={
            "topic_posts": f"bench.posts-{suffix}",
            "topic_scored": f"bench.scored-{suffix}",
            "topic_dlq": f"bench.dlq-{suffix}",
            "topic_alerts": f"bench.alerts-{suffix}",
            "topic_brand_sentiment": f"bench.brand-{suffix}",
            "app_id": f"brandmon-bench-{suffix}",
        }
    )


def _worker_env(settings: Settings, port: int) -> dict[str, str]:
    env = {
        "BRANDMON_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "BRANDMON_TOPIC_POSTS": settings.topic_posts,
        "BRANDMON_TOPIC_SCORED": settings.topic_scored,
        "BRANDMON_TOPIC_DLQ": settings.topic_dlq,
        "BRANDMON_TOPIC_ALERTS": settings.topic_alerts,
        "BRANDMON_TOPIC_BRAND_SENTIMENT": settings.topic_brand_sentiment,
        "BRANDMON_APP_ID": settings.app_id,
        "BRANDMON_MAX_BATCH": str(settings.max_batch),
        "BRANDMON_MAX_WAIT": str(settings.max_wait),
        "BRANDMON_MAX_BATCH_SECONDS": str(settings.max_batch_seconds),
        "BRANDMON_ORT_SPINNING": str(settings.ort_spinning).lower(),
        "BRANDMON_MODEL_PATH": str(settings.resolved_model_path),
        "BRANDMON_MODEL_VARIANT": settings.model_variant,
        "BRANDMON_ORT_THREADS": str(settings.ort_threads),
        "BRANDMON_MICRO_BATCH": str(settings.micro_batch),
        "BRANDMON_WEB_PORT": str(port),
        "BRANDMON_DATA_DIR": f"/tmp/brandmon-bench-{settings.app_id}",
        "BRANDMON_LOG_LEVEL": "WARNING",
    }
    return env


class BenchWorker:
    """A `brandmon worker` child process scraped over HTTP."""

    def __init__(self, settings: Settings) -> None:
        import subprocess
        import sys

        from brandmon.broker import free_port

        self.port = free_port()
        self.log = Path(f"/tmp/brandmon-bench-worker-{self.port}.log")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "brandmon.cli", "worker"],
            env={**os.environ, **_worker_env(settings, self.port)},
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 120) -> None:
        from brandmon.web import wait_ready

        wait_ready(self.proc, self.port, self.log, timeout)

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        import httpx
        from prometheus_client.parser import text_string_to_metric_families

        body = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(body)
            for s in f.samples
        }

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def _posts(texts: list[str], run: str) -> list[dict[str, Any]]:
    brands = ("acme", "globex", "initech", "umbrella")
    now = time.time()
    return [
        {"id": f"{run}-{i}", "text": t, "brand": brands[i % len(brands)], "created_at": now}
        for i, t in enumerate(texts)
    ]


def _run_phase(
    settings: Settings, texts: list[str], rate: float | None, run: str, timeout: float
) -> dict[str, Any]:
    """Produce `texts` as posts (at `rate`/s, or all at once) and time them out of posts.scored."""
    from brandmon.tools.producers import Pacer

    posts = _posts(texts, run)
    produced_at: dict[str, float] = {}
    producer = JsonProducer(settings, **{"linger.ms": 1})
    pacer = Pacer(rate)
    first = time.time()
    for index, item in enumerate(posts):
        pacer.wait(index)
        produced_at[item["id"]] = time.time()
        producer.send(settings.topic_posts, item, key=item["brand"])
    producer.flush()
    produce_seconds = time.time() - first
    latencies: list[float] = []
    last = first
    for record in consume(settings, [settings.topic_scored], timeout=timeout):
        out = json.loads(record.value or b"{}")
        if out.get("id") in produced_at:
            sent = produced_at.pop(out["id"])
            latencies.append(record.timestamp_ms / 1000 - sent)
            last = max(last, record.timestamp_ms / 1000)
        if not produced_at:
            break
    seconds = last - first
    return {
        "posts": len(posts),
        "scored": len(latencies),
        "missing": len(produced_at),
        "seconds": round(seconds, 3),
        "produce_seconds": round(produce_seconds, 3),
        "posts_per_second": round(len(latencies) / seconds, 1) if seconds > 0 else None,
        "latency_seconds": percentiles(latencies),
    }


def _batch_stats(before: dict[Any, float], after: dict[Any, float]) -> dict[str, Any]:
    def delta(name: str, labels: tuple[tuple[str, str], ...] = ()) -> float:
        return after.get((name, labels), 0.0) - before.get((name, labels), 0.0)

    count = delta("brandmon_batch_size_count")
    buckets = sorted(
        {dict(k[1])["le"] for k in after if k[0] == "brandmon_batch_size_bucket"},
        key=lambda le: float(le),
    )
    cumulative = {le: delta("brandmon_batch_size_bucket", (("le", le),)) for le in buckets}
    histogram, previous = {}, 0.0
    for le in buckets:
        histogram[f"<={le}"] = int(cumulative[le] - previous)
        previous = cumulative[le]
    infer_count = delta("brandmon_inference_seconds_count")
    stages = {}
    for stage in SCORE_STAGES:
        label = (("stage", stage),)
        batches = delta("brandmon_batch_stage_seconds_count", label)
        if batches:
            stages[stage] = round(delta("brandmon_batch_stage_seconds_sum", label) / batches, 5)
    return {
        "stage_seconds_per_batch": stages,
        "batches": int(count),
        "mean_batch_size": round(delta("brandmon_batch_size_sum") / count, 1) if count else None,
        "batch_size_histogram": {k: v for k, v in histogram.items() if v},
        "mean_batch_inference_seconds": round(
            delta("brandmon_inference_seconds_sum") / infer_count, 4
        )
        if infer_count
        else None,
    }


def bench_end_to_end(settings: Settings, texts: list[str], half_rate_posts: int) -> dict[str, Any]:
    settings = _bench_settings(settings)
    ensure_topics(settings, [settings.topic_posts, settings.topic_scored, settings.topic_dlq])
    worker = BenchWorker(settings)
    try:
        worker.wait_ready()
        warm = _run_phase(settings, texts[:200], None, "warm", timeout=120)
        if warm["missing"]:
            raise RuntimeError(f"warm-up lost posts: {warm}")
        before = worker.samples()
        full = _run_phase(settings, texts, None, "full", timeout=600)
        full |= _batch_stats(before, worker.samples())
        rate = (full["posts_per_second"] or 1) / 2
        before = worker.samples()
        half = _run_phase(settings, texts[:half_rate_posts], rate, "half", timeout=600)
        half |= _batch_stats(before, worker.samples())
        half["rate"] = round(rate, 1)
        latency = half["latency_seconds"]
        half["latency_targets"] = {"p99": TARGET_P99_SECONDS, "p50": TARGET_P50_SECONDS}
        half["meets_latency_targets"] = bool(
            latency
            and latency["p99"] <= TARGET_P99_SECONDS
            and latency["p50"] <= TARGET_P50_SECONDS
        )
        return {"end_to_end": full, "half_rate": half}
    finally:
        worker.stop()


def bench_scale_out(
    settings: Settings, texts: list[str], worker_counts: Sequence[int]
) -> dict[str, Any]:
    """Throughput at full rate with 1, 2, ... workers of one group sharing the posts topic's
    partitions (`topic_partitions`), each worker with cores / workers ONNX Runtime threads
    (unless BRANDMON_ORT_THREADS is set), so the workers share the cores instead of
    oversubscribing them."""
    cores = os.cpu_count() or 1
    runs: dict[str, Any] = {}
    for count in worker_counts:
        threads = settings.ort_threads or max(1, cores // count)
        run = _bench_settings(settings).model_copy(update={"ort_threads": threads})
        ensure_topics(run, [run.topic_posts, run.topic_scored, run.topic_dlq])
        workers = [BenchWorker(run) for _ in range(count)]
        try:
            for worker in workers:
                worker.wait_ready()
            warm = _run_phase(run, texts[:200], None, f"warm{count}", timeout=120)
            if warm["missing"]:
                raise RuntimeError(f"warm-up of {count} workers lost posts: {warm}")
            full = _run_phase(run, texts, None, f"scale{count}", timeout=600)
        finally:
            for worker in workers:
                worker.stop()
        runs[str(count)] = {
            "workers": count,
            "ort_threads_per_worker": threads,
            "partitions": run.topic_partitions,
            "posts_per_second": full["posts_per_second"],
            "missing": full["missing"],
            "latency_seconds": full["latency_seconds"],
        }
    base = runs[str(worker_counts[0])]["posts_per_second"]
    for entry in runs.values():
        rate = entry["posts_per_second"]
        entry["speedup"] = round(rate / base, 2) if rate and base else None
    return {"cores": cores, "runs": runs}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnxruntime

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        # other processes change every figure: the load says how busy the machine was
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "platform": platform.platform(),
    }


def run_bench(
    settings: Settings,
    texts: list[str],
    reference: Path | None,
    reference_texts: int,
    half_rate_posts: int,
    *,
    repeats: int = 1,
    classifier_only: bool = False,
    scale_out: Sequence[int] = (),
) -> dict[str, Any]:
    """Every phase's figures as one JSON-able dict (see the module docstring)."""
    result: dict[str, Any] = {
        "machine": machine(),
        "settings": {
            "max_batch": settings.max_batch,
            "max_batch_seconds": settings.max_batch_seconds,
            "max_wait": settings.max_wait,
            "micro_batch": settings.micro_batch,
            "ort_threads": settings.ort_threads,
            "ort_spinning": settings.ort_spinning,
        },
    }
    result["classifier"] = bench_classifier(settings, texts, repeats)
    result["language"] = bench_language(settings, texts, repeats)
    result["ceiling"] = bench_ceiling(settings, result["classifier"]["mean_tokens"])
    if reference is not None:
        result["reference"] = bench_reference(reference, texts[:reference_texts])
    if not classifier_only:
        result |= bench_end_to_end(settings, texts, half_rate_posts)
    if scale_out and not classifier_only:
        result["scale_out"] = bench_scale_out(settings, texts, scale_out)
    result["ratios"] = ratios(result)
    return result


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    """Every ratio the targets name, from one run's figures, with whether each is met."""
    out: dict[str, Any] = {}
    classifier = result["classifier"]["texts_per_second"]
    ceiling = result.get("ceiling", {})
    int8 = ceiling.get("int8_texts_per_second")
    if int8:
        out["classifier_vs_int8_ceiling"] = round(classifier / int8, 3)
        out["meets_classifier_vs_int8_ceiling"] = classifier / int8 >= TARGET_VS_INT8_CEILING
    language = result.get("language", {}).get("texts_per_second")
    if language:
        # the classifier's throughput once each post is also identified first (same thread)
        out["classifier_with_language_vs_classifier"] = round(1 / (1 + classifier / language), 3)
    if ceiling.get("fp32_texts_per_second"):
        out["classifier_vs_fp32_ceiling"] = round(classifier / ceiling["fp32_texts_per_second"], 3)
    if "end_to_end" not in result:
        return out
    e2e = result["end_to_end"]["posts_per_second"] or 0
    out["end_to_end_vs_classifier"] = round(e2e / classifier, 3)
    out["meets_end_to_end_vs_classifier"] = e2e / classifier >= TARGET_VS_CLASSIFIER
    if int8:
        out["end_to_end_vs_int8_ceiling"] = round(e2e / int8, 3)
    if "reference" in result:
        reference = result["reference"]["texts_per_second"]
        out["end_to_end_vs_reference"] = round(e2e / reference, 2)
        out["meets_end_to_end_vs_reference"] = e2e / reference >= TARGET_VS_REFERENCE
    return out
