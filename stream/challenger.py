"""A challenger model beside the champion: shadow and split scoring (pure parts).

    shadow   every post is scored by both models; the champion's record goes to
             posts.scored as always, the challenger's (same post id, its own model_id and
             model_version) to BRANDMON_TOPIC_SCORED_SHADOW; each pair is counted in
             brandmon_shadow_comparisons_total by (champion_label, challenger_label)
    split    a stable hash of the brand sends BRANDMON_CHALLENGER_SHARE of the brands to the
             challenger; its records go to posts.scored, each naming the model that scored it

Policy on a challenger failure: the challenger never costs the champion a record nor holds
it back. A challenger call that raises is counted in brandmon_challenger_errors_total{mode}
and not retried; in shadow mode that batch has no shadow records, in split mode the
challenger's posts of that batch are scored by the champion (their records name it).

The scoring itself is in `BatchScorer` (stream/scoring.py), which reads its `challenger`
once per batch; with none set it does exactly what it did before. Loading and validating the
challenger is stream/rollout.py's `load_challenger`, the checks of a promotion.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from brandmon.contracts.classifier import Classifier
from brandmon.contracts.posts import ScoredPost
from brandmon.metrics import Metrics
from brandmon.settings import ChallengerMode

#: The roles of brandmon_model_info and brandmon_role_predictions_total.
CHAMPION = "champion"
CHALLENGER = "challenger"
#: The buckets of the brand hash: 2**64, so a share is honoured to far below one brand in a
#: billion.
_BUCKETS = 2**64


def brand_bucket(brand: str) -> float:
    """Where `brand` falls in [0, 1): the first 8 bytes of its UTF-8 sha256. The same brand
    gets the same number in every process, on every machine, after every restart (unlike
    Python's `hash`, which is salted per process)."""
    digest = hashlib.sha256(brand.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / _BUCKETS


def scored_by_challenger(brand: str, share: float) -> bool:
    """Split mode: whether the challenger scores `brand`'s posts. Raising the share only adds
    brands to the challenger's; none moves back to the champion."""
    return brand_bucket(brand) < share


@dataclass(frozen=True)
class Challenger:
    """The loaded challenger and how it is used; `BatchScorer.challenger` holds one or None."""

    classifier: Classifier
    mode: ChallengerMode
    share: float
    path: Path

    @property
    def model(self) -> tuple[str, str]:
        return (self.classifier.model_id, self.classifier.model_version)

    def about(self) -> dict[str, object]:
        """The challenger fields of /ready."""
        return {
            "model_id": self.classifier.model_id,
            "model_version": self.classifier.model_version,
            "model_path": str(self.path),
            "mode": self.mode,
            "share": self.share if self.mode == "split" else 1.0,
        }


@dataclass(frozen=True)
class ShadowPair:
    """One post scored by both models in shadow mode (the challenger's record is `shadow`)."""

    champion: ScoredPost
    shadow: ScoredPost


def count_comparisons(metrics: Metrics, pairs: Iterable[ShadowPair]) -> None:
    """brandmon_shadow_comparisons_total: one per pair, by both labels and whether they agree."""
    for pair in pairs:
        ours, theirs = pair.champion.label, pair.shadow.label
        metrics.shadow_comparisons.labels(
            champion_label=ours,
            challenger_label=theirs,
            agreement="agree" if ours == theirs else "disagree",
        ).inc()


def role_of(post: ScoredPost, challenger_model: tuple[str, str] | None) -> str:
    """Which role's model scored `post` (the challenger's model id and version, when set)."""
    if challenger_model is not None and (post.model_id, post.model_version) == challenger_model:
        return CHALLENGER
    return CHAMPION
