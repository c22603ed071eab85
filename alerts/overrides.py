"""Per-brand alert settings: a sensitivity preset and/or thresholds for some brands.

The file (BRANDMON_ALERTS__OVERRIDES_FILE) is TOML, one table per brand::

    [acme]                      # a loud brand: page less
    sensitivity = "fewer"

    ["tiny co"]                 # a small brand: more sensitive, and its own surge floor
    sensitivity = "more"
    surge_min_voices = 30

It is read and checked once, when the alert worker or `brandmon alerts backtest` starts:
`load_overrides()` raises `OverridesError` naming the file, the brand and the field. Each
brand's settings are the global ones with its entry laid over them, validated as a whole
(including the state-size check). Precedence, strongest first: the brand's own fields, the
brand's preset, the global explicit fields (environment), the global preset, the defaults; a
brand's preset replaces the global explicit values of the fields a preset sets.

`BrandEngines` holds one `AlertEngine` per distinct effective settings and picks a brand's.
Only detection fields can differ per brand (`BRAND_FIELDS`): bucket width, windows, lateness
and clock tolerances are shared because a partition's brands close their buckets on one
stream time, and notifier fields are not about a brand.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from brandmon.alert_settings import PRESET_FIELDS, AlertSettings
from brandmon.alerts.engine import AlertEngine

#: The settings a brand's entry may set.
BRAND_FIELDS = frozenset(
    {
        "sensitivity",
        *PRESET_FIELDS,
        "z_critical",
        "std_floor",
        "wilson_z",
        "warmup_share",
        "warmup_critical_share",
        "warmup_min_posts",
        "warmup_buckets",
        "surge_enabled",
        "surge_keepalive_factor",
        "surge_keepalive_z",
        "quiet_seconds",
        "keepalive_slack",
        "samples_per_alert",
        "max_tracked_posts_per_bucket",
    }
)


class OverridesError(ValueError):
    """The overrides file cannot be used; the message names the file, brand, field and fix."""


def load_overrides(settings: AlertSettings) -> dict[str, AlertSettings]:
    """Each overridden brand's effective settings ({} without an overrides file)."""
    path = settings.overrides_file
    if path is None:
        return {}
    return parse_overrides(_read(path), settings, source=str(path))


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise OverridesError(
            f"cannot read the alert overrides file {path} ({exc.strerror or exc}): fix "
            "BRANDMON_ALERTS__OVERRIDES_FILE or unset it"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise OverridesError(f"alert overrides file {path} is not valid TOML: {exc}") from exc


def parse_overrides(
    entries: Mapping[str, Any], settings: AlertSettings, *, source: str = "overrides"
) -> dict[str, AlertSettings]:
    """Validate parsed entries ({brand: {field: value}}) against the global `settings`."""
    result: dict[str, AlertSettings] = {}
    for brand, entry in entries.items():
        where = f"{source}: brand {brand!r}"
        if not brand or len(brand) > AlertSettings.MAX_BRAND_CHARS:
            raise OverridesError(
                f"{where}: a brand name must have 1 to {AlertSettings.MAX_BRAND_CHARS} characters"
            )
        if not isinstance(entry, dict):
            raise OverridesError(
                f'{where}: expected a table of settings, e.g. [{brand}] sensitivity = "fewer"'
            )
        unknown = sorted(set(entry) - BRAND_FIELDS)
        nested = [name for name in unknown if isinstance(entry[name], dict)]
        if nested:
            raise OverridesError(
                f"{where}: {nested[0]!r} is a table, not a setting: quote a brand name that "
                f'holds a dot, e.g. ["{brand}.{nested[0]}"]'
            )
        if unknown:
            raise OverridesError(
                f"{where}: field {unknown[0]!r} cannot be set per brand; allowed: "
                + ", ".join(sorted(BRAND_FIELDS))
            )
        result[brand] = brand_settings(settings, entry, where)
    return result


def brand_settings(settings: AlertSettings, entry: Mapping[str, Any], where: str) -> AlertSettings:
    """`settings` with one brand's `entry` laid over it (see the module docstring)."""
    base = settings.explicit_values()
    if "sensitivity" in entry:
        base = {k: v for k, v in base.items() if k not in PRESET_FIELDS}
    try:
        return AlertSettings.model_validate({**base, **entry})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"field {field!r}: {message}" if field else message)
        raise OverridesError(f"{where}: " + "; ".join(problems)) from exc


class BrandEngines:
    """A default `AlertEngine` and the engines of overridden brands; `for_brand()` picks."""

    def __init__(
        self, default: AlertEngine, by_brand: Mapping[str, AlertEngine] | None = None
    ) -> None:
        self.default = default
        self._by_brand = dict(by_brand or {})

    @classmethod
    def build(
        cls,
        settings: AlertSettings,
        overrides: Mapping[str, AlertSettings] | None = None,
        *,
        volume_only: bool = False,
    ) -> BrandEngines:
        """One engine per distinct effective settings (brands with equal settings share)."""
        default = AlertEngine(settings, volume_only=volume_only)
        engines = {settings: default}
        by_brand = {}
        for brand, own in (overrides or {}).items():
            if own not in engines:
                engines[own] = AlertEngine(own, volume_only=volume_only)
            by_brand[brand] = engines[own]
        return cls(default, by_brand)

    @classmethod
    def load(cls, settings: AlertSettings, *, volume_only: bool = False) -> BrandEngines:
        """Read and check the overrides file of `settings` (raises `OverridesError`)."""
        return cls.build(settings, load_overrides(settings), volume_only=volume_only)

    def for_brand(self, brand: str) -> AlertEngine:
        return self._by_brand.get(brand, self.default)

    @property
    def overridden(self) -> list[str]:
        """The brands with their own settings."""
        return sorted(self._by_brand)

    @property
    def distinct(self) -> int:
        """How many different engines (settings) there are."""
        return len({id(e) for e in (self.default, *self._by_brand.values())})
