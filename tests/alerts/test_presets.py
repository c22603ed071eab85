"""Sensitivity presets and per-brand overrides: what they change, what wins, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from brandmon.alert_settings import (
    PRESET_FIELDS,
    RARITY_PRESETS,
    SENSITIVITY_PRESETS,
    AlertSettings,
)
from brandmon.alerts.backtest import replay_posts
from brandmon.alerts.overrides import BrandEngines, OverridesError, load_overrides
from brandmon.settings import Settings
from tests.alerts.harness import alerts_app
from tests.alerts.streams import Run, by_time, traffic

runner = CliRunner()


def _share_spike(sensitivity: str, share: float) -> list[str]:
    """Severities of the share rule's triggers on 10 minutes at `share` after a warm hour."""
    run = Run(settings=AlertSettings(sensitivity=sensitivity, surge_enabled=False))
    run.feed(traffic(range(60), 100, 0.15))
    run.feed(traffic(range(60, 70), 100, share))
    return [a.severity for a in run.alerts if a.action == "trigger"]


def _volume_surge(sensitivity: str, factor: float) -> list[str]:
    """Rules of the triggers when volume jumps by `factor` at the normal share (the daily
    model: the rarity model judges an hour-old brand at its fixed provisional level)."""
    run = Run(settings=AlertSettings(sensitivity=sensitivity, surge_model="daily"))
    run.feed(traffic(range(60), 100, 0.15))
    run.feed(traffic(range(60, 65), round(100 * factor), 0.15, tag="x"))
    return [a.rule for a in run.alerts if a.action == "trigger"]


MODEL_PRESETS = {"daily": SENSITIVITY_PRESETS, "rarity": RARITY_PRESETS}


def test_balanced_is_exactly_the_defaults() -> None:
    assert AlertSettings(sensitivity="balanced") == AlertSettings()
    assert SENSITIVITY_PRESETS["balanced"] == {}


@pytest.mark.parametrize("name", PRESET_FIELDS)
def test_every_preset_threshold_moves_the_promised_way(name: str) -> None:
    """Each field a preset sets is a bar to clear: higher means fewer alerts (for each surge
    model whose presets set it)."""
    models = [
        m for m, presets in MODEL_PRESETS.items() if name in presets["fewer"] | presets["more"]
    ]
    assert models
    for model in models:
        fewer, balanced, more = (
            getattr(AlertSettings(sensitivity=p, surge_model=model), name)
            for p in ("fewer", "balanced", "more")
        )
        assert fewer >= balanced >= more and fewer > more, model


def test_a_borderline_share_spike_pages_on_more_but_not_on_fewer() -> None:
    # 15% -> 28%: the 95% lower bound clears more's 7-point margin, not balanced's 10
    assert _share_spike("more", 0.28) != []
    assert _share_spike("balanced", 0.28) == []
    # 15% -> 32%: balanced catches it, fewer (12-point margin, z 3.5) does not
    assert _share_spike("balanced", 0.32) != []
    assert _share_spike("fewer", 0.32) == []


def test_a_borderline_surge_pages_on_more_but_not_on_balanced() -> None:
    assert "mention_surge" in _volume_surge("more", 1.8)
    assert _volume_surge("balanced", 1.8) == []
    assert "mention_surge" in _volume_surge("balanced", 2.2)
    assert _volume_surge("fewer", 2.2) == []


def test_explicit_fields_win_over_the_preset(monkeypatch: pytest.MonkeyPatch) -> None:
    direct = AlertSettings(sensitivity="fewer", z_warning=3.0)
    assert direct.z_warning == 3.0 and direct.wilson_margin == 0.12
    assert direct.explicit_values() == {"sensitivity": "fewer", "z_warning": 3.0}
    monkeypatch.setenv("BRANDMON_ALERTS__SENSITIVITY", "more")
    monkeypatch.setenv("BRANDMON_ALERTS__SURGE_Z", "5")
    alerts = Settings().alerts
    assert alerts.surge_z == 5.0 and alerts.surge_factor == 1.7 and alerts.z_warning == 2.5


def test_checks_see_the_preset_values() -> None:
    AlertSettings(surge_keepalive_factor=1.8)  # fine under balanced's surge_factor 2
    with pytest.raises(ValidationError, match="surge_keepalive_factor must be <= surge_factor"):
        AlertSettings(sensitivity="more", surge_keepalive_factor=1.8)  # more: factor 1.7
    with pytest.raises(ValidationError, match="'fewer', 'balanced' or 'more'"):
        AlertSettings(sensitivity="lots")  # type: ignore[arg-type]


# --- overrides file --------------------------------------------------------------------------


def _overrides(tmp_path: Path, text: str, **global_fields: object) -> AlertSettings:
    path = tmp_path / "overrides.toml"
    path.write_text(text)
    return AlertSettings.model_validate({"overrides_file": path, **global_fields})


def test_overrides_lay_a_brand_entry_over_the_global_settings(tmp_path: Path) -> None:
    settings = _overrides(
        tmp_path,
        '[acme]\nsensitivity = "fewer"\nsurge_z = 5.5\n\n["tiny co"]\nmin_posts = 30\n',
        z_warning=3.2,
        wilson_margin=0.09,
    )
    brands = load_overrides(settings)
    acme, tiny = brands["acme"], brands["tiny co"]
    # the brand's preset replaces the global explicit thresholds; its own fields beat both
    assert (acme.z_warning, acme.wilson_margin, acme.surge_z) == (3.5, 0.12, 5.5)
    # no preset in the entry: the global explicit fields stay, the entry's field on top
    assert (tiny.z_warning, tiny.wilson_margin, tiny.min_posts) == (3.2, 0.09, 30)
    assert tiny.sensitivity == "balanced"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[acme]\nz_warnin = 3\n", "brand 'acme': field 'z_warnin' cannot be set per brand"),
        ("[acme]\nbucket_seconds = 30\n", "field 'bucket_seconds' cannot be set per brand"),
        ("[acme]\nz_warning = -1\n", "brand 'acme': field 'z_warning': Input should be greater"),
        ('[acme]\nsensitivity = "lots"\n', "brand 'acme': field 'sensitivity': Input should be"),
        ("acme = 3\n", "brand 'acme': expected a table of settings"),
        (
            "[acme.corp]\nmin_posts = 60\n",
            'quote a brand name that holds a dot, e.g. ["acme.corp"]',
        ),
        ("[acme\n", "is not valid TOML"),
        (
            "[acme]\nmax_tracked_posts_per_bucket = 100000\n",
            "brand 'acme': one brand's alert state can reach",
        ),
        (
            '[acme]\nsensitivity = "more"\nsurge_keepalive_factor = 1.8\n',
            "brand 'acme': surge_keepalive_factor must be <= surge_factor",
        ),
    ],
)
def test_a_bad_overrides_file_names_the_brand_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(OverridesError, match=r"overrides\.toml") as caught:
        load_overrides(_overrides(tmp_path, text))
    assert expected in str(caught.value)


def test_a_missing_overrides_file_says_which_variable_to_fix(tmp_path: Path) -> None:
    settings = AlertSettings(overrides_file=tmp_path / "nope.toml")
    with pytest.raises(OverridesError, match="BRANDMON_ALERTS__OVERRIDES_FILE"):
        load_overrides(settings)


def test_brands_with_equal_settings_share_one_engine(tmp_path: Path) -> None:
    settings = _overrides(
        tmp_path, '[a]\nsensitivity = "more"\n[b]\nsensitivity = "more"\n[c]\nmin_posts = 50\n'
    )
    engines = BrandEngines.load(settings)
    assert engines.for_brand("a") is engines.for_brand("b")
    assert engines.for_brand("c") is engines.default  # same values as the global settings
    assert engines.for_brand("other") is engines.default
    assert engines.distinct == 2 and engines.overridden == ["a", "b", "c"]


def _two_brand_spike() -> list:  # type: ignore[type-arg]
    """acme and globex with the same traffic and the same 15% -> 32% spike."""
    posts = []
    for brand in ("acme", "globex"):
        posts += traffic(range(60), 100, 0.15, brand=brand)
        posts += traffic(range(60, 70), 100, 0.32, brand=brand)
    return list(by_time(posts))


def test_an_override_applies_to_its_brand_only(tmp_path: Path) -> None:
    settings = _overrides(tmp_path, '[acme]\nsensitivity = "fewer"\n', surge_enabled=False)
    replay = replay_posts(BrandEngines.load(settings), iter(_two_brand_spike()))
    assert {a.brand for a in replay.alerts if a.action == "trigger"} == {"globex"}
    without = replay_posts(BrandEngines.build(settings), iter(_two_brand_spike()))
    assert {a.brand for a in without.alerts if a.action == "trigger"} == {"acme", "globex"}


def test_backtest_command_honours_the_overrides_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scored = tmp_path / "scored.jsonl"
    scored.write_text("".join(p.model_dump_json() + "\n" for p in _two_brand_spike()))
    overrides = tmp_path / "overrides.toml"
    overrides.write_text('[globex]\nsensitivity = "fewer"\n')
    monkeypatch.setenv("BRANDMON_ALERTS__SURGE_ENABLED", "false")
    monkeypatch.setenv("BRANDMON_ALERTS__OVERRIDES_FILE", str(overrides))
    result = runner.invoke(alerts_app(), ["alerts", "backtest", str(scored), "--summary-only"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["incidents_per_brand"] == {"acme": 1, "globex": 0}
    overrides.write_text("[globex]\nz_warning = 0\n")
    result = runner.invoke(alerts_app(), ["alerts", "backtest", str(scored), "--summary-only"])
    assert result.exit_code == 2
    assert "brand 'globex': field 'z_warning'" in result.stderr


def test_scenario_report_per_preset_prints_a_table() -> None:
    result = runner.invoke(
        alerts_app(),
        ["alerts", "scenarios", "--preset", "more", "--preset", "fewer", "--scenario", "gap"],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["scenario", "preset", "kind"]
    assert [line.split()[:2] for line in lines[1:3]] == [["gap", "more"], ["gap", "fewer"]]
    bad = runner.invoke(alerts_app(), ["alerts", "scenarios", "--preset", "lots"])
    assert bad.exit_code == 2 and "unknown preset" in bad.output
