"""Speed of the classifier alone (no Kafka), against transformers `pipeline()` in the same run.

    python -m model_export.speed --model models/brandmon-sentiment-minilm \\
        --data ../shared/data/tweeteval_sentiment/test.jsonl --texts 2000 \\
        [--reference CHECKPOINT_DIR]

Prints JSON: texts/s of the ONNX classifier as the stream loads it (best and median of
--repeats passes over the same texts), the mean token count, and, with --reference, the
PyTorch pipeline() figures (one text per call, and batch_size=32) on a sample. This is a
benchmark, not a test: other processes on the machine change the figures.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Annotated, Any

import typer


def read_texts(path: Path, count: int) -> list[str]:
    texts: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                texts.append(json.loads(line)["text"])
            if len(texts) >= count:
                break
    return texts


def time_classifier(
    model: Path, texts: list[str], repeats: int, threads: int, micro_batch: int
) -> dict[str, Any]:
    """texts/s of stream.classifier's OnnxClassifier over `texts`, `repeats` times."""
    from stream.classifier import load_classifier

    clf = load_classifier(model, threads=threads, micro_batch=micro_batch)
    clf.predict_proba(texts[:64])  # warm-up: first calls allocate
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        clf.predict_proba(texts)
        rates.append(len(texts) / (time.perf_counter() - started))
    tokens = [len(e.ids) for e in clf._tokenizer.encode_batch(texts)]
    return {
        "file": clf.model_file.name,
        "micro_batch": micro_batch,
        "threads": threads or os.cpu_count(),
        "texts_per_second_best": round(max(rates), 1),
        "texts_per_second_median": round(statistics.median(rates), 1),
        "mean_tokens": round(sum(tokens) / len(tokens), 1),
    }


def time_pipeline(checkpoint: Path, texts: list[str]) -> dict[str, Any]:
    """transformers pipeline() on PyTorch: one text per call, then batch_size=32."""
    from transformers import pipeline

    pipe = pipeline("text-classification", model=str(checkpoint), device=-1)
    pipe(texts[:8])
    started = time.perf_counter()
    for text in texts:
        pipe(text)
    single = len(texts) / (time.perf_counter() - started)
    started = time.perf_counter()
    pipe(texts, batch_size=32)
    batched = len(texts) / (time.perf_counter() - started)
    return {
        "texts": len(texts),
        "one_per_call_texts_per_second": round(single, 1),
        "batch32_texts_per_second": round(batched, 1),
    }


def main(
    model: Annotated[Path, typer.Option(help="Model folder (manifest.json).")],
    data: Annotated[Path, typer.Option(help="JSONL with a text field.")],
    texts: Annotated[int, typer.Option(min=1, help="Texts per pass.")] = 2000,
    repeats: Annotated[int, typer.Option(min=1, help="Passes; best and median reported.")] = 3,
    threads: Annotated[int, typer.Option(min=0, help="ORT threads; 0 = one per core.")] = 0,
    micro_batch: Annotated[int, typer.Option(min=1)] = 32,
    reference: Annotated[
        Path | None, typer.Option(help="PyTorch checkpoint folder for the pipeline() reference.")
    ] = None,
    reference_texts: Annotated[int, typer.Option(min=1)] = 300,
) -> None:
    """Texts per second of the ONNX classifier alone (and of pipeline() for reference)."""
    sample = read_texts(data, texts)
    result: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "load_average": os.getloadavg(),
        },
        "classifier": time_classifier(model, sample, repeats, threads, micro_batch),
    }
    if reference is not None:
        result["pipeline_reference"] = time_pipeline(reference, sample[:reference_texts])
    typer.echo(json.dumps(result, indent=2))


if __name__ == "__main__":
    typer.run(main)
