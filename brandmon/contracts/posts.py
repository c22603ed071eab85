"""The records brandmon reads and writes: posts (from producers), scored posts (for analysts)
and dead letters (for whoever fixes the producer).

All three are JSON on the wire, UTF-8, one record per Kafka message, key = brand (dead
letters keep the original key).

The models refuse what would break a later stage, each with a named error type that becomes the
dead letter's reason (see `SCHEMA_REASONS`): a lone UTF-16 surrogate in any string (it cannot be
written back as UTF-8), a text with nothing visible, control or format characters in `id` and
`brand` (the brand is the Kafka key and goes into logs and chat messages), and times that cannot
be represented in UTC. Records read from a topic must also have plausible times, within
[`EARLIEST_TIME`, `LATEST_TIME`) (`implausible_time`); records built in code may hold any time
that datetime can represent, so the alert engine can be tested at the ends of time.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

Label = Literal["negative", "neutral", "positive"]


#: The plausible range of a record's times, [EARLIEST_TIME, LATEST_TIME) in UTC. Social posts
#: from before 2000 do not exist in any feed this monitors; a time past 2100 is a unit or clock
#: bug (milliseconds sent as seconds). Bounding it also keeps every later computation (a window
#: start an hour earlier, a conversion to another zone) far from datetime's year 1 and year 9999.
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2100, 1, 1, tzinfo=UTC)

#: Error types of the validators below; each is also the dead-letter reason for that failure.
INVALID_UNICODE = "invalid_unicode"
EMPTY_TEXT = "empty_text"
CONTROL_CHARACTER = "control_character"
TIME_OUT_OF_RANGE = "time_out_of_range"
SCHEMA_REASONS = frozenset({INVALID_UNICODE, EMPTY_TEXT, CONTROL_CHARACTER, TIME_OUT_OF_RANGE})

_SURROGATE = re.compile("[\ud800-\udfff]")
#: Unicode categories that render as nothing: controls, format characters (zero-width space and
#: joiners, word joiner, BOM, bidi marks, tags), spaces, line and paragraph separators.
_BLANK_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
#: Default-ignorable or blank characters filed under other categories: combining grapheme
#: joiner, Hangul fillers, Khmer inherent vowels, Mongolian and other variation selectors,
#: braille blank.
_BLANK_OTHERS = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u2800\u3164\uffa0"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)
#: What may not appear in an id or a brand: controls (a newline forges a log line), format
#: characters (bidi overrides, zero-width joiners make look-alikes) and line separators.
_FORBIDDEN_IN_NAMES = frozenset({"Cc", "Cf", "Zl", "Zp"})
#: A JSON string that is only a decimal number is a number of seconds, like a JSON number.
_DECIMAL = re.compile(r"[+-]?\d+(?:\.\d+)?", re.ASCII)


def _range_text() -> str:
    return (
        f"records must be from {EARLIEST_TIME:%Y-%m-%dT%H:%M:%SZ} inclusive "
        f"to {LATEST_TIME:%Y-%m-%dT%H:%M:%SZ} exclusive (UTC)"
    )


def _unrepresentable(what: str) -> PydanticCustomError:
    return PydanticCustomError(
        TIME_OUT_OF_RANGE,
        f"{what} cannot be represented in UTC (years 1 to 9999); {_range_text()}",
    )


def _utc(value: datetime) -> datetime:
    """Timestamps without a zone are taken as UTC; all are stored in UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:00-05:00 is in year 10000 in UTC
        raise _unrepresentable(value.isoformat()) from exc


def _valid_unicode(value: str) -> str:
    found = _SURROGATE.search(value)
    if found:
        raise PydanticCustomError(
            INVALID_UNICODE,
            f"contains a lone UTF-16 surrogate (U+{ord(found.group()):04X} at index "
            f"{found.start()}); a character outside the BMP must be a \\uD8xx\\uDCxx pair",
        )
    return value


def _is_blank(char: str) -> bool:
    return unicodedata.category(char) in _BLANK_CATEGORIES or char in _BLANK_OTHERS


def _has_visible(value: str) -> str:
    if all(_is_blank(char) for char in value.strip()):
        raise PydanticCustomError(
            EMPTY_TEXT,
            "is empty or only whitespace, zero-width, control or format characters",
        )
    return value


def _no_control(value: str) -> str:
    if value.isprintable():  # fast path; the check below also allows other spaces
        return value
    for index, char in enumerate(value):
        if unicodedata.category(char) in _FORBIDDEN_IN_NAMES:
            raise PydanticCustomError(
                CONTROL_CHARACTER,
                f"contains the control or format character U+{ord(char):04X} at index {index}",
            )
    return value


def _seconds_to_time(value: object) -> object:
    """JSON numbers (and decimal strings) are Unix seconds; anything else goes on to pydantic."""
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        value = float(value)  # a huge one becomes inf, refused below
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:  # NaN, inf, beyond year 9999
        shown = f"{value:.6g}" if isinstance(value, float) or abs(value) < 10**300 else "huge"
        raise _unrepresentable(f"{shown} seconds since the epoch") from exc


#: A datetime stored in UTC, without a range: for times brandmon's own clock writes.
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
#: A datetime from a record: ISO 8601 or Unix seconds, stored in UTC.
RecordTime = Annotated[datetime, BeforeValidator(_seconds_to_time), AfterValidator(_utc)]
#: Any string from a record: it must be writable as UTF-8 again.
Utf8Str = Annotated[str, AfterValidator(_valid_unicode)]
#: An identifier (post id, brand): trimmed, not empty, no control or format characters.
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1),
    AfterValidator(_valid_unicode),
    AfterValidator(_no_control),
]
#: Text is kept as sent (no stripping); any length is accepted: the classifier truncates to the
#: model's maximum sequence length, so an over-long post is scored on its beginning.
PostText = Annotated[str, AfterValidator(_valid_unicode), AfterValidator(_has_visible)]


class Post(BaseModel):
    """A social post as producers write it to the `posts` topic.

    `created_at` is the post's event time (ISO 8601, e.g. "2026-11-22T06:00:00Z"; without a
    zone it is taken as UTC; a number is Unix seconds; read from a topic, it must be from
    2000-01-01 inclusive to 2100-01-01 exclusive, UTC); it drives the alert buckets. `id` must
    be stable: it is the deduplication key downstream.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", strict=False)

    id: Name = Field(max_length=512)
    text: PostText
    brand: Name = Field(max_length=256)
    created_at: RecordTime
    author: Utf8Str | None = Field(None, max_length=512)
    lang: Utf8Str | None = Field(None, max_length=16)
    source: Utf8Str | None = Field(None, max_length=128)
    url: Utf8Str | None = Field(None, max_length=4096)


class Scores(BaseModel):
    """Probability of each canonical class; a binary model reports neutral as 0."""

    model_config = ConfigDict(frozen=True)

    negative: float
    neutral: float
    positive: float


#: `unscored_reason` of a post in a language no configured model reads (docs/languages.md).
NO_MODEL_FOR_LANGUAGE = "no_model_for_language"


class ScoredPost(Post):
    """One record on `posts.scored` per valid input post: the post plus its sentiment.

    `lang` is the language the score stage found (`und` when it could not tell; the producer's
    own value is kept in `lang_hint`), `lang_confidence` the detector's probability for it.
    A post that no model reads is still written, unscored: `label` and `scores` are null,
    `unscored_reason` says why, and `model_id`/`model_version` are empty. Records written
    before language routing have no `lang_confidence` and their `lang` is the producer's.
    """

    label: Label | None = None
    scores: Scores | None = None
    model_id: Utf8Str
    model_version: Utf8Str
    scored_at: RecordTime
    lang_confidence: float | None = Field(None, ge=0, le=1)
    lang_hint: Utf8Str | None = Field(None, max_length=16)
    unscored_reason: Utf8Str | None = Field(None, max_length=64)

    @model_validator(mode="after")
    def _scored_or_says_why(self) -> ScoredPost:
        if (self.label is None) != (self.scores is None):
            raise ValueError("label and scores are both set or both null")
        if (self.label is None) != (self.unscored_reason is not None):
            raise ValueError("a record without a label needs an unscored_reason, and only it")
        return self

    @property
    def scored(self) -> bool:
        """Whether a model read this post (False: counted apart, never in sentiment)."""
        return self.label is not None


def implausible_time(record: Post) -> str | None:
    """Why a record read from a topic has a time outside [EARLIEST_TIME, LATEST_TIME), or None."""
    times = {"created_at": record.created_at}
    if isinstance(record, ScoredPost):
        times["scored_at"] = record.scored_at
    for name, value in times.items():
        if not EARLIEST_TIME <= value < LATEST_TIME:
            return f"field {name!r}: {value.isoformat()} is implausible; {_range_text()}"
    return None


class DeadLetter(BaseModel):
    """A record that could not be scored, with why and where it came from."""

    model_config = ConfigDict(frozen=True)

    reason: str = Field(description="Short machine-readable cause, e.g. invalid_json.")
    detail: str = Field(description="Human-readable explanation.")
    topic: str
    partition: int
    offset: int
    key_b64: str | None = Field(None, description="Original key, base64.")
    value_b64: str = Field(
        description="Original value bytes, base64; only a prefix when `truncated` is true."
    )
    failed_at: UtcDatetime
    id: str = Field("", description="Stable id for deduplication: topic/partition/offset.")
    original_size: int = Field(0, description="Size of the original value in bytes.")
    sha256: str = Field("", description="SHA-256 of the whole original value, hex.")
    truncated: bool = Field(False, description="value_b64 holds only a prefix of the value.")
