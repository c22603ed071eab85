"""Records the alert stage writes: `Alert` (topic `alerts`) and `BrandBucket` (`brand.sentiment`).

Both are JSON, one record per Kafka message, key = brand. Every time in them is event time
(the posts' `created_at`), never the worker's clock, so a replay writes identical records.

Counting rules used in both (see docs of `alerts.buckets`):
- `posts` / `negatives` are raw counts of scored posts.
- a *voice* is one author (all their posts in the window) or, for a post without an author,
  one distinct text; exact duplicate texts inside the window are counted once. `voices`,
  `negative_voices` and `share` = negative_voices / voices are what the detector judges.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Severity = Literal["info", "warning", "critical"]
Action = Literal["trigger", "resolve"]
#: Which test fired: z-score + Wilson against the baseline, the static warm-up rule, the
#: volume of voices far above the brand's normal for that hour (mention_surge: its own
#: incidents, dedup_key brandmon/<brand>/surge/<start>), the quiet period that resolves, or a
#: manual test (`brandmon alerts test-notify`).
Rule = Literal["baseline", "warmup", "mention_surge", "quiet", "test"]

SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
SCHEMA_VERSION = 1


class WindowCounts(BaseModel):
    """What was counted over one evaluation window."""

    model_config = ConfigDict(frozen=True)

    posts: int = Field(description="Scored posts (raw).")
    negatives: int = Field(description="Negative posts (raw).")
    voices: int = Field(description="Distinct authors plus distinct author-less texts.")
    negative_voices: int = Field(description="Voices with at least one negative post.")
    share: float | None = Field(description="negative_voices / voices; null with no voices.")
    distinct_authors: int = Field(description="Distinct authors among posts that name one.")
    duplicate_texts: int = Field(description="Posts dropped as exact duplicates of a text.")
    unscored: int = Field(
        0, description="Posts no model read (languages without a model); in no other count."
    )


class Alert(BaseModel):
    """One alert event on the `alerts` topic.

    An incident is the sequence of events sharing `dedup_key`: one `trigger`, at most one
    escalation (a second `trigger`, severity critical), then one `resolve`. `alert_id` is unique
    per event and stable across replays, so consumers can drop duplicates by it.
    """

    model_config = ConfigDict(frozen=True)

    schema_version: int = SCHEMA_VERSION
    alert_id: str
    dedup_key: str
    brand: str
    action: Action
    severity: Severity
    rule: Rule
    summary: str
    incident_start: AwareDatetime = Field(description="Start of the bucket that triggered.")
    evaluated_at: AwareDatetime = Field(description="Event time of this evaluation.")
    window_start: AwareDatetime
    window_end: AwareDatetime
    counts: WindowCounts
    baseline_share: float | None = Field(description="EW mean of the share; null in warm-up.")
    baseline_std: float | None
    baseline_voices: float | None = Field(description="EW mean of voices per window.")
    z: float | None = Field(
        description="(share - baseline) / max(std, floor); mention_surge: (voices - expected) "
        "/ sqrt(phi * expected)."
    )
    wilson_lower: float | None = Field(description="Lower end of the 95% Wilson interval.")
    threshold: float = Field(
        description="Level the Wilson lower bound had to exceed; mention_surge: the voices "
        "the window had to reach."
    )
    expected_voices: float | None = Field(
        None, description="mention_surge: voices expected in the window at that hour."
    )
    expected_negative_voices: float | None = Field(
        None, description="mention_surge: negative voices expected in the window."
    )
    sample_post_ids: list[str]
    topic_terms: list[str] = Field(
        default_factory=list,
        description="trigger only: words and phrases unusually frequent in the window's "
        "negative posts compared with the brand's normal, most unusual first.",
    )
    model_id: str
    model_version: str

    @staticmethod
    def make_id(dedup_key: str, action: str, severity: str, evaluated_at: datetime) -> str:
        """Stable id of one alert event."""
        raw = f"{dedup_key}|{action}|{severity}|{evaluated_at.isoformat()}"
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


class BrandBucket(BaseModel):
    """One closed event-time bucket of one brand, for analysts (`brand.sentiment`).

    Published for every closed bucket that holds posts; a bucket missing from the topic had
    none. The window fields describe the evaluation window that ends with this bucket.
    """

    model_config = ConfigDict(frozen=True)

    schema_version: int = SCHEMA_VERSION
    bucket_id: str = Field(description="brand|bucket_start, stable across replays.")
    brand: str
    bucket_start: AwareDatetime
    bucket_end: AwareDatetime
    posts: int
    negatives: int
    neutrals: int
    positives: int
    #: Posts of the bucket no model read (languages without a model); not in `posts`.
    unscored: int = 0
    window: WindowCounts
    baseline_share: float | None
    baseline_std: float | None
    z: float | None
    wilson_lower: float | None
    state: Literal["warmup", "normal", "incident"]
    late_events: int = Field(description="Late posts of this brand ignored so far.")
