"""The records brandmon reads and writes: posts (from producers), scored posts (for analysts)
and dead letters (for whoever fixes the producer).

All three are JSON on the wire, UTF-8, one record per Kafka message, key = brand (dead
letters keep the original key).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

Label = Literal["negative", "neutral", "positive"]


def _utc(value: datetime) -> datetime:
    """Timestamps without a zone are taken as UTC; all are stored in UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
#: Text is kept as sent (no stripping); any length is accepted: the classifier truncates to the
#: model's maximum sequence length, so an over-long post is scored on its beginning.
PostText = Annotated[str, AfterValidator(_not_blank)]


class Post(BaseModel):
    """A social post as producers write it to the `posts` topic.

    `created_at` is the post's event time (ISO 8601, e.g. "2026-11-22T06:00:00Z"; without a
    zone it is taken as UTC; a number is Unix seconds); it drives the alert buckets. `id` must
    be stable: it is the deduplication key downstream.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", strict=False)

    id: NonBlank = Field(max_length=512)
    text: PostText
    brand: NonBlank = Field(max_length=256)
    created_at: UtcDatetime
    author: str | None = Field(None, max_length=512)
    lang: str | None = Field(None, max_length=16)
    source: str | None = Field(None, max_length=128)
    url: str | None = Field(None, max_length=4096)


class Scores(BaseModel):
    """Probability of each canonical class; a binary model reports neutral as 0."""

    model_config = ConfigDict(frozen=True)

    negative: float
    neutral: float
    positive: float


class ScoredPost(Post):
    """One record on `posts.scored` per valid input post: the post plus its sentiment."""

    label: Label
    scores: Scores
    model_id: str
    model_version: str
    scored_at: UtcDatetime


class DeadLetter(BaseModel):
    """A record that could not be scored, with why and where it came from."""

    model_config = ConfigDict(frozen=True)

    reason: str = Field(description="Short machine-readable cause, e.g. invalid_json.")
    detail: str = Field(description="Human-readable explanation.")
    topic: str
    partition: int
    offset: int
    key_b64: str | None = Field(None, description="Original key, base64.")
    value_b64: str = Field(description="Original value bytes, base64.")
    failed_at: UtcDatetime
