"""Whatever the bytes, parse_post and parse_scored return a record or raise RecordRejected with a
documented reason; an accepted record is written back as JSON and reads back equal.

The strategies write JSON text themselves, so they can hold what json.dumps never writes: NaN
and Infinity, 5,000-digit integers, lone surrogate escapes, raw control characters, thousands of
nesting levels, and valid post fields mixed with all of these.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Callable
from datetime import timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brandmon.contracts.posts import EARLIEST_TIME, LATEST_TIME, Post, ScoredPost
from brandmon.contracts.records import (
    MAX_DETAIL_CHARS,
    PARSE_REASONS,
    RawRecord,
    RecordRejected,
    dead_letter,
    parse_post,
    parse_scored,
)
from tests.contracts.test_posts_parsing import NOW, scored

# A few seconds in all on a shared 2-core machine; CI derandomizes them (profile "ci").
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- JSON text, fragment by fragment ---------------------------------------------------------

string_pieces = st.one_of(
    st.text(max_size=6).map(lambda s: json.dumps(s, ensure_ascii=False)[1:-1]),
    st.integers(0xD800, 0xDFFF).map(lambda c: f"\\u{c:04x}"),  # half of a pair, or a stray one
    st.sampled_from(
        ["\\ud83d\\ude00", "\\u0000", "\\n", "\\u001b", "\\u200b", "\\u2028", "\\ufeff", "\\u202e"]
    ),
    st.sampled_from(["\x00", "\x1f", "\n"]),  # raw control characters: not JSON
    st.sampled_from(["[", "{", "]", "}", '\\"', "\\\\"]),  # brackets and escapes inside strings
)
strings = st.lists(string_pieces, max_size=5).map(lambda ps: '"' + "".join(ps) + '"')
numbers = st.one_of(
    st.integers().map(str),
    st.integers(1, 6000).map(lambda n: "9" * n),
    st.integers(1, 400).map(lambda n: "-" + "1" * n),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(
        ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1e-999", "1e308", "-0", "0.5e+3"]
    ),
)
scalars = st.one_of(st.sampled_from(["null", "true", "false"]), numbers, strings)


def _array(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


def _object(pairs: list[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"


values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(_array),
        st.lists(st.tuples(strings, inner), max_size=4).map(_object),
    ),
    max_leaves=10,
)


def _deep(depth: int, kind: str, closed: bool) -> str:
    opening, closing = ("[", "]") if kind == "array" else ('{"a": ', "}")
    return opening * depth + "1" + (closing * depth if closed else "")


deep_values = st.builds(
    _deep, st.integers(1, 3000), st.sampled_from(["array", "object"]), st.booleans()
)


def _json_number(number: float) -> str:
    """A float as JSON text, with the literals Python's json writes for NaN and infinities."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return repr(number)


offsets = st.builds(
    timezone, st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timedelta(minutes=m))
)
times = st.one_of(
    st.datetimes(timezones=st.one_of(st.none(), offsets)).map(lambda t: json.dumps(t.isoformat())),
    st.floats().map(_json_number),
    st.integers(-(10**20), 10**20).map(str),
    st.integers(-(10**12), 10**12).map(lambda n: json.dumps(str(n))),
    st.sampled_from(['"0001-01-01T00:00:00Z"', '"9999-12-31T23:59:59-05:00"', "true", '""']),
)
any_text = st.text(st.characters(exclude_categories=()), max_size=12)  # surrogates included
names = st.one_of(
    st.sampled_from(["acme", " acme ", "Café ☕"]).map(json.dumps),
    any_text.map(json.dumps),  # json.dumps writes a lone surrogate as a \udXXX escape
    strings,
)
hostile = st.one_of(
    values,
    deep_values,
    names,
    times,
    any_text.map(json.dumps),
    st.sampled_from(['"\\ud83d"', '"a\\nb"', '"\\u200b"', '"x\\u202e"', '" \\u2060 "', "NaN"]),
)


def _document(fields: dict[str, str]) -> bytes:
    return _object([(json.dumps(k), v) for k, v in fields.items()]).encode()


# --- valid records, then the same with one or two fields replaced by hostile values -----------

EARLIEST_SECONDS, LATEST_SECONDS = EARLIEST_TIME.timestamp(), LATEST_TIME.timestamp()
plausible_times = st.one_of(
    st.datetimes(
        min_value=EARLIEST_TIME.replace(tzinfo=None) + timedelta(days=1),
        max_value=LATEST_TIME.replace(tzinfo=None) - timedelta(days=1),
        timezones=st.one_of(st.none(), offsets),
    ).map(lambda t: json.dumps(t.isoformat())),
    st.floats(EARLIEST_SECONDS, LATEST_SECONDS, exclude_max=True).map(repr),
    st.integers(int(EARLIEST_SECONDS), int(LATEST_SECONDS) - 1).map(str),
)
plain_names = st.text(st.characters(categories=["L", "N", "P", "S"]), min_size=1, max_size=12)
valid_posts = st.fixed_dictionaries(
    {
        "id": plain_names.map(json.dumps),
        "text": st.text(min_size=1, max_size=30).map(json.dumps),
        "brand": plain_names.map(json.dumps),
        "created_at": plausible_times,
    },
    optional={"author": st.text(max_size=12).map(json.dumps), "likes": values},
)
valid_scored = st.fixed_dictionaries(
    {
        "label": st.sampled_from(['"negative"', '"neutral"', '"positive"']),
        "scores": st.fixed_dictionaries(
            dict.fromkeys(("negative", "neutral", "positive"), st.floats(0, 1).map(repr))
        ).map(lambda scores: _document(scores).decode()),
        "model_id": plain_names.map(json.dumps),
        "model_version": plain_names.map(json.dumps),
        "scored_at": plausible_times,
    }
)
POST_FIELDS = ["id", "text", "brand", "created_at", "author", "lang", "source", "url", "likes"]
SCORED_FIELDS = [*POST_FIELDS, "label", "scores", "model_id", "model_version", "scored_at"]


def _with(replaced: list[tuple[str, str]]) -> Callable[[dict[str, str]], bytes]:
    return lambda fields: _document({**fields, **dict(replaced)})


def _hostile(
    valid: st.SearchStrategy[dict[str, str]], fields: list[str]
) -> st.SearchStrategy[bytes]:
    """`valid` records with up to two fields (known, ignored, or a surrogate key) replaced."""
    replaced = st.lists(st.tuples(st.sampled_from([*fields, "\ud800"]), hostile), max_size=2)
    return st.builds(lambda fields, swap: _with(swap)(fields), valid, replaced)


hostile_posts = _hostile(valid_posts, POST_FIELDS)
hostile_scored = _hostile(
    st.builds(lambda post, extra: {**post, **extra}, valid_posts, valid_scored), SCORED_FIELDS
)


# --- what must hold for every input ---------------------------------------------------------


def _outcome(parse: Callable[[bytes | None], Post], value: bytes | None) -> Post | None:
    """The parsed record, or None after checking the rejection; any other exception fails."""
    try:
        return parse(value)
    except RecordRejected as exc:
        assert exc.reason in PARSE_REASONS
        assert 0 < len(exc.detail) <= MAX_DETAIL_CHARS
        letter = dead_letter(RawRecord("posts", 0, 1, b"k", value), exc.reason, exc.detail, NOW)
        assert type(letter).model_validate_json(letter.model_dump_json()) == letter
        return None


def _assert_sound(record: Post) -> None:
    """An accepted record keeps the promises later stages rely on, and round-trips."""
    assert EARLIEST_TIME <= record.created_at < LATEST_TIME
    for name in (record.id, record.brand):
        assert name == name.strip()
        assert not {unicodedata.category(c) for c in name} & {"Cc", "Cf", "Zl", "Zp", "Cs"}
    as_scored = record if isinstance(record, ScoredPost) else scored(record)
    wire = as_scored.model_dump_json().encode()
    assert ScoredPost.model_validate_json(wire) == as_scored
    assert parse_scored(wire) == as_scored
    assert parse_post(wire) == Post.model_validate(as_scored.model_dump())


def check_post(value: bytes | None) -> None:
    post = _outcome(parse_post, value)
    if post is not None:
        _assert_sound(post)


def check_scored(value: bytes | None) -> None:
    record = _outcome(parse_scored, value)
    if record is not None:
        _assert_sound(record)


@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes(value: bytes) -> None:
    check_post(value)
    check_scored(value)


@FAST
@given(values | deep_values)
def test_arbitrary_json_text(text: str) -> None:
    check_post(text.encode())
    check_scored(text.encode())


@FAST
@given(hostile_posts)
def test_valid_post_fields_mixed_with_hostile_values(value: bytes) -> None:
    check_post(value)


@FAST
@given(hostile_scored)
def test_valid_scored_fields_mixed_with_hostile_values(value: bytes) -> None:
    check_scored(value)
