"""Scored posts for the labeling tests, as the score worker writes them to posts.scored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from brandmon.contracts.posts import ScoredPost

T0 = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
LABELS = ("negative", "neutral", "positive")


def scored(
    post_id: str,
    text: str,
    probs: tuple[float, float, float] = (0.1, 0.1, 0.8),
    brand: str = "acme",
    hours: float = 0.0,
) -> ScoredPost:
    """A scored post; its label is the most probable class of `probs` (neg, neu, pos)."""
    return ScoredPost(
        id=post_id,
        text=text,
        brand=brand,
        created_at=T0 + timedelta(hours=hours),
        label=LABELS[max(range(3), key=lambda i: probs[i])],
        scores={"negative": probs[0], "neutral": probs[1], "positive": probs[2]},
        model_id="brandmon-sentiment-minilm@0.1.0",  # name@version, as the score worker writes
        model_version="0.1.0",
        scored_at=T0 + timedelta(hours=hours, seconds=1),
    )


def write_jsonl(path: Path, posts: list[ScoredPost], extra_lines: tuple[str, ...] = ()) -> Path:
    """The posts as the posts.scored records (one JSON object a line), plus raw extra lines."""
    rows = [post.model_dump_json() for post in posts]
    path.write_text("\n".join([*rows, *extra_lines]) + "\n", encoding="utf-8")
    return path
