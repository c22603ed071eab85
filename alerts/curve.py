"""The sensitivity curve of the surge rule on labelled counts: `brandmon alerts curve`.

Issue 18, item 5: the presets (`fewer`, `balanced`, `more`) are measured points on the curve
of benchmark score against triggers per series-week, on real series with labelled windows.
This replays a folder as `brandmon alerts evaluate` does, once per point: the three presets,
then a sweep of the two settings that move the rarity model's threshold together
(`surge_z`, the floor, and `surge_rarity`, the quantile of the brand's own scores) with the
hold-off (`surge_refractory_hours`). The PNG is drawn with matplotlib, imported only there
(it comes with the `export` extra).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brandmon.alert_settings import Sensitivity
from brandmon.alerts.evaluate import Evaluation, normalise

#: The sweep: (surge_z, surge_rarity, surge_refractory_hours), fewest triggers last.
SWEEP: tuple[tuple[float, float, float], ...] = (
    (3.5, 0.997, 24),
    (4.0, 0.998, 24),
    (4.0, 0.998, 48),
    (4.5, 0.999, 48),
    (5.0, 0.9995, 48),
    (5.5, 0.9995, 48),
    (6.0, 0.9998, 48),
)
PRESETS: tuple[Sensitivity, ...] = ("fewer", "balanced", "more")
STANDARD = "standard"


@dataclass(frozen=True)
class CurvePoint:
    """One replay of the folder: what was set, and what it scored."""

    label: str
    update: dict[str, Any]
    preset: bool
    scores: dict[str, float | None]
    windows_caught: int
    windows_total: int
    triggers: int
    triggers_per_series_week: float
    #: per file: the standard profile's (raw, null, perfect) sums and its triggers
    files: dict[str, tuple[float, float, float, int]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "settings": self.update,
            "preset": self.preset,
            "score": self.scores,
            "windows_caught": self.windows_caught,
            "windows_total": self.windows_total,
            "triggers": self.triggers,
            "triggers_per_series_week": self.triggers_per_series_week,
            "files": {
                name: {"raw": raw, "null": null, "perfect": perfect, "triggers": triggers}
                for name, (raw, null, perfect, triggers) in self.files.items()
            },
        }


def points() -> list[tuple[str, dict[str, Any], bool]]:
    """(label, settings to apply, is a preset) of every point, presets first."""
    out: list[tuple[str, dict[str, Any], bool]] = [
        (name, {"sensitivity": name}, True) for name in PRESETS
    ]
    for z, rarity, refractory in SWEEP:
        update = {
            "surge_z": z,
            "surge_rarity": rarity,
            "surge_refractory_hours": refractory,
        }
        out.append((f"z {z:g}, q {rarity:g}, {refractory:g} h", update, False))
    return out


def measure(
    evaluate: Callable[[dict[str, Any]], Evaluation],
    progress: Callable[[str], None] | None = None,
) -> list[CurvePoint]:
    """Every point of `points()`, each scored by `evaluate(settings update)`."""
    out = []
    for label, update, preset in points():
        if progress is not None:
            progress(label)
        report = evaluate(update).report()
        total = report["total"]
        files = {
            name: (f["raw"][STANDARD], f["null"][STANDARD], f["perfect"][STANDARD], f["triggers"])
            for name, f in report["files"].items()
        }
        out.append(
            CurvePoint(
                label,
                update,
                preset,
                dict(total["score"]),
                int(total["windows_caught"]),
                int(total["windows_total"]),
                int(total["triggers"]),
                float(total["triggers_per_series_week"]),
                files,
            )
        )
    return out


def leave_one_series_out(curve: Sequence[CurvePoint]) -> dict[str, Any]:
    """Is choosing a preset on some series good for others? For each series, the preset that
    scores best (standard profile) on all the other series is scored on it; the held-out
    results are normalised together, as the corpus score is. Beside the in-sample score of
    `balanced` and of the best preset, it says how much of the presets' figure is fitted to
    these files."""
    presets = [p for p in curve if p.preset]
    names = sorted(presets[0].files) if presets else []
    picks: dict[str, str] = {}
    raw = null = perfect = 0.0
    for held in names:
        best = max(presets, key=lambda p: _score_without(p, held))
        picks[held] = best.label
        r, n, f, _ = best.files[held]
        raw, null, perfect = raw + r, null + n, perfect + f
    return {
        "picked": picks,
        "score": normalise(raw, null, perfect) if names else None,
    }


def _score_without(point: CurvePoint, held: str) -> float:
    rest = [v for name, v in point.files.items() if name != held]
    score = normalise(sum(v[0] for v in rest), sum(v[1] for v in rest), sum(v[2] for v in rest))
    return -math.inf if score is None else score


def plot(curve: Sequence[CurvePoint], path: Path, title: str) -> None:
    """Standard score against triggers per series-week: the sweep as a line, the presets
    as labelled points on it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    sweep = sorted((p for p in curve if not p.preset), key=lambda p: p.triggers_per_series_week)
    ax.plot(
        [p.triggers_per_series_week for p in sweep],
        [p.scores["standard"] or 0.0 for p in sweep],
        "o-",
        color="0.6",
        label="sweep (surge_z, surge_rarity, refractory)",
    )
    for p in sweep:
        ax.annotate(
            p.label,
            (p.triggers_per_series_week, p.scores["standard"] or 0.0),
            textcoords="offset points",
            xytext=(4, -10),
            fontsize=6,
            color="0.4",
        )
    for p in (p for p in curve if p.preset):
        score = p.scores["standard"] or 0.0
        ax.plot(p.triggers_per_series_week, score, "D", markersize=8, label=f"preset {p.label}")
        ax.annotate(
            f"{p.label}: {score:.1f}, {p.windows_caught}/{p.windows_total} windows",
            (p.triggers_per_series_week, score),
            textcoords="offset points",
            xytext=(6, 6),
            fontsize=8,
        )
    ax.axvline(1.0, color="0.8", linestyle=":", label="1 trigger per series-week")
    ax.set_xlabel("surge triggers per series-week")
    ax.set_ylabel("NAB standard score (0 = never fires, 100 = perfect)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
