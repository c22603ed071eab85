"""The model commands of `brandmon`: export, train, evaluate and compare.

Only typer and the standard library are imported here; torch, transformers and optimum are
imported inside the commands, so `brandmon --help` and the stream never need them. Every
expected failure (bad option, missing checkpoint, failed validation) ends with a one-paragraph
message and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Annotated

import typer

from brandmon.model_export.labeling.commands import app as label_app

#: Exit code for a failed export validation (typer itself uses 2 for bad options).
EXIT_FAILED = 1
EXIT_USAGE = 2
QUANTIZE_CHOICES = ("auto", "avx512_vnni", "avx2", "none")


def _fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def _setup_logging(verbose: bool) -> None:
    """Our own messages at INFO (DEBUG with -v); other libraries' only from WARNING up."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("brandmon.model_export").setLevel(logging.DEBUG if verbose else logging.INFO)


def _require_file(path: Path | None, option: str) -> None:
    if path is not None and not path.is_file():
        raise typer.BadParameter(f"{path} does not exist or is not a file", param_hint=option)


# ---------------------------------------------------------------------------------- export


def export_command(
    checkpoint: Annotated[
        str,
        typer.Argument(
            help="A sequence-classification checkpoint: a local folder (config.json, weights, "
            "tokenizer) or a Hugging Face hub id (only where the hub is reachable)."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write (ONNX files, tokenizer, manifest).")
    ] = Path("out/model"),
    name: Annotated[
        str | None,
        typer.Option(help="Model name in the manifest [default: the --out folder name]."),
    ] = None,
    version: Annotated[str, typer.Option(help="Model version in the manifest.")] = "0.1.0",
    label_map: Annotated[
        str | None,
        typer.Option(
            "--label-map",
            help="Override the label canon, e.g. 'LABEL_0=negative,LABEL_1=positive'. "
            "Targets: negative, neutral, positive.",
        ),
    ] = None,
    max_length: Annotated[
        int, typer.Option(min=8, max=4096, help="Tokens per text the stream keeps (truncation).")
    ] = 128,
    opset: Annotated[int, typer.Option(min=14, help="ONNX opset.")] = 18,
    quantize: Annotated[
        str,
        typer.Option(
            help="Int8 kernels: 'auto' probes /proc/cpuinfo; or avx512_vnni, avx2, "
            "or none (no int8 model)."
        ),
    ] = "auto",
    fp16: Annotated[
        bool, typer.Option("--fp16/--no-fp16", help="Also write model.fp16.onnx (for GPU).")
    ] = False,
    atol: Annotated[
        float, typer.Option(min=0.0, help="Largest allowed |fp32 ONNX - PyTorch| logit difference.")
    ] = 1e-4,
    min_agreement: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="Least share of sample texts where int8 and fp32 agree."
        ),
    ] = 0.97,
    max_drop: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Most accuracy or macro-recall int8 may lose on --labelled (0.01 = 1 point).",
        ),
    ] = 0.01,
    sample: Annotated[
        Path | None,
        typer.Option(
            help="JSONL (text field) or plain-text file of validation texts "
            "[default: built-in sentences]."
        ),
    ] = None,
    sample_size: Annotated[int, typer.Option(min=1, help="Most sample texts used.")] = 1000,
    labelled: Annotated[
        Path | None,
        typer.Option(help="Labelled JSONL (text, label): int8 may lose at most --max-drop on it."),
    ] = None,
    labelled_size: Annotated[int, typer.Option(min=1, help="Most labelled rows used.")] = 2000,
    ship: Annotated[
        bool,
        typer.Option(
            "--ship/--no-ship",
            help="Keep only the int8 model in the folder and the manifest, as committed "
            "under models/ (model.onnx is deleted after validation).",
        ),
    ] = False,
    fuse: Annotated[
        bool,
        typer.Option(
            "--fuse/--no-fuse",
            help="Rewrite the fp32 graph with ONNX Runtime's transformer optimizer "
            "(attention, layer-norm and GELU fusions; BERT-family models) before int8 "
            "quantization; the fused graph must pass the same checks (--atol, "
            "--min-agreement, --max-drop). Off by default: on 2 AVX2 cores the fused int8 "
            "dim-384 model ran 7% slower (239 vs 250 texts/s) and fused fp32 no faster "
            "(docs/benchmarks.md).",
        ),
    ] = False,
    languages: Annotated[
        str,
        typer.Option(
            help="Languages the model reads, comma-separated ISO 639-1 codes (e.g. 'fr' or "
            "'en,de'); the score worker routes only posts in these languages to it.",
        ),
    ] = "en",
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Export a checkpoint to a validated brandmon ONNX model folder (fp32, int8, optional fp16)."""
    _setup_logging(verbose)
    from brandmon.model_export.errors import ExportError
    from brandmon.model_export.export import ExportOptions, export_model
    from brandmon.model_export.labels import parse_label_map

    try:
        overrides = parse_label_map(label_map) if label_map else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--label-map") from exc
    if quantize not in QUANTIZE_CHOICES:
        raise typer.BadParameter(
            f"use one of {', '.join(QUANTIZE_CHOICES)}", param_hint="--quantize"
        )
    if ship and quantize == "none":
        raise typer.BadParameter("--ship keeps only the int8 model; drop --quantize none")
    _require_file(sample, "--sample")
    _require_file(labelled, "--labelled")
    codes = tuple(dict.fromkeys(code.strip().lower() for code in languages.split(",")))
    if not codes or not all(re.fullmatch("[a-z]{2,3}", code) for code in codes):
        raise typer.BadParameter(
            f"{languages!r} is not a list of language codes: write ISO 639-1 codes separated "
            "by commas, e.g. --languages en or --languages fr,de",
            param_hint="--languages",
        )
    options = ExportOptions(
        name=name,
        version=version,
        label_map=overrides,
        max_length=max_length,
        opset=opset,
        quantize=quantize,
        fp16=fp16,
        atol=atol,
        min_agreement=min_agreement,
        max_drop=max_drop,
        sample_file=sample,
        sample_size=sample_size,
        labelled_file=labelled,
        labelled_size=labelled_size,
        ship=ship,
        fuse=fuse,
        languages=codes,
    )
    try:
        manifest = export_model(checkpoint, out, options)
    except ExportError as exc:
        raise _fail(f"{type(exc).__name__}: {exc}") from exc
    typer.secho(
        f"exported {manifest.model_id} to {out} (variants: {', '.join(manifest.variants)})",
        fg=typer.colors.GREEN,
    )


# ---------------------------------------------------------------------------------- train


def train_command(
    train: Annotated[
        list[Path],
        typer.Option(
            "--train",
            "-t",
            help="Training JSONL (text, label); repeat for more files. "
            "Files without neutral rows are used as negative-vs-positive data.",
        ),
    ],
    val: Annotated[
        list[Path],
        typer.Option(
            "--val", help="Validation JSONL for early stopping; repeatable. Never a test set."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Checkpoint folder (best/, epoch-N/, summary).")
    ] = Path("checkpoints/brandmon-sentiment-minilm"),
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the 3-class data.")] = 2,
    lr: Annotated[
        float, typer.Option(min=0.0, help="Peak learning rate (linear warm-up, linear decay).")
    ] = 6e-5,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    max_length: Annotated[int, typer.Option(min=8, help="Tokens per text while training.")] = 64,
    binary_per_epoch: Annotated[
        int, typer.Option(min=0, help="Negative/positive-only rows mixed into each epoch.")
    ] = 20000,
    binary_min_words: Annotated[
        int, typer.Option(min=1, help="Drop negative/positive-only rows shorter than this.")
    ] = 3,
    balance_classes: Annotated[
        bool, typer.Option("--balance/--no-balance", help="Inverse-frequency class weights.")
    ] = True,
    seed: Annotated[int, typer.Option()] = 13,
    max_minutes: Annotated[
        float,
        typer.Option(min=1.0, help="Time budget: the schedule is shortened to end within it."),
    ] = 60.0,
    threads: Annotated[int, typer.Option(min=0, help="Torch threads; 0 = default.")] = 0,
    init: Annotated[
        Path | None,
        typer.Option(
            help="Continue from this checkpoint (a previous run's best/) instead of "
            "the MiniLM weights."
        ),
    ] = None,
    warmup: Annotated[float, typer.Option(min=0.0, max=0.5, help="Warm-up share of steps.")] = 0.06,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Fine-tune the default 3-class sentiment model (DistilBERT from all-MiniLM-L6-v2)."""
    _setup_logging(verbose)
    # Before torch loads: OpenMP threads that spin at barriers collapse when other processes
    # share the cores (measured here: 16 s/step spinning vs 2 s/step passive on a busy box).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from brandmon.model_export.data import DataFileError
    from brandmon.model_export.train import TrainConfig, TrainDataError
    from brandmon.model_export.train import train as run_training

    for path in [*train, *val]:
        _require_file(path, "--train/--val")
    if init is not None and not (init / "config.json").is_file():
        raise typer.BadParameter(f"{init} is not a checkpoint folder", param_hint="--init")
    cfg = TrainConfig(
        train_files=train,
        val_files=val,
        out_dir=out,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        max_length=max_length,
        binary_per_epoch=binary_per_epoch,
        balance_classes=balance_classes,
        seed=seed,
        max_minutes=max_minutes,
        threads=threads,
        init=init,
        warmup=warmup,
        binary_min_words=binary_min_words,
    )
    try:
        summary = run_training(cfg)
    except (DataFileError, TrainDataError) as exc:
        raise _fail(str(exc), EXIT_USAGE) from exc
    typer.echo(
        f"best validation score {summary['best_score']:.4f} after {summary['minutes']} min "
        f"({summary['stop_reason']}); checkpoint {summary['best_checkpoint']}"
    )


# ---------------------------------------------------------------------------------- evaluate


def evaluate_command(
    model: Annotated[
        Path, typer.Option("--model", "-m", help="Model folder made by `brandmon export`.")
    ],
    data: Annotated[
        Path, typer.Option("--data", "-d", help="Labelled JSONL: one {text, label} per line.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON only.")] = False,
    png: Annotated[
        Path | None, typer.Option("--png", help="Also save the confusion matrix as this PNG.")
    ] = None,
    variant: Annotated[str, typer.Option(help="ONNX variant: auto, int8, fp32 or fp16.")] = "auto",
    threads: Annotated[
        int, typer.Option(min=0, help="ONNX Runtime threads; 0 = one per core.")
    ] = 0,
    micro_batch: Annotated[int, typer.Option(min=1, help="Texts per ONNX Runtime call.")] = 32,
    limit: Annotated[int | None, typer.Option(min=1, help="Score only the first N rows.")] = None,
) -> None:
    """Score an exported model on a labelled file: accuracy, macro-F1/recall, confusion, speed."""
    import json

    from brandmon.contracts.manifest import ManifestError
    from brandmon.model_export.data import DataFileError
    from brandmon.model_export.evaluate import evaluate_model, render, save_confusion_png
    from brandmon.stream.classifier import load_classifier

    if variant not in {"auto", "int8", "fp32", "fp16"}:
        raise typer.BadParameter("use auto, int8, fp32 or fp16", param_hint="--variant")
    _require_file(data, "--data")
    try:
        # the classifier the score worker runs, so the figures are the stream's
        classifier = load_classifier(
            model, variant=variant, threads=threads, micro_batch=micro_batch
        )
        report = evaluate_model(
            classifier,
            data,
            model_labels=classifier.manifest.canonical_labels,
            variant_file=classifier.model_file.name,
            limit=limit,
        )
    except (ManifestError, DataFileError) as exc:
        raise _fail(str(exc), EXIT_USAGE) from exc
    if png is not None:
        save_confusion_png(report, png)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        render(report)


# ---------------------------------------------------------------------------------- compare


def _require_model_folder(folder: Path, which: str) -> None:
    """A clear usage error unless `folder` holds a manifest (then the loader checks the rest)."""
    from brandmon.contracts.manifest import MANIFEST_NAME

    if not folder.is_dir():
        raise typer.BadParameter(
            f"{folder} is not a folder: give a model folder made by `brandmon export`",
            param_hint=which,
        )
    if not (folder / MANIFEST_NAME).is_file():
        raise typer.BadParameter(
            f"{folder} has no {MANIFEST_NAME}: it is not a model folder made by `brandmon export`",
            param_hint=which,
        )


def compare_command(
    old: Annotated[
        Path,
        typer.Argument(metavar="OLD", help="The model in use: a folder made by `brandmon export`."),
    ],
    new: Annotated[Path, typer.Argument(metavar="NEW", help="The candidate model folder.")],
    data: Annotated[
        list[Path],
        typer.Option("--data", "-d", help="Labelled JSONL ({text, label}); repeat for more files."),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the comparison as JSON only.")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write report.md, compare.json and confusion PNGs here."),
    ] = None,
    resamples: Annotated[int, typer.Option(min=100, help="Bootstrap resamples.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap resampling.")] = 13,
    confidence: Annotated[
        float, typer.Option(min=0.5, max=0.999, help="Confidence level of the intervals.")
    ] = 0.95,
    alpha: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="McNemar p-value below which a split counts.")
    ] = 0.05,
    max_recall_drop: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="Most a class's recall may drop for 'promote' (0.02 = 2 points)."
        ),
    ] = 0.02,
    examples: Annotated[int, typer.Option(min=0, help="Disagreeing rows shown per file.")] = 20,
    variant: Annotated[
        str, typer.Option(help="ONNX variant of both: auto, int8, fp32, fp16.")
    ] = "auto",
    threads: Annotated[
        int, typer.Option(min=0, help="ONNX Runtime threads; 0 = one per core.")
    ] = 0,
    micro_batch: Annotated[int, typer.Option(min=1, help="Texts per ONNX Runtime call.")] = 32,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Use only the first N rows of each file.")
    ] = None,
) -> None:
    """Compare two exported models on the same labelled rows: figures with paired bootstrap
    intervals, an exact McNemar test, their disagreements and a promote/keep recommendation."""
    import json

    from brandmon.contracts.manifest import ManifestError
    from brandmon.model_export.compare import (
        CompareError,
        CompareOptions,
        ModelSide,
        Thresholds,
        compare_models,
        render_terminal,
        write_report,
    )
    from brandmon.model_export.data import DataFileError
    from brandmon.stream.classifier import load_classifier

    if variant not in {"auto", "int8", "fp32", "fp16"}:
        raise typer.BadParameter("use auto, int8, fp32 or fp16", param_hint="--variant")
    for path in data:
        _require_file(path, "--data")
    sides = []
    for folder, which in ((old, "OLD"), (new, "NEW")):
        _require_model_folder(folder, which)
        try:  # the classifier the score worker runs, as `brandmon evaluate` does
            classifier = load_classifier(
                folder, variant=variant, threads=threads, micro_batch=micro_batch
            )
        except ManifestError as exc:
            raise _fail(f"{which} model: {exc}", EXIT_USAGE) from exc
        labels = classifier.manifest.canonical_labels
        sides.append(ModelSide(classifier, labels, classifier.model_file.name))
    options = CompareOptions(
        resamples, seed, confidence, examples, limit, Thresholds(alpha, max_recall_drop)
    )
    try:
        comparison = compare_models(sides[0], sides[1], data, options)
    except (CompareError, DataFileError) as exc:
        raise _fail(str(exc), EXIT_USAGE) from exc
    if report is not None:
        path = write_report(comparison, report)
        if not as_json:
            typer.echo(f"report written to {path}", err=True)
    if as_json:
        typer.echo(json.dumps(comparison.as_dict(), indent=2))
    else:
        render_terminal(comparison)


def register(app: typer.Typer) -> None:
    """Add the model commands to the `brandmon` app."""
    app.command("export")(export_command)
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    app.command("compare")(compare_command)
    app.add_typer(label_app, name="label")
