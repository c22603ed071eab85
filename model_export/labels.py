"""The label canon: map each model's own labels onto negative / neutral / positive.

Known schemes (matched case-insensitively, whole label):

- names: ``negative``/``neutral``/``positive`` and the short forms ``neg``/``neu``/``pos``
  (covers SST-2 models' ``NEGATIVE``/``POSITIVE``);
- stars: ``1 star`` .. ``5 stars`` -> 1-2 negative, 3 neutral, 4-5 positive;
- ``LABEL_n``, which carries no meaning by itself, by the order the model cards document:
  two labels = ``LABEL_0`` negative, ``LABEL_1`` positive (GLUE SST-2 order); three labels =
  negative, neutral, positive (cardiffnlp/twitter-roberta-base-sentiment).

Anything else is an UnknownLabelError; ``--label-map LABEL_0=negative,...`` overrides or
completes the map. The map must reach both negative and positive.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from brandmon.contracts.manifest import CANONICAL_LABELS
from brandmon.model_export.errors import UnknownLabelError

_NAMES: dict[str, str] = {
    "negative": "negative",
    "neg": "negative",
    "neutral": "neutral",
    "neu": "neutral",
    "positive": "positive",
    "pos": "positive",
}
_STARS = re.compile(r"^([1-5])\s*stars?$")
_STAR_CANON = {1: "negative", 2: "negative", 3: "neutral", 4: "positive", 5: "positive"}
_GENERIC = re.compile(r"^label_(\d+)$")
#: Documented LABEL_n orders, by number of labels.
GENERIC_ORDERS: dict[int, tuple[str, ...]] = {
    2: ("negative", "positive"),
    3: ("negative", "neutral", "positive"),
}


def parse_label_map(spec: str) -> dict[str, str]:
    """Parse ``'LABEL_0=negative,LABEL_1=positive'``; raise ValueError saying what is wrong."""
    result: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        source, sep, target = part.partition("=")
        source, target = source.strip(), target.strip().lower()
        if not sep or not source:
            raise ValueError(f"{part!r} is not LABEL=canonical (e.g. LABEL_0=negative)")
        if target not in CANONICAL_LABELS:
            raise ValueError(f"{part!r}: the target must be one of {', '.join(CANONICAL_LABELS)}")
        result[source] = target
    if not result:
        raise ValueError("empty --label-map: give e.g. LABEL_0=negative,LABEL_1=positive")
    return result


def canonical_label(label: str, n_labels: int) -> str | None:
    """The canonical label a known scheme gives `label`, or None when no scheme knows it."""
    key = label.strip().lower()
    if key in _NAMES:
        return _NAMES[key]
    stars = _STARS.match(key)
    if stars:
        return _STAR_CANON[int(stars.group(1))]
    generic = _GENERIC.match(key)
    if generic and n_labels in GENERIC_ORDERS:
        index = int(generic.group(1))
        order = GENERIC_ORDERS[n_labels]
        return order[index] if index < len(order) else None
    return None


def build_label_map(
    labels: Sequence[str], overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Original label -> canonical label for every label of the model (in output order)."""
    overrides = dict(overrides or {})
    stray = sorted(set(overrides) - set(labels))
    if stray:
        raise UnknownLabelError(
            f"--label-map names {stray}, which the model does not have; "
            f"its labels are {list(labels)}"
        )
    mapping: dict[str, str] = {}
    unknown: list[str] = []
    for label in labels:
        target = overrides.get(label) or canonical_label(label, len(labels))
        if target is None:
            unknown.append(label)
        else:
            mapping[label] = target
    if unknown:
        raise UnknownLabelError(
            f"no known meaning for label(s) {unknown} of {list(labels)}: give --label-map, "
            f"e.g. --label-map {','.join(f'{lab}=negative' for lab in unknown[:1])},..."
        )
    _check_reaches_both(mapping)
    return mapping


def _check_reaches_both(mapping: Mapping[str, str]) -> None:
    reached = set(mapping.values())
    missing = [c for c in ("negative", "positive") if c not in reached]
    if missing:
        raise UnknownLabelError(
            f"label map {dict(mapping)} has no {' or '.join(missing)} output: a sentiment "
            "model needs both; fix --label-map"
        )
