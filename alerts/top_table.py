"""The screen of `brandmon top`: a rich Table drawn from a `Frame` of the view model.

Pure: it builds a renderable and prints nothing, so tests draw it on a recording Console.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from brandmon.alerts.top import BrandRow, Frame, OpenIncident

#: Longest brand name shown whole on a terminal narrower than NARROW columns (80 fit).
BRAND_WIDTH = 14
NARROW = 120
#: Newest buckets a sparkline keeps on a narrow terminal.
SPARK_MIN_WIDTH = 8
SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


class Sparkline:
    """A sparkline that, given less room than its length, drops its oldest buckets (never
    the newest: they are what the engineer is looking at)."""

    def __init__(self, blocks: str) -> None:
        self.blocks = blocks

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(min(len(self.blocks), SPARK_MIN_WIDTH), len(self.blocks))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text(self.blocks[-options.max_width :] if options.max_width > 0 else "")


def render(
    frame: Frame,
    *,
    buckets: int,
    now: datetime | None = None,
    notices: Sequence[str] = (),
    width: int | None = None,
) -> Table:
    """One screen: a row per brand, most urgent first; the caption says what was left out,
    then each of `notices` (e.g. that history is still being read). With `now`, the title
    says how old the newest bucket is (a stopped alert worker shows as data growing old).
    `width`: the terminal's; below NARROW a long brand name is cut to BRAND_WIDTH."""
    title = _title(frame, now)
    table = Table(
        title=title,
        min_width=len(title),  # a narrow table would wrap its title
        caption=_caption(frame, notices),
        caption_justify="left",
        show_edge=False,
    )
    day = frame.data_until.astimezone(UTC).date() if frame.data_until else None
    # on a narrow terminal the sparkline and incidents wrap or shorten first and a brand name
    # longer than BRAND_WIDTH is cut; the numbers are never cut
    narrow = width is not None and width < NARROW
    brand_width = BRAND_WIDTH if narrow else None
    table.add_column("brand", style="bold", no_wrap=True, max_width=brand_width)
    table.add_column("posts", justify="right", no_wrap=True)
    table.add_column("negative", justify="right", no_wrap=True)
    table.add_column("baseline", justify="right", no_wrap=True)
    table.add_column("z", justify="right", no_wrap=True)
    table.add_column(f"share, last {buckets} buckets")
    table.add_column("open incidents", min_width=12)
    for row in frame.rows:
        table.add_row(*_cells(row, day))
    if not frame.rows:
        table.add_row("(no brand yet)", "", "", "", "", "", "")
    return table


def _title(frame: Frame, now: datetime | None) -> str:
    shown = len(frame.rows) + frame.hidden
    parts = [
        "brandmon top",
        f"{shown} brand{'s' if shown != 1 else ''}",
        f"{frame.open_incidents} open incident{'s' if frame.open_incidents != 1 else ''}",
    ]
    if frame.data_until is not None:
        age = f" ({_age(now - frame.data_until)} ago)" if now is not None else ""
        parts.append(f"data until {_clock(frame.data_until)}{age}")
    return "  ·  ".join(parts)


def _caption(frame: Frame, notices: Sequence[str]) -> str | None:
    lines = []
    if frame.hidden:
        lines.append(f"+{frame.hidden} more brands (--limit to show more, --brand to pick)")
    if frame.skipped:
        lines.append(
            f"skipped {frame.skipped} unreadable record(s) of {frame.records}; last: "
            f"{frame.last_skip_reason}"
        )
    lines.extend(notices)
    return "\n".join(lines) or None


def _cells(row: BrandRow, day: date | None) -> tuple[RenderableType, ...]:
    latest = row.latest
    alarming = row.in_incident or (latest is not None and latest.z is not None and latest.z >= 3)
    if latest is None:
        numbers: tuple[RenderableType, ...] = ("–", "–", "–", "–")
    else:
        share = Text(_percent(latest.share), style="bold red" if alarming else "")
        numbers = (
            str(latest.posts),
            share,
            _baseline(latest.baseline_share),
            f"{latest.z:.1f}" if latest.z is not None else "–",
        )
    return (row.brand, *numbers, Sparkline(row.sparkline), _incidents(row, day))


def _incidents(row: BrandRow, day: date | None) -> Text:
    text = Text()
    for n, incident in enumerate(row.incidents):
        if n:
            text.append("\n")
        text.append_text(_incident(incident, day))
    if not row.incidents and row.in_incident:
        text.append("open (trigger older than what was read)", style="bold red")
    return text


def _incident(incident: OpenIncident, day: date | None) -> Text:
    start = incident.incident_start.astimezone(UTC)
    since = f"{start:%H:%M}" if start.date() == day else f"{start:%Y-%m-%d %H:%M}"
    return Text.assemble(
        (incident.severity.upper(), SEVERITY_STYLE.get(incident.severity, "")),
        f" {incident.rule} since {since}",
    )


def _percent(value: float | None) -> str:
    return f"{value:.1%}" if value is not None else "–"


def _baseline(mean: float | None) -> str:
    return "warm-up" if mean is None else f"{mean:.1%}"


def _age(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
