"""The posts contract as producers meet it: what is accepted, what is refused and why."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.scoring import RecordRejected, parse_post


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
    assert parse_post(raw(created_at=0)).created_at.year == 1970


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
