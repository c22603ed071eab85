"""`brandmon label serve | export | import`: the labeling loop around Label Studio.

Registered by brandmon.model_export.cli as the `label` sub-app. Only typer and the standard
library at import time; numpy, httpx and the Kafka client load inside the commands. Every
expected failure ends in one message and exit status 1 (2 for a bad option), never a
traceback.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlparse

import typer

if TYPE_CHECKING:
    from brandmon.model_export.labeling.client import LabelStudioClient
    from brandmon.model_export.labeling.select import Selection
    from brandmon.settings import Settings

app = typer.Typer(
    help="Labeling loop: serve Label Studio, export uncertain posts, import annotations.",
    no_args_is_help=True,
)

UrlOption = Annotated[
    str | None, typer.Option("--url", help="Label Studio URL [default: BRANDMON_LABEL_STUDIO_URL].")
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="API token [default: BRANDMON_LABEL_STUDIO_TOKEN, else the one `label serve` "
        "stored in the data folder].",
    ),
]
ProjectOption = Annotated[
    str | None,
    typer.Option("--project", help="Project title [default: BRANDMON_LABEL_STUDIO_PROJECT]."),
]


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def _settings() -> Settings:
    from brandmon.settings import load_settings

    return load_settings()


def _token(settings: Settings, token: str | None) -> str | None:
    """--token, then the setting, then what `label serve` stored for the local server."""
    from brandmon.model_export.labeling import credentials

    if token:
        return token
    if settings.label_studio_token is not None:
        return settings.label_studio_token.get_secret_value()
    stored = credentials.read(settings.label_studio_data_dir)
    return stored.token if stored else None


def _client(settings: Settings, url: str | None, token: str | None) -> LabelStudioClient:
    from brandmon.model_export.labeling.client import LabelStudioClient

    return LabelStudioClient(url or settings.label_studio_url, _token(settings, token) or "")


# ------------------------------------------------------------------------------------ serve


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@app.command("serve")
def serve_command(
    venv: Annotated[
        Path | None,
        typer.Option(help="Label Studio's venv [default: BRANDMON_LABEL_STUDIO_VENV]."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="SQLite database folder [default: BRANDMON_LABEL_STUDIO_DATA_DIR]."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port [default: BRANDMON_LABEL_STUDIO_URL's]."),
    ] = None,
) -> None:
    """Run a local Label Studio on loopback until Ctrl-C, with an admin user and API token."""
    from brandmon.model_export.labeling import credentials, server
    from brandmon.model_export.labeling.client import LabelStudioError

    settings = _settings()
    folder = (data_dir or settings.label_studio_data_dir).expanduser().resolve()
    password = settings.label_studio_password
    creds = credentials.load_or_create(
        folder,
        settings.label_studio_token.get_secret_value() if settings.label_studio_token else None,
        password.get_secret_value() if password else None,
    )
    config = server.ServerConfig(
        venv=(venv or settings.label_studio_venv).expanduser(),
        data_dir=folder,
        port=port or urlparse(settings.label_studio_url).port or 8080,
        username=settings.label_studio_username,
        password=creds.password,
        token=creds.token,
    )
    try:
        process = server.start(config)
    except LabelStudioError as exc:
        raise _fail(str(exc)) from exc
    # SIGTERM (as from a service manager or a test) stops the child the same way as Ctrl-C
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.wait_ready(config, process)
        typer.secho(
            f"Label Studio {server.LABEL_STUDIO_VERSION} ready at {config.url}; user "
            f"{config.username}, password and API token in "
            f"{credentials.path_in(folder)}. Ctrl-C stops it.",
            fg=typer.colors.GREEN,
        )
        process.wait()
    except LabelStudioError as exc:
        raise _fail(str(exc)) from exc
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(process)


# ------------------------------------------------------------------------------------ export


def _read_posts(
    scored: Path | None, from_topic: bool, max_read: int, timeout: float
) -> tuple[Any, Any]:
    from brandmon.model_export.labeling import sources

    rejected = sources.Rejections()
    if from_topic:
        return sources.from_topic(_settings(), max_read, timeout, rejected), rejected
    assert scored is not None
    return sources.from_jsonl(scored, rejected), rejected


def _send(
    settings: Settings,
    url: str | None,
    token: str | None,
    project: str | None,
    tasks: list[dict[str, Any]],
) -> str:
    """Add the tasks to the project (made if missing), skipping posts it already has."""
    from brandmon.model_export.labeling.tasks import LABEL_CONFIG

    title = project or settings.label_studio_project
    with _client(settings, url, token) as client:
        found, created = client.ensure_project(title, LABEL_CONFIG)
        have = {t["data"].get("post_id") for t in ([] if created else client.tasks(found["id"]))}
        new = [t for t in tasks if t["data"]["post_id"] not in have]
        if new:
            client.import_tasks(found["id"], new)
    made = "created" if created else "existing"
    return (
        f"sent {len(new)} tasks to {made} project {title!r} (id {found['id']}) at {client.url}"
        + (f"; {len(tasks) - len(new)} already there" if len(new) < len(tasks) else "")
    )


def _describe(selection: Selection, rejected: Any) -> str:
    text = (
        f"read {selection.read} scored posts: picked {len(selection.picked)} from "
        f"{selection.strata} brand x time strata; dropped {selection.duplicates} near-"
        f"duplicates/retweets and {selection.empty} with no words"
    )
    if rejected.count:
        text += f"; skipped {rejected.count} invalid records (first: {rejected.first})"
    return text


@app.command("export")
def export_command(
    scored: Annotated[
        Path | None,
        typer.Argument(help="JSONL of posts.scored records (or use --from-topic)."),
    ] = None,
    from_topic: Annotated[
        bool, typer.Option("--from-topic", help="Read BRANDMON_TOPIC_SCORED from the start.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="Most posts to send for labeling.")] = 200,
    max_read: Annotated[
        int, typer.Option(min=1, help="--from-topic: most records to read.")
    ] = 100_000,
    timeout: Annotated[
        float, typer.Option(min=1.0, help="--from-topic: most seconds to read.")
    ] = 60.0,
    measure: Annotated[
        str, typer.Option(help="Uncertainty: margin (top-2 gap) or entropy.")
    ] = "margin",
    bucket_hours: Annotated[
        float, typer.Option(min=0.01, help="Time bucket of the brand x time spread.")
    ] = 24.0,
    similarity: Annotated[
        float,
        typer.Option(min=0.01, max=1.0, help="Word-shingle Jaccard at which posts are copies."),
    ] = 0.7,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the tasks as Label Studio JSON.")
    ] = None,
    send: Annotated[
        bool | None,
        typer.Option(
            "--send/--no-send",
            help="Send to the Label Studio project [default: when a token is known].",
        ),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    project: ProjectOption = None,
) -> None:
    """Pick posts worth labeling and pre-annotate them with the model's label."""
    from brandmon.model_export.labeling.client import LabelStudioError
    from brandmon.model_export.labeling.select import MEASURES, select_for_labeling
    from brandmon.model_export.labeling.sources import SourceError
    from brandmon.model_export.labeling.tasks import to_task

    if (scored is None) == (not from_topic):
        raise typer.BadParameter("give a scored JSONL file or --from-topic (one of them)")
    if measure not in MEASURES:
        raise typer.BadParameter(f"use one of {', '.join(MEASURES)}", param_hint="--measure")
    settings = _settings()
    send = send if send is not None else _token(settings, token) is not None
    if not send and out is None:
        raise typer.BadParameter(
            "nothing to do: give --out FILE, or a Label Studio token (--token, "
            "BRANDMON_LABEL_STUDIO_TOKEN or a running `brandmon label serve`) to send the tasks"
        )
    try:
        posts, rejected = _read_posts(scored, from_topic, max_read, timeout)
        selection = select_for_labeling(
            posts,
            limit,
            measure=measure,
            bucket_hours=bucket_hours,
            threshold=similarity,
        )
        tasks = [to_task(candidate) for candidate in selection.picked]
        typer.echo(_describe(selection, rejected))
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(tasks, indent=1, ensure_ascii=False), encoding="utf-8")
            typer.echo(f"wrote {len(tasks)} tasks to {out} (Label Studio JSON import format)")
        if send:
            typer.echo(_send(settings, url, token, project, tasks))
    except (SourceError, LabelStudioError) as exc:
        raise _fail(str(exc)) from exc


# ------------------------------------------------------------------------------------ import


def _load_export(
    settings: Settings,
    export_file: Path | None,
    url: str | None,
    token: str | None,
    project: str | None,
) -> Any:
    from brandmon.model_export.labeling.client import LabelStudioError

    if export_file is not None:
        if not export_file.is_file():
            raise typer.BadParameter(f"{export_file} does not exist", param_hint="--from-file")
        try:
            return json.loads(export_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _fail(f"{export_file} is not a JSON file: {exc}") from exc
    title = project or settings.label_studio_project
    with _client(settings, url, token) as client:
        found = client.find_project(title)
        if found is None:
            raise LabelStudioError(
                f"no project {title!r} at {client.url}: run `brandmon label export` first, "
                "or give --project"
            )
        return client.export(found["id"])


def _print_summary(summary: dict[str, Any], train: Path, test: Path) -> None:
    agreement = summary["agreement"]

    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    dropped = summary["dropped"]
    typer.echo(
        f"{summary['tasks']} tasks: {summary['train']} rows to {train}, "
        f"{summary['test']} to {test}\n"
        f"  labels train {summary['per_label']['train']}, test {summary['per_label']['test']}\n"
        f"  agreement over {agreement['posts_with_2_or_more_annotators']} posts with 2+ "
        f"annotators: {fmt(agreement['percent_agreement'])} of pairs agree, Krippendorff's "
        f"alpha {fmt(agreement['krippendorff_alpha_nominal'])}\n"
        f"  dropped: {dropped['ties']} ties, {dropped['tasks_without_a_label']} tasks without "
        f"a label; skipped {dropped['cancelled_annotations']} cancelled and "
        f"{dropped['annotations_without_a_choice']} empty annotations\n"
        f"  annotators changed the model's label on {summary['model_label_corrected']} posts"
    )


@app.command("import")
def import_command(
    out_dir: Annotated[
        Path, typer.Option("--out-dir", "-o", help="Folder for train.jsonl, test.jsonl.")
    ] = Path("data/labeled"),
    from_file: Annotated[
        Path | None,
        typer.Option("--from-file", help="A Label Studio JSON export instead of the server."),
    ] = None,
    test_share: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Share of rows for test.jsonl.")
    ] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the train/test split.")] = 13,
    similarity: Annotated[
        float,
        typer.Option(min=0.01, max=1.0, help="Jaccard at which texts count as one group."),
    ] = 0.7,
    url: UrlOption = None,
    token: TokenOption = None,
    project: ProjectOption = None,
) -> None:
    """Turn finished annotations into train/test JSONL (majority label, leak-free split)."""
    from brandmon.model_export.labeling.client import LabelStudioError
    from brandmon.model_export.labeling.importer import build_rows, write_jsonl
    from brandmon.model_export.labeling.tasks import ExportFormatError, read_export

    settings = _settings()
    try:
        tasks = read_export(_load_export(settings, from_file, url, token, project))
    except (LabelStudioError, ExportFormatError) as exc:
        raise _fail(str(exc)) from exc
    result = build_rows(tasks, test_share, seed, similarity)
    train, test = out_dir / "train.jsonl", out_dir / "test.jsonl"
    write_jsonl(train, result.train)
    write_jsonl(test, result.test)
    summary = result.summary()
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    _print_summary(summary, train, test)
