"""Timestamps: every RFC 3339 variant seen in audit logs and exports, to exact integer nanoseconds."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kwoksnap.audit import format_timestamp, parse_timestamp

UTC = dt.UTC
BASE = int(dt.datetime(2025, 4, 1, 13, 33, 59, tzinfo=UTC).timestamp()) * 1_000_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-04-01T13:33:59Z", BASE),  # 0 digits (legacy `timestamp`, GKE)
        ("2025-04-01T13:33:59.4Z", BASE + 400_000_000),
        ("2025-04-01T13:33:59.457Z", BASE + 457_000_000),
        ("2025-04-01T13:33:59.457732Z", BASE + 457_732_000),  # the API server's own form (fast path)
        ("2025-04-01T13:33:59.457732123Z", BASE + 457_732_123),  # 9 digits (Cloud Logging)
        ("2025-04-01T13:33:59.4577321239Z", BASE + 457_732_123),  # >9 digits: truncated, not rounded
        ("2025-04-01t13:33:59.5z", BASE + 500_000_000),
        ("2025-04-01 13:33:59.5Z", BASE + 500_000_000),
        ("2025-04-01T15:33:59.5+02:00", BASE + 500_000_000),
        ("2025-04-01T12:03:59-0130", BASE),
        ("2025-04-01T13:33:59", BASE),  # no offset: UTC
        ("2025-04-01T13:33:59.000000+00:00", BASE),
        ("1970-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59.999999Z", -1000),
        ("2024-02-29T00:00:00.000000Z", int(dt.datetime(2024, 2, 29, tzinfo=UTC).timestamp()) * 10**9),
        ("2016-12-31T23:59:60.000000Z", int(dt.datetime(2017, 1, 1, tzinfo=UTC).timestamp()) * 10**9),  # leap
    ],
)
def test_parse(text: str, expected: int) -> None:
    assert parse_timestamp(text) == expected
    assert parse_timestamp(text) == expected  # second call: cached fast path agrees


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2025-04-01",
        "2025-13-01T00:00:00Z",
        "2025-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2025-04-01T24:00:00Z",
        "2025-04-01T13:60:00Z",
        "2025-04-01T13:33:61.000000Z",
        "2025-04-01T13:33:59.45773xZ",
        "2025-04-01T13:33:59.+45773Z",
        "2025-04-01T13:33:59.4577 3Z",
        "2025-04-01T13:33:59.457732+25:00",
        "\uff12\uff10\uff12\uff15-04-01T13:33:59Z",  # full-width digits
        "2025-04-01T13:33:59.45\u0667732Z",  # an Arabic-Indic digit in the fast path's fraction
        # fuzzing finding: beyond int64 nanoseconds (Go's zero time, year 9999) failed the recording's store (exit 2)
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00.000000Z",
        "9999-12-31T23:59:59.999999Z",
        "2262-04-12T00:00:00Z",
        "1677-09-21T00:00:00Z",
    ],
)
def test_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


@pytest.mark.parametrize("value", [None, 5, 1.5, b"2025-04-01T13:33:59Z", ["x"]])
def test_rejects_non_strings(value: object) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(value)  # type: ignore[arg-type]


@given(
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(UTC)),
    st.integers(min_value=0, max_value=999),
    st.integers(min_value=0, max_value=9),
)
def test_roundtrip_and_fraction_widths(moment: dt.datetime, nanos: int, digits: int) -> None:
    exact = int(moment.replace(microsecond=0).timestamp()) * 10**9 + moment.microsecond * 1000 + nanos
    text = format_timestamp(exact)
    assert parse_timestamp(text) == exact
    seconds, fraction = text[:-1].split(".")
    cut = f"{seconds}.{fraction[:digits]}Z" if digits else f"{seconds}Z"
    assert parse_timestamp(cut) == exact - exact % 10 ** (9 - digits)
    six = f"{seconds}.{fraction[:6]}Z"  # the fast path must agree with the general one
    assert parse_timestamp(six) == parse_timestamp(f"{seconds}.{fraction[:6]}+00:00")
