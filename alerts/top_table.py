"""The screen of `brandmon top`: a rich Table drawn from a `Frame` of the view model.

Pure: it builds a renderable and prints nothing, so tests draw it on a recording Console.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.table import Table
from rich.text import Text

from brandmon.alerts.top import BrandRow, Frame, OpenIncident

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def render(frame: Frame, *, buckets: int, reading_history: bool = False) -> Table:
    """One screen: a row per brand, most urgent first, with what was left out in the caption."""
    table = Table(
        title=_title(frame),
        caption=_caption(frame, reading_history),
        caption_justify="left",
        expand=False,
    )
    table.add_column("brand", style="bold", no_wrap=True)
    table.add_column("posts", justify="right", no_wrap=True)
    table.add_column("voices", justify="right", no_wrap=True)
    table.add_column("negative", justify="right", no_wrap=True)
    table.add_column("baseline", justify="right", no_wrap=True)
    table.add_column("z", justify="right", no_wrap=True)
    table.add_column(f"share, last {buckets} buckets", no_wrap=True)
    table.add_column("open incidents")
    for row in frame.rows:
        table.add_row(*_cells(row))
    if not frame.rows:
        table.add_row("(no brand yet)", "", "", "", "", "", "", "")
    return table


def _title(frame: Frame) -> str:
    shown = len(frame.rows) + frame.hidden
    parts = [
        "brandmon top",
        f"{shown} brand{'s' if shown != 1 else ''}",
        f"{frame.open_incidents} open incident{'s' if frame.open_incidents != 1 else ''}",
    ]
    if frame.data_until is not None:
        parts.append(f"data until {_clock(frame.data_until)}")
    return "  ·  ".join(parts)


def _caption(frame: Frame, reading_history: bool) -> str | None:
    lines = []
    if reading_history:
        lines.append("reading recent history…")
    if frame.hidden:
        lines.append(f"+{frame.hidden} more brands (--limit to show more, --brand to pick)")
    if frame.skipped:
        lines.append(
            f"skipped {frame.skipped} unreadable record(s) of {frame.records}; last: "
            f"{frame.last_skip_reason}"
        )
    return "\n".join(lines) or None


def _cells(row: BrandRow) -> tuple[str | Text, ...]:
    latest = row.latest
    alarming = row.in_incident or (latest is not None and latest.z is not None and latest.z >= 3)
    if latest is None:
        numbers: tuple[str | Text, ...] = ("–", "–", "–", "–", "–")
    else:
        share = Text(_percent(latest.share), style="bold red" if alarming else "")
        numbers = (
            str(latest.posts),
            str(latest.voices),
            share,
            _baseline(latest.baseline_share, latest.baseline_std),
            f"{latest.z:.1f}" if latest.z is not None else "–",
        )
    return (row.brand, *numbers, row.sparkline, _incidents(row))


def _incidents(row: BrandRow) -> Text:
    text = Text()
    for n, incident in enumerate(row.incidents):
        if n:
            text.append("\n")
        text.append_text(_incident(incident))
    if not row.incidents and row.in_incident:
        text.append("open (trigger older than what was read)", style="bold red")
    return text


def _incident(incident: OpenIncident) -> Text:
    return Text.assemble(
        (incident.severity.upper(), SEVERITY_STYLE.get(incident.severity, "")),
        f" {incident.rule} since {_clock(incident.incident_start)}",
    )


def _percent(value: float | None) -> str:
    return f"{value:.1%}" if value is not None else "–"


def _baseline(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "warm-up"
    return f"{mean:.1%} ±{std * 100:.1f}" if std is not None else f"{mean:.1%}"


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
