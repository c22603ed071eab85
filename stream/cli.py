"""Commands for producers, analysts and operators: kafka, worker, produce, simulate, consume,
demo and bench. Heavy imports happen inside the commands."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from brandmon.settings import Settings

kafka_app = typer.Typer(
    help="Run a local single-node Kafka broker (no Docker needed).", no_args_is_help=True
)

HomeOpt = Annotated[Path, typer.Option(help="Folder for the broker's data, config and logs.")]
PortOpt = Annotated[int, typer.Option(help="Port the broker listens on (loopback).")]


def _settings() -> Settings:
    """The settings; exits 2 naming the bad variable (never a secret) when invalid."""
    from brandmon.settings import load_settings

    return load_settings()


def _require_broker(settings: Settings) -> None:
    """Exit 1 with a message naming the servers when no broker answers."""
    from brandmon.kafka_io import BrokerUnreachableError, check_broker

    try:
        check_broker(settings)
    except BrokerUnreachableError as exc:
        raise _fail(str(exc)) from exc


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(code)


VersionOpt = Annotated[
    str | None,
    typer.Option(
        "--version",
        help="Kafka release: 3.9.2 when not given, 4.x for the pinned Kafka 4 release, or an "
        "exact 3.x/4.x version that Maven Central serves.",
        show_default=False,
    ),
]


@kafka_app.command("start")
def kafka_start(
    home: HomeOpt = Path(".brandmon/kafka"), port: PortOpt = 9092, version: VersionOpt = None
) -> None:
    """Fetch Kafka from Maven Central (once per version), start it, and wait until it answers."""
    from brandmon.broker import KAFKA_VERSION, BrokerError, LocalBroker

    try:
        broker = LocalBroker(home=home, port=port, version=version or KAFKA_VERSION)
        broker.start()
    except BrokerError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"Kafka {broker.version} is up at {broker.bootstrap} (logs: {broker.log_file})")


@kafka_app.command("stop")
def kafka_stop(home: HomeOpt = Path(".brandmon/kafka")) -> None:
    """Stop the local broker started from HOME."""
    from brandmon.broker import LocalBroker

    stopped = LocalBroker(home=home).stop()
    typer.echo("Kafka stopped" if stopped else f"no broker was running from {home}")


@kafka_app.command("status")
def kafka_status(home: HomeOpt = Path(".brandmon/kafka"), port: PortOpt = 9092) -> None:
    """Say whether the local broker is running; exit 1 when it is not."""
    from brandmon.broker import LocalBroker

    broker = LocalBroker(home=home, port=port)
    if broker.running():
        version = broker.formatted_version() or "unknown"
        typer.echo(
            f"running: Kafka {version}, pid {broker.pid()}, {broker.bootstrap}, "
            f"logs {broker.log_file}"
        )
        return
    raise _fail(f"not running (home {home}, port {port})")


def worker() -> None:
    """Run the score worker: posts -> posts.scored (and posts.dlq), until SIGTERM.

    The alert aggregator is a separate process: `brandmon alerts worker`. Exits 65 when the
    model folder fails its start-up check, 2 on invalid settings, 1 when no broker answers.

    Configured by BRANDMON_* variables (see README): BRANDMON_BOOTSTRAP_SERVERS,
    BRANDMON_MODEL_PATH, BRANDMON_EXECUTION_PROVIDER, BRANDMON_MAX_BATCH, ...
    """
    import logging

    from brandmon.contracts.manifest import ManifestError
    from brandmon.kafka_io import BrokerUnreachableError
    from brandmon.stream.classifier import ProviderUnavailableError
    from brandmon.stream.rollout import ModelFolderError
    from brandmon.stream.routing import RegistryError
    from brandmon.stream.worker import EXIT_BAD_MODEL, run_worker

    settings = _settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        run_worker(settings)
    except (ModelFolderError, ManifestError, RegistryError) as exc:
        # one line, whatever the library under the check wrote
        message = " ".join(str(exc).split())
        raise _fail(f"brandmon worker cannot start: {message}", EXIT_BAD_MODEL) from exc
    except (ProviderUnavailableError, BrokerUnreachableError) as exc:
        raise _fail(f"brandmon worker cannot start: {exc}") from exc


def produce(
    file: Annotated[
        Path,
        typer.Argument(
            help="JSONL (one post per line) or CSV file.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    fmt: Annotated[
        str, typer.Option("--format", help="jsonl, csv or auto (by extension).")
    ] = "auto",
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--map", help="CSV only: FIELD=COLUMN, e.g. --map text=body --map id=tweet_id."
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            help="Posts per second (default: as fast as the broker takes them).", min=0.001
        ),
    ] = None,
    topic: Annotated[
        str | None, typer.Option(help="Topic (default: BRANDMON_TOPIC_POSTS).")
    ] = None,
) -> None:
    """Send posts from a file to the posts topic, key = brand.

    Every line is sent: lines that are not valid posts are reported here and will be
    dead-lettered by the worker with their reason.
    """
    from rich.progress import Progress

    from brandmon.kafka_io import DeliveryError, JsonProducer
    from brandmon.tools.producers import Pacer, parse_column_map, read_posts

    if fmt not in {"auto", "jsonl", "csv"}:
        raise typer.BadParameter("use jsonl, csv or auto", param_hint="--format")
    try:
        mapping = parse_column_map(column or [])
        lines = list(read_posts(file, fmt, mapping))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    settings = _settings()
    target = topic or settings.topic_posts
    _require_broker(settings)
    producer = JsonProducer(settings)
    pacer = Pacer(rate)
    with Progress(transient=True) as progress:
        task = progress.add_task(f"producing to {target}", total=len(lines))
        for index, line in enumerate(lines):
            pacer.wait(index)
            producer.send(target, line.value, key=line.key)
            progress.advance(task)
    try:
        sent = producer.flush()
    except DeliveryError as exc:
        raise _fail(str(exc)) from exc
    bad = [line for line in lines if line.problem]
    typer.echo(f"sent {sent} records to {target}")
    if bad:
        typer.secho(
            f"{len(bad)} of them are not valid posts and will go to {settings.topic_dlq}:",
            fg="yellow",
            err=True,
        )
        for line in bad[:10]:
            typer.echo(f"  line {line.number}: {line.problem}", err=True)


def simulate(
    rate: Annotated[
        float, typer.Option(help="Posts per second, over all brands.", min=0.001)
    ] = 20.0,
    count: Annotated[
        int | None,
        typer.Option(help="Stop after this many posts (default: run until Ctrl-C).", min=1),
    ] = None,
    brands: Annotated[
        str, typer.Option(help="Comma-separated brand names.")
    ] = "acme,globex,initech",
    negative_share: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.1,
    spike_brand: Annotated[
        str | None, typer.Option(help="Brand that gets a negative spike.")
    ] = None,
    spike_start: Annotated[float, typer.Option(help="Seconds after start.", min=0)] = 60.0,
    spike_duration: Annotated[float, typer.Option(help="Seconds.", min=0)] = 300.0,
    spike_share: Annotated[
        float, typer.Option(help="Negative share during the spike.", min=0.0, max=1.0)
    ] = 0.6,
    seed: int = 7,
    dry_run: Annotated[bool, typer.Option(help="Print posts as JSON lines, send nothing.")] = False,
    fast: Annotated[
        bool,
        typer.Option(
            help="Send as fast as possible; event times still advance at --rate from now."
        ),
    ] = False,
) -> None:
    """Generate synthetic posts for several brands, optionally with a negative spike."""
    from brandmon.tools.simulate import PostSimulator, SimulationConfig, Spike

    names = [b.strip() for b in brands.split(",") if b.strip()]
    if not names:
        raise typer.BadParameter("give at least one brand", param_hint="--brands")
    if spike_brand is not None and spike_brand not in names:
        raise typer.BadParameter(
            f"{spike_brand!r} is not one of --brands {names}", param_hint="--spike-brand"
        )
    spike = Spike(spike_brand, spike_start, spike_duration, spike_share) if spike_brand else None
    config = SimulationConfig(brands=names, rate=rate, negative_share=negative_share, spike=spike)
    sim = PostSimulator(config, start=datetime.now(UTC), seed=seed)
    if dry_run:
        for post in sim.posts(count):
            sys.stdout.write(json.dumps(post) + "\n")
        return
    _send_simulated(sim, count, None if fast else rate)


def _send_simulated(sim, count: int | None, rate: float | None) -> None:  # type: ignore[no-untyped-def]
    from brandmon.kafka_io import JsonProducer
    from brandmon.tools.producers import Pacer

    settings = _settings()
    _require_broker(settings)
    producer = JsonProducer(settings)
    pacer = Pacer(rate)
    sent = 0
    try:
        for index, post in enumerate(sim.posts(count)):
            pacer.wait(index)
            producer.send(settings.topic_posts, post, key=post["brand"])
            sent += 1
            if sent % 1000 == 0:
                typer.echo(f"{sent} posts sent", err=True)
    except KeyboardInterrupt:
        pass
    producer.flush()
    typer.echo(f"sent {sent} simulated posts to {settings.topic_posts}", err=True)


def consume(
    topic: Annotated[
        str, typer.Argument(help="Topic to read, e.g. posts.scored, posts.dlq, alerts.")
    ],
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest record.")] = True,
    max_records: Annotated[int | None, typer.Option("--max", min=1)] = None,
    idle_timeout: Annotated[
        float | None,
        typer.Option(
            help="Exit after this many seconds with no new record (default: follow forever)."
        ),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(help="Consumer group to commit in (default: read without committing)."),
    ] = None,
) -> None:
    """Print a topic's records as JSON lines (non-JSON values are printed base64-encoded)."""
    import base64

    from brandmon.kafka_io import consume as read

    settings = _settings()
    _require_broker(settings)
    try:
        for record in read(
            settings,
            [topic],
            group=group,
            from_beginning=from_beginning,
            idle_timeout=idle_timeout,
            max_records=max_records,
        ):
            try:
                value = record.json()
            except ValueError:
                value = {"value_b64": base64.b64encode(record.value or b"").decode()}
            sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass


def demo(
    duration: Annotated[float, typer.Option(help="Seconds to run.", min=10)] = 240.0,
    rate: Annotated[float, typer.Option(help="Simulated posts per second.", min=1)] = 20.0,
    home: Annotated[Path, typer.Option(help="Folder for the broker's data and logs.")] = Path(
        ".brandmon/demo"
    ),
    every: Annotated[int, typer.Option(help="Print one scored post in EVERY.", min=1)] = 5,
) -> None:
    """The main job end to end: broker, worker, simulated posts with a spike, scored output.

    Starts a local Kafka broker unless one answers at BRANDMON_BOOTSTRAP_SERVERS, a worker on
    the default model (or BRANDMON_MODEL_PATH), and a simulator with a negative spike on
    `acme`; prints scored posts and alerts as they arrive, then stops what it started.
    """
    from brandmon.broker import BrokerError
    from brandmon.tools.demo import run_demo

    settings = _settings()
    try:
        code = run_demo(settings, duration, rate, home, every)
    except (BrokerError, RuntimeError) as exc:
        raise _fail(f"demo failed: {exc}") from exc
    raise typer.Exit(code)


def bench(
    posts: Annotated[
        int, typer.Option(help="Texts scored (and posts pushed through Kafka).", min=100)
    ] = 5000,
    texts: Annotated[
        Path | None,
        typer.Option(
            help='JSONL file with a "text" field (or one text per line) to take texts from '
            "(default: simulated posts).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            help="PyTorch checkpoint folder of the same model, for the transformers pipeline() "
            "reference (needs the export extra).",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    reference_texts: Annotated[int, typer.Option(min=10)] = 500,
    half_rate_posts: Annotated[int, typer.Option(min=100)] = 3000,
    repeats: Annotated[
        int, typer.Option(help="Passes of the classifier alone; best and median reported.", min=1)
    ] = 1,
    classifier_only: Annotated[
        bool,
        typer.Option(
            "--classifier-only", help="Only the classifier (and --reference): no broker needed."
        ),
    ] = False,
    scale_out: Annotated[
        str | None,
        typer.Option(
            help="Also measure full-rate throughput with these worker counts, e.g. 1,2 "
            "(each worker gets cores/workers ONNX Runtime threads).",
        ),
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
) -> None:
    """Benchmark the classifier alone and the pipeline through the real broker and worker;
    prints JSON (not a test). The model is BRANDMON_MODEL_PATH (default: the shipped one)."""
    from brandmon.model_export.data import DataFileError
    from brandmon.tools.bench import load_texts, run_bench

    try:
        sample = load_texts(texts, posts)
    except DataFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--texts") from exc
    counts = _worker_counts(scale_out)
    settings = _settings()
    if not classifier_only:
        _require_broker(settings)
    result = run_bench(
        settings,
        sample,
        reference,
        reference_texts,
        half_rate_posts,
        repeats=repeats,
        classifier_only=classifier_only,
        scale_out=counts,
    )
    text = json.dumps(result, indent=2)
    print(text)
    if output is not None:
        output.write_text(text + "\n")


def _worker_counts(value: str | None) -> tuple[int, ...]:
    """--scale-out "1,2" as (1, 2); a clear error for anything else."""
    if not value:
        return ()
    try:
        counts = tuple(int(part) for part in value.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise typer.BadParameter(
            f"{value!r} is not a list of worker counts; give positive integers such as 1,2",
            param_hint="--scale-out",
        )
    return counts


model_app = typer.Typer(
    help="Promote or roll back the score workers' model, or set a challenger beside it, while "
    "they run (docs/model-rollout.md).",
    no_args_is_help=True,
)

WorkerUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--worker",
        help="A score worker's web address, e.g. http://10.0.0.5:6066 "
        "(default: this machine's BRANDMON_WEB_PORT).",
        show_default=False,
    ),
]
RequestedByOpt = Annotated[
    str | None,
    typer.Option(
        help="Who asks (shown in the workers' /ready); default user@host.", show_default=False
    ),
]


def _worker_url(settings: Settings, given: str | None) -> str:
    if given:
        return given.rstrip("/")
    host = "127.0.0.1" if settings.web_host in ("0.0.0.0", "::", "") else settings.web_host
    return f"http://{host}:{settings.web_port}"


def _worker_ready_json(url: str) -> dict[str, object]:
    """A worker's /ready JSON (200 or 503 both carry it); exit 1 naming the address if none."""
    import httpx

    try:
        body = httpx.get(f"{url}/ready", timeout=5).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise _fail(
            f"no score worker answered at {url}/ready ({exc!r}): give a running worker's "
            "address with --worker"
        ) from exc
    if not isinstance(body, dict) or "model_id" not in body:
        raise _fail(f"{url}/ready is not a brandmon score worker's (no model_id in its answer)")
    return body


def _send_promotion(settings: Settings, folder: Path, requested_by: str | None) -> None:
    from brandmon.kafka_io import DeliveryError
    from brandmon.stream.control import default_requester, send_promotion

    _require_broker(settings)
    try:
        message = send_promotion(settings, folder, requested_by or default_requester())
    except DeliveryError as exc:
        raise _fail(f"the request was not written to {settings.topic_control}: {exc}") from exc
    typer.echo(
        f"asked the workers of group {settings.app_id} to promote {folder} "
        f"(request {message.request_id} on {settings.topic_control}); each validates it "
        "first: its /ready shows model_id and last_promotion"
    )


@model_app.command("promote")
def model_promote(
    folder: Annotated[
        Path, typer.Argument(help="Model folder made by `brandmon export`, as the workers see it.")
    ],
    requested_by: RequestedByOpt = None,
) -> None:
    """Ask every score worker of the group (BRANDMON_APP_ID) to switch to FOLDER.

    Each worker checks the folder (manifest, checksums, labels, a smoke test) while its old
    model keeps scoring, then switches between two batches; a refused folder changes nothing.
    """
    from brandmon.contracts.manifest import MANIFEST_NAME

    folder = folder.expanduser().absolute()
    if not (folder / MANIFEST_NAME).is_file():
        raise typer.BadParameter(
            f"{folder} has no {MANIFEST_NAME}: give a model folder made by `brandmon export`",
            param_hint="FOLDER",
        )
    _send_promotion(_settings(), folder, requested_by)


@model_app.command("rollback")
def model_rollback(worker_url: WorkerUrlOpt = None, requested_by: RequestedByOpt = None) -> None:
    """Promote the folder a worker ran before its last promotion (its /ready names it)."""
    settings = _settings()
    url = _worker_url(settings, worker_url)
    previous = _worker_ready_json(url).get("previous_model_path")
    if not previous:
        raise _fail(
            f"the worker at {url} has had no other model since it started: nothing to roll "
            "back to; use `brandmon model promote FOLDER`"
        )
    _send_promotion(settings, Path(str(previous)), requested_by)


@model_app.command("challenger")
def model_challenger(
    folder: Annotated[
        Path | None,
        typer.Argument(
            help="Challenger model folder made by `brandmon export`, as the workers see it.",
            show_default=False,
        ),
    ] = None,
    mode: Annotated[
        str,
        typer.Option(
            help="shadow: every post scored by both, the challenger's records on "
            "BRANDMON_TOPIC_SCORED_SHADOW; split: --share of the brands scored by the "
            "challenger on the scored topic."
        ),
    ] = "shadow",
    share: Annotated[
        float | None,
        typer.Option(help="Split mode: the share of brands (0 to 1) the challenger scores."),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Stop using the challenger.")] = False,
    requested_by: RequestedByOpt = None,
) -> None:
    """Ask every score worker of the group (BRANDMON_APP_ID) to score with a challenger
    beside the champion (or, with --clear, to stop). Each worker checks the folder like a
    promotion first; a refused folder changes nothing (docs/model-rollout.md)."""
    from brandmon.contracts.manifest import MANIFEST_NAME
    from brandmon.kafka_io import DeliveryError
    from brandmon.settings import ChallengerMode
    from brandmon.stream.control import default_requester, send_challenger

    if clear and folder is not None:
        raise typer.BadParameter("give a FOLDER or --clear, not both", param_hint="--clear")
    if not clear and folder is None:
        raise typer.BadParameter(
            "give the challenger's model FOLDER, or --clear to stop using one", param_hint="FOLDER"
        )
    if mode not in ("shadow", "split"):
        raise typer.BadParameter(f"{mode!r}: give shadow or split", param_hint="--mode")
    if share is not None and mode != "split":
        raise typer.BadParameter(
            "--share applies to --mode split only (shadow mode scores every post with both)",
            param_hint="--share",
        )
    if share is not None and not 0 <= share <= 1:
        raise typer.BadParameter(f"{share}: give a share from 0 to 1", param_hint="--share")
    if folder is not None:
        folder = folder.expanduser().absolute()
        if not (folder / MANIFEST_NAME).is_file():
            raise typer.BadParameter(
                f"{folder} has no {MANIFEST_NAME}: give a model folder made by `brandmon export`",
                param_hint="FOLDER",
            )
    settings = _settings()
    _require_broker(settings)
    chosen: ChallengerMode = "split" if mode == "split" else "shadow"
    share = share if share is not None else settings.challenger_share
    try:
        message = send_challenger(
            settings, folder, chosen, share, requested_by or default_requester()
        )
    except DeliveryError as exc:
        raise _fail(f"the request was not written to {settings.topic_control}: {exc}") from exc
    what = (
        "stop using their challenger" if folder is None else f"score with {folder} in {mode} mode"
    )
    typer.echo(
        f"asked the workers of group {settings.app_id} to {what} (request "
        f"{message.request_id} on {settings.topic_control}); their /ready shows challenger "
        "and last_challenger_change"
    )


@model_app.command("status")
def model_status(worker_url: WorkerUrlOpt = None) -> None:
    """Print a worker's active model, previous model, last promotion and challenger as JSON."""
    url = _worker_url(_settings(), worker_url)
    body = _worker_ready_json(url)
    keys = (
        "model_id",
        "model_version",
        "model_path",
        "previous_model_path",
        "last_promotion",
        "challenger",
        "last_challenger_change",
    )
    print(json.dumps({key: body.get(key) for key in keys}, indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(kafka_app, name="kafka")
    app.add_typer(model_app, name="model")
    app.command()(worker)
    app.command()(produce)
    app.command()(simulate)
    app.command()(consume)
    app.command()(demo)
    app.command()(bench)
