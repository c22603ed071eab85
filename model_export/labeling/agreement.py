"""How far annotators agree, and one label per post from several.

Posts get different numbers of annotators (one, two, five), so agreement is Krippendorff's
alpha for nominal data, which takes any number of values per unit and ignores units with
fewer than two; Fleiss' kappa assumes the same number of raters everywhere. Next to it the
plain percent agreement: the share of annotator pairs on one post that gave the same label.

Reference: K. Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011), whose
nominal example (alpha = 0.743) tests/model_export/labeling/test_agreement.py checks.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from itertools import product


def _pairable(units: Sequence[Sequence[Hashable]]) -> list[Counter[Hashable]]:
    return [Counter(values) for values in units if len(values) >= 2]


def krippendorff_alpha_nominal(units: Sequence[Sequence[Hashable]]) -> float | None:
    """Krippendorff's alpha of nominal values, one sequence of values per unit (post).

    None when it is undefined: no unit has two values, or every value is the same (no
    disagreement is possible to expect).
    """
    counted = _pairable(units)
    coincidences: defaultdict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for counts in counted:
        total = sum(counts.values())
        for c, k in product(counts, repeat=2):
            pairs = counts[c] * (counts[k] - (1 if c == k else 0))
            coincidences[c, k] += pairs / (total - 1)
    marginals: defaultdict[Hashable, float] = defaultdict(float)
    for (c, _), value in coincidences.items():
        marginals[c] += value
    n = sum(marginals.values())
    observed = sum(v for (c, k), v in coincidences.items() if c != k)
    expected = sum(marginals[c] * marginals[k] for c, k in product(marginals, repeat=2) if c != k)
    if n <= 1 or expected == 0:
        return None
    return 1.0 - (n - 1) * observed / expected


def percent_agreement(units: Sequence[Sequence[Hashable]]) -> float | None:
    """Share of annotator pairs on the same unit that agree; None with no such pair."""
    agreeing = pairs = 0
    for counts in _pairable(units):
        total = sum(counts.values())
        pairs += total * (total - 1)
        agreeing += sum(m * (m - 1) for m in counts.values())
    return agreeing / pairs if pairs else None


def majority(labels: Sequence[str]) -> str | None:
    """The label most annotators gave; None on a tie for first place or no labels."""
    ranked = Counter(labels).most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


@dataclass(frozen=True)
class AgreementReport:
    """Agreement over the posts that two or more annotators labeled."""

    multi_annotated: int
    percent: float | None
    alpha: float | None

    @classmethod
    def of(cls, units: Sequence[Sequence[str]]) -> AgreementReport:
        return cls(
            multi_annotated=sum(1 for u in units if len(u) >= 2),
            percent=percent_agreement(units),
            alpha=krippendorff_alpha_nominal(units),
        )
