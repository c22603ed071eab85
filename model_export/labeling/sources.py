"""Where scored posts for labeling come from: a JSONL file of `posts.scored` records, or the
topic itself, read once from the beginning up to a limit or a timeout.

Both read each record by the contract's own rules (`parse_scored`), so a line the alert
stage would reject is skipped here too and counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from brandmon.contracts.posts import ScoredPost
from brandmon.contracts.records import RecordRejected, parse_scored
from brandmon.settings import Settings


class SourceError(RuntimeError):
    """The scored posts cannot be read at all (missing file, unreachable broker)."""


@dataclass
class Rejections:
    """Records skipped because they are not valid scored posts: count and first reasons."""

    count: int = 0
    first: str = ""

    def add(self, where: str, exc: RecordRejected) -> None:
        self.count += 1
        if not self.first:
            self.first = f"{where}: {exc.reason}: {exc.detail}"


def from_jsonl(path: Path, rejected: Rejections) -> Iterator[ScoredPost]:
    """The valid scored posts of a JSONL file; blank lines ignored, bad ones counted."""
    if not path.is_file():
        raise SourceError(f"{path} does not exist: give a JSONL file of posts.scored records")
    try:
        with path.open("rb") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    yield parse_scored(line)
                except RecordRejected as exc:
                    rejected.add(f"{path}:{lineno}", exc)
    except OSError as exc:
        raise SourceError(f"{path} cannot be read: {exc}") from exc


def from_topic(
    settings: Settings, limit: int, timeout: float, rejected: Rejections
) -> Iterator[ScoredPost]:
    """Up to `limit` valid scored posts from the start of settings.topic_scored, stopping
    after `timeout` seconds in all or 5 idle seconds. Reads without a consumer group, so
    the workers' positions are never moved."""
    from brandmon.kafka_io import BrokerUnreachableError, check_broker, consume

    try:
        check_broker(settings)
    except BrokerUnreachableError as exc:
        raise SourceError(str(exc)) from exc
    read = 0
    for record in consume(settings, [settings.topic_scored], idle_timeout=5.0, timeout=timeout):
        try:
            yield parse_scored(record.value)
        except RecordRejected as exc:
            rejected.add(f"{record.topic}/{record.partition}/{record.offset}", exc)
            continue
        read += 1
        if read >= limit:
            return
