"""Reading untrusted records: raw Kafka bytes in, a validated post (or scored post) out, or
a rejection with a reason code; and the dead letter that carries a rejected record.

The base layer's half of the record contracts (`brandmon.contracts.posts` holds the models):
both stages parse their input here, so a record that one stage writes the other reads by
the same rules. `parse_post` and `parse_scored` raise `RecordRejected` and nothing else,
whatever the bytes (property-tested in tests/stream/test_parse_properties.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

from pydantic import ValidationError

from brandmon.contracts.posts import (
    CONTROL_CHARACTER,
    EARLIEST_TIME,
    EMPTY_TEXT,
    INVALID_UNICODE,
    LATEST_TIME,
    SCHEMA_REASONS,
    TIME_OUT_OF_RANGE,
    DeadLetter,
    Post,
    ScoredPost,
    implausible_time,
)


@dataclass(frozen=True)
class RawRecord:
    """One message as read from Kafka, before anything is trusted about it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None = None  # the message's Kafka timestamp, seconds since the epoch

    @property
    def source(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


#: Posts are flat; nesting only ever appears in fields brandmon ignores. 64 levels is far more
#: than any producer sends, and far below the depth at which json's recursive decoder runs out
#: of Python stack (about 1,000 frames, fewer inside a Faust agent).
MAX_JSON_DEPTH = 64
#: Longest integer literal accepted, in digits: any such integer still converts to a float (a
#: double reaches about 1.8e308), and parsing stays far below Python's 4,300-digit limit, past
#: which int() raises ValueError. Numbers beyond a double are not interoperable JSON anyway.
MAX_INT_DIGITS = 300
#: Longest detail a rejection carries: enough to say what is wrong, never a copy of the input.
MAX_DETAIL_CHARS = 1000

#: Every reason parse_post and parse_scored reject a record with (the dead letter's `reason`).
PARSE_REASONS: Mapping[str, str] = {
    "empty_value": "the record has no value (null or zero bytes)",
    "invalid_utf8": "the value is not UTF-8",
    "too_deep": f"arrays or objects nest more than {MAX_JSON_DEPTH} levels deep",
    "invalid_json": "the value is not JSON text",
    "invalid_number": (
        f"NaN or Infinity, a number beyond a double's range, or an integer of more than "
        f"{MAX_INT_DIGITS} digits, in any field"
    ),
    "not_an_object": "the value is JSON, but not an object",
    "missing_field": "a required field is missing",
    "invalid_field": "a field has the wrong type, length or format",
    INVALID_UNICODE: "a string field holds a lone UTF-16 surrogate (half a character)",
    EMPTY_TEXT: "the text has nothing visible: only whitespace, zero-width, control or format",
    CONTROL_CHARACTER: "the id or brand holds a control, format or line-separator character",
    TIME_OUT_OF_RANGE: f"a time outside [{EARLIEST_TIME:%Y-%m-%d}, {LATEST_TIME:%Y-%m-%d}) UTC",
}

#: A JSON string literal, once its escaped backslashes and quotes are gone; an unterminated one
#: runs to the end of the value, so scanning stays linear however many quotes a value holds.
_STRING_LITERAL = re.compile(rb'"[^"]*"?')
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_JSON_TYPE_NAMES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def bounded_detail(detail: str) -> str:
    """`detail` cut to MAX_DETAIL_CHARS, with any lone surrogate escaped, so that it can go
    into a JSON record as it is."""
    safe = detail[:MAX_DETAIL_CHARS].encode("utf-8", "backslashreplace").decode("utf-8")
    if len(detail) > MAX_DETAIL_CHARS or len(safe) > MAX_DETAIL_CHARS:
        return safe[: MAX_DETAIL_CHARS - 1] + "…"
    return safe


class RecordRejected(ValueError):
    """A record that is not a valid post; `reason` is the DLQ reason code (one of
    PARSE_REASONS), `detail` a short explanation for whoever fixes the producer."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = bounded_detail(detail)
        super().__init__(f"{reason}: {self.detail}")


#: pydantic's own error types with a reason of their own (constrained strings refuse lone
#: surrogates before the schema's validators see them).
_PYDANTIC_REASONS = {"string_unicode": INVALID_UNICODE}


def _schema_reason(exc: ValidationError) -> tuple[str, str]:
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "record"
    if first["type"] == "missing":
        return "missing_field", f"required field {where!r} is missing"
    if first["type"] in SCHEMA_REASONS:
        reason = first["type"]
    else:
        reason = _PYDANTIC_REASONS.get(first["type"], "invalid_field")
    return reason, f"field {where!r}: {first['msg']}"


def _too_deep(value: bytes) -> bool:
    """Whether arrays and objects in `value` nest deeper than MAX_JSON_DEPTH (brackets inside
    strings do not count); checked before decoding, since json's decoder recurses."""
    if value.count(b"[") + value.count(b"{") <= MAX_JSON_DEPTH:
        return False
    # Escapes only occur in strings; dropping the escape pairs, left to right as a decoder reads
    # them, leaves every remaining quote a delimiter.
    unescaped = value.replace(b"\\\\", b"").replace(b'\\"', b"")
    depth = 0
    for bracket in _STRING_LITERAL.sub(b"", unescaped).translate(None, _NOT_BRACKETS):
        if bracket in b"[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        else:
            depth -= 1
    return False


def _refuse_constant(name: str) -> NoReturn:
    raise RecordRejected("invalid_number", f"{name} is not a JSON number; send a finite number")


def _bounded_int(literal: str) -> int:
    digits = len(literal) - literal.startswith("-")
    if digits > MAX_INT_DIGITS:
        raise RecordRejected(
            "invalid_number",
            f"an integer of {digits} digits; at most {MAX_INT_DIGITS} are accepted",
        )
    return int(literal)


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise RecordRejected("invalid_number", f"{literal[:40]} is beyond the range of a double")
    return number


#: The standard decoder, except that NaN, Infinity and numbers no double or int can carry are
#: refused instead of decoded (the json module accepts NaN and Infinity by default).
_DECODER = json.JSONDecoder(
    parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_refuse_constant
)


def _json_object(value: bytes | None) -> dict[str, Any]:
    """The JSON object in `value`: UTF-8, nested at most MAX_JSON_DEPTH deep, every number
    finite and of bounded size; or RecordRejected."""
    if not value:
        raise RecordRejected("empty_value", "the record has no value (null or empty)")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordRejected(
            "invalid_utf8", f"value is not UTF-8: {exc.reason} at byte {exc.start}"
        ) from exc
    too_deep = f"arrays or objects nest more than {MAX_JSON_DEPTH} levels deep"
    if _too_deep(value):
        raise RecordRejected("too_deep", too_deep)
    try:
        obj = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise RecordRejected(
            "invalid_json", f"value is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:  # called with the stack already nearly full
        raise RecordRejected("too_deep", too_deep) from exc
    if not isinstance(obj, dict):
        kind = _JSON_TYPE_NAMES[type(obj)]
        raise RecordRejected("not_an_object", f"value is JSON, but {kind}, not an object")
    return obj


_Record = TypeVar("_Record", bound=Post)


def _validated(model: type[_Record], obj: dict[str, Any]) -> _Record:
    try:
        record = model.model_validate(obj)
    except ValidationError as exc:
        raise RecordRejected(*_schema_reason(exc)) from exc
    implausible = implausible_time(record)
    if implausible is not None:
        raise RecordRejected(TIME_OUT_OF_RANGE, implausible)
    return record


def parse_post(value: bytes | None) -> Post:
    """Decode and validate one `posts` value. Raises RecordRejected, with a reason from
    PARSE_REASONS, and nothing else, whatever the bytes."""
    return _validated(Post, _json_object(value))


def parse_scored(value: bytes | None) -> ScoredPost:
    """Decode and validate one `posts.scored` value, with the same guarantee as parse_post."""
    return _validated(ScoredPost, _json_object(value))


#: Most bytes of the original value a dead letter carries (base64 makes it 4/3 larger): with
#: the rest of the record it stays well under Kafka's default 1 MB message limit.
DEAD_LETTER_MAX_VALUE = 512 * 1024
#: Most bytes of the original key a dead letter carries.
DEAD_LETTER_MAX_KEY = 1024


def dead_letter(
    record: RawRecord,
    reason: str,
    detail: str,
    now: datetime,
    max_value: int = DEAD_LETTER_MAX_VALUE,
) -> DeadLetter:
    """The dead letter of `record`: why, where from, and its bytes (a prefix when larger than
    `max_value`, with the original's size and sha256, so the record can be found and
    checked on the source topic)."""
    value = record.value or b""
    key = record.key[:DEAD_LETTER_MAX_KEY] if record.key is not None else None
    return DeadLetter(
        reason=reason,
        detail=bounded_detail(detail),
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key_b64=base64.b64encode(key).decode() if key is not None else None,
        value_b64=base64.b64encode(value[:max_value]).decode(),
        failed_at=now,
        id=record.source,
        original_size=len(value),
        sha256=hashlib.sha256(value).hexdigest(),
        truncated=len(value) > max_value,
    )


def bounded_dead_letter(record: RawRecord, reason: str, detail: str, max_value: int) -> DeadLetter:
    """A dead letter that keeps at most `max_value` bytes of the original (see dead_letter)."""
    return dead_letter(record, reason, detail, datetime.now(UTC), max_value=max_value)
