"""The posts contract as producers meet it: what is accepted, what is refused and why."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brandmon.contracts.posts import EARLIEST_TIME, LATEST_TIME, Post, ScoredPost, Scores
from brandmon.contracts.records import (
    MAX_DETAIL_CHARS,
    PARSE_REASONS,
    RawRecord,
    RecordRejected,
    dead_letter,
    parse_post,
    parse_scored,
)

NOW = datetime(2026, 11, 22, 6, 1, tzinfo=UTC)


def raw(**fields: object) -> bytes:
    base: dict[str, object] = {
        "id": "42",
        "text": "hello",
        "brand": "acme",
        "created_at": "2026-11-22T06:00:00Z",
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


def test_valid_post_keeps_optional_fields_and_normalises_time_to_utc() -> None:
    post = parse_post(raw(created_at="2026-11-22T08:00:00+02:00", author="ann", url="https://x"))
    assert post.created_at.isoformat() == "2026-11-22T06:00:00+00:00"
    assert post.author == "ann" and post.url == "https://x"


def test_time_without_zone_is_utc_and_numbers_are_unix_seconds() -> None:
    assert parse_post(raw(created_at="2026-11-22T06:00:00")).created_at.utcoffset() is not None
    six_am = datetime(2026, 11, 22, 6, tzinfo=UTC)
    assert parse_post(raw(created_at=1_795_327_200)).created_at == six_am
    assert parse_post(raw(created_at=1_795_327_200.5)).created_at == six_am.replace(
        microsecond=500_000
    )
    assert parse_post(raw(created_at="1795327200")).created_at == six_am


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty_value"),
        (None, "empty_value"),
        (b"\xff\xfe{", "invalid_utf8"),
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (raw(text=None), "missing_field"),
        (raw(brand=None), "missing_field"),
        (raw(created_at=None), "missing_field"),
        (raw(text="   "), "empty_text"),
        (raw(text=""), "empty_text"),
        (raw(text=12), "invalid_field"),
        (raw(created_at="yesterday"), "invalid_field"),
        (raw(brand=""), "invalid_field"),
    ],
)
def test_bad_records_are_rejected_with_their_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(RecordRejected) as info:
        parse_post(value)
    assert info.value.reason == reason
    assert info.value.detail  # a human-readable explanation goes with every reason


def test_over_long_text_is_accepted_not_an_error() -> None:
    assert len(parse_post(raw(text="word " * 50_000)).text) == 250_000


def test_unknown_fields_are_ignored() -> None:
    assert parse_post(raw(likes=3)).id == "42"


@given(st.binary(max_size=200))
def test_any_bytes_either_parse_or_are_rejected_never_crash(value: bytes) -> None:
    try:
        parse_post(value)
    except RecordRejected as exc:
        assert exc.reason


# --- Hostile records: each is rejected with its reason, never with any other exception ---

VALID_FIELDS = {
    "id": '"42"',
    "text": '"hello"',
    "brand": '"acme"',
    "created_at": '"2026-11-22T06:00:00Z"',
}


def doc(**fragments: str) -> bytes:
    """A post whose fields are JSON text, written verbatim: it can hold what json.dumps never
    writes (NaN, lone surrogate escapes, 5,000-digit numbers)."""
    fields = {**VALID_FIELDS, **fragments}
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}").encode()


def nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def assert_rejected(value: bytes | None, reason: str) -> RecordRejected:
    with pytest.raises(RecordRejected) as info:
        parse_post(value)
    assert info.value.reason == reason, info.value.detail
    assert_sane_detail(info.value)
    return info.value


def assert_sane_detail(exc: RecordRejected) -> None:
    assert exc.reason in PARSE_REASONS
    assert 0 < len(exc.detail) <= MAX_DETAIL_CHARS
    exc.detail.encode("utf-8")  # a detail is itself valid unicode: it goes into a JSON record


def scored(post: Post) -> ScoredPost:
    return ScoredPost(
        **post.model_dump(),
        label="neutral",
        scores=Scores(negative=0.1, neutral=0.8, positive=0.1),
        model_id="fake@0",
        model_version="0",
        scored_at=NOW,
    )


def assert_round_trips(post: Post) -> None:
    """What the score worker writes for an accepted post serialises and reads back equal."""
    record = scored(post)
    wire = record.model_dump_json().encode()
    assert ScoredPost.model_validate_json(wire) == record
    assert parse_scored(wire) == record


@pytest.mark.parametrize(
    "value",
    [
        b"[" * 200_000,
        b"{" * 200_000,
        doc(likes="[" * 100_000 + "]" * 100_000),
        doc(meta=nested(100_000)),
        doc(meta=nested(64)),  # 65 levels with the post itself
        b'{"text": "hi", "nested": ' + b"[" * 10_000,
    ],
    ids=[
        "200k-brackets",
        "200k-braces",
        "deep-array-field",
        "deep-object-field",
        "depth-65",
        "open",
    ],
)
def test_deep_nesting_anywhere_is_too_deep(value: bytes) -> None:
    assert_rejected(value, "too_deep")


def test_nesting_up_to_the_limit_and_brackets_inside_strings_are_fine() -> None:
    assert parse_post(doc(meta=nested(63))).id == "42"  # 64 levels with the post itself
    post = parse_post(doc(text=json.dumps("[" * 10_000 + "{" * 10_000), meta='"[[[[{{{{"'))
    assert post.text.startswith("[[[")


@pytest.mark.parametrize(
    "fragments",
    [
        {"likes": "9" * 5000},
        {"likes": "-" + "9" * 5000},
        {"likes": "9" * 301},
        {"likes": "1e999"},
        {"likes": "-1e999"},
        {"likes": "NaN"},
        {"likes": "Infinity"},
        {"likes": "-Infinity"},
        {"likes": '{"deeper": [1, NaN]}'},
        {"created_at": "NaN"},
        {"created_at": "Infinity"},
        {"created_at": "-Infinity"},
        {"created_at": "1e999"},
    ],
    ids=lambda f: next(iter(f.items()))[1][:12],
)
def test_numbers_json_cannot_carry_safely_are_invalid_number(fragments: dict[str, str]) -> None:
    assert_rejected(doc(**fragments), "invalid_number")


def test_big_but_sane_numbers_in_ignored_fields_are_fine() -> None:
    assert parse_post(doc(likes="9" * 300, ratio="1e308", tiny="1e-999")).id == "42"


@pytest.mark.parametrize("field", ["text", "id", "brand", "author", "lang", "source", "url"])
@pytest.mark.parametrize("escape", ["\\ud83d", "\\ude00", "x\\ude00\\ud83dx", "\\udfff"])
def test_a_lone_surrogate_in_any_field_is_invalid_unicode(field: str, escape: str) -> None:
    assert_rejected(doc(**{field: f'"{escape}"'}), "invalid_unicode")


def test_a_surrogate_pair_is_an_emoji_and_a_lone_one_in_an_ignored_field_goes_nowhere() -> None:
    post = parse_post(doc(text='"\\ud83d\\ude00"', extra='"\\ud83d"', **{"\\udc00": "1"}))
    assert post.text == "😀"
    assert_round_trips(post)


@pytest.mark.parametrize(
    "created_at",
    [
        '"9999-12-31T23:59:59-05:00"',  # year 10000 in UTC: OverflowError before
        '"0001-01-01T00:00:00+01:00"',  # year 0 in UTC: OverflowError before
        '"0001-01-01T00:00:00Z"',  # Go's zero time
        '"1999-12-31T23:59:59.999999Z"',
        '"2000-01-01T00:30:00+01:00"',  # 1999-12-31T23:30Z
        '"2100-01-01T00:00:00Z"',
        '"2099-12-31T23:30:00-01:00"',  # 2100-01-01T00:30Z
        '"9999-12-31T23:59:59"',
        "0",
        "-1",
        "946684799",
        "4102444800",
        "1795327200000",  # milliseconds, not seconds
        "1e20",
        "-1e20",
        "1" + "0" * 30,
        "-" + "9" * 300,
        '"1795327200000"',
    ],
)
def test_times_outside_the_plausible_range_are_time_out_of_range(created_at: str) -> None:
    exc = assert_rejected(doc(created_at=created_at), "time_out_of_range")
    assert "2000-01-01" in exc.detail and "2100-01-01" in exc.detail


@pytest.mark.parametrize("created_at", ["true", "false", "null", "[]", "{}", '""', '"soon"'])
def test_times_of_the_wrong_type_are_invalid_field(created_at: str) -> None:
    assert_rejected(doc(created_at=created_at), "invalid_field")


@pytest.mark.parametrize(
    ("created_at", "expected"),
    [
        ('"2000-01-01T00:00:00Z"', datetime(2000, 1, 1, tzinfo=UTC)),
        ('"2000-01-01T00:30:00-01:00"', datetime(2000, 1, 1, 1, 30, tzinfo=UTC)),
        ('"2099-12-31T23:59:59.999999Z"', datetime(2099, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)),
        ('"2100-01-01T00:30:00+01:00"', datetime(2099, 12, 31, 23, 30, tzinfo=UTC)),
        ("946684800", datetime(2000, 1, 1, tzinfo=UTC)),
        ("4102444799", datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_the_edges_of_the_range_are_accepted(created_at: str, expected: datetime) -> None:
    post = parse_post(doc(created_at=created_at))
    assert post.created_at == expected
    assert EARLIEST_TIME <= post.created_at < LATEST_TIME
    assert_round_trips(post)


@pytest.mark.parametrize(
    "text",
    [
        "\\u200b",
        "\\u200c\\u200d",
        "\\u2060",
        "\\ufeff",
        " \\t\\n\\r ",
        "\\u0000\\u0007\\u007f\\u0085",
        "\\u202e\\u00ad\\u2066",  # bidi override, soft hyphen, isolate
        "\\u3000\\u00a0\\u2007",  # other spaces
        "\\u2028\\u2029",
        "\\u3164\\u115f\\uffa0",  # Hangul fillers
        "\\ufe0f\\u034f",  # variation selector, grapheme joiner
        "\\udb40\\udc41",  # a tag character (U+E0041)
        "\\u200b \\ufeff\\n\\u2060",
    ],
)
def test_text_with_nothing_visible_is_empty_text(text: str) -> None:
    assert_rejected(doc(text=f'"{text}"'), "empty_text")


@pytest.mark.parametrize("text", ["a\\u200b", "\\n\\nhi", "\\u200b😀", "\\u00e9", "\\u0301"])
def test_text_with_something_visible_is_kept_as_sent(text: str) -> None:
    post = parse_post(doc(text=f'"{text}"'))
    assert post.text == json.loads(f'"{text}"')
    assert_round_trips(post)


@pytest.mark.parametrize(
    "fragments",
    [
        {"brand": '"ac\\nme"'},
        {"brand": '"acme\\r\\n2026-11-22 INFO forged line"'},
        {"brand": '"ac\\u0000me"'},
        {"brand": '"acme\\u202e"'},
        {"brand": '"ac\\u2028me"'},
        {"brand": '"\\u200b"'},
        {"brand": '"ac\\tme"'},
        {"id": '"4\\r2"'},
        {"id": '"42\\u001b[31m"'},
        {"id": '"4\\u200d2"'},
    ],
    ids=lambda f: repr(f)[:30],
)
def test_control_and_format_characters_in_id_or_brand_are_control_character(
    fragments: dict[str, str],
) -> None:
    exc = assert_rejected(doc(**fragments), "control_character")
    assert next(iter(fragments)) in exc.detail and "U+" in exc.detail


def test_ordinary_brands_and_ids_are_fine_and_outer_whitespace_is_trimmed() -> None:
    post = parse_post(doc(brand='"Café Crème & Co. ☕"', id='" tw:123 \\n"'))
    assert (post.brand, post.id) == ("Café Crème & Co. ☕", "tw:123")
    assert_round_trips(post)


def test_details_are_bounded_and_valid_unicode() -> None:
    exc = RecordRejected("invalid_field", "x" * 1_000_000 + "\ud83d")
    assert len(exc.detail) <= MAX_DETAIL_CHARS
    assert RecordRejected("invalid_field", "half an emoji: \ud83d").detail.encode("utf-8")
    record = RawRecord("posts", 0, 7, b"\xff", b"\x00" * 10)
    letter = dead_letter(record, "inference_failed", "boom \udfff " * 100_000, NOW)
    assert len(letter.detail) <= MAX_DETAIL_CHARS
    assert type(letter).model_validate_json(letter.model_dump_json()) == letter


@pytest.mark.parametrize(
    "value",
    [b'{"id": "1", "text": "' + b"x" * 2_000_000, b"\xff" * 1_000_000, doc(id='"x"' * 500_000)],
    ids=["unterminated", "not-utf8", "garbage-after-id"],
)
def test_large_garbage_gets_a_short_detail(value: bytes) -> None:
    with pytest.raises(RecordRejected) as info:
        parse_post(value)
    assert_sane_detail(info.value)


# --- posts.scored, as the alert stage reads it ---


def scored_doc(**fragments: str) -> bytes:
    record = json.loads(scored(parse_post(raw())).model_dump_json())
    fields = {k: json.dumps(v) for k, v in record.items()}
    fields.update(fragments)
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}").encode()


def test_a_scored_post_reads_back_as_written() -> None:
    record = scored(parse_post(raw(author="ann")))
    assert parse_scored(record.model_dump_json().encode()) == record


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty_value"),
        (b"\xc3", "invalid_utf8"),
        (b"[" * 200_000, "too_deep"),
        (b"{]", "invalid_json"),
        (b'"scored"', "not_an_object"),
        (scored_doc(scores='{"negative": NaN, "neutral": 0, "positive": 1}'), "invalid_number"),
        (scored_doc(scores='{"negative": 1e999, "neutral": 0, "positive": 0}'), "invalid_number"),
        (scored_doc(extra="9" * 5000), "invalid_number"),
        (scored_doc(model_id='"\\ud83d"'), "invalid_unicode"),
        (scored_doc(text='"\\ud83d"'), "invalid_unicode"),
        (scored_doc(label='"angry"'), "invalid_field"),
        (scored_doc(scores='{"negative": 1}'), "missing_field"),
        (scored_doc(brand='"a\\nb"'), "control_character"),
        (scored_doc(text='"\\u200b"'), "empty_text"),
        (scored_doc(created_at='"0001-01-01T00:00:00Z"'), "time_out_of_range"),
        (scored_doc(scored_at='"9999-12-31T23:59:59-05:00"'), "time_out_of_range"),
    ],
)
def test_unreadable_scored_records_are_rejected_with_their_reason(
    value: bytes | None, reason: str
) -> None:
    with pytest.raises(RecordRejected) as info:
        parse_scored(value)
    assert info.value.reason == reason, info.value.detail
    assert_sane_detail(info.value)
