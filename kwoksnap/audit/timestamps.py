"""RFC 3339 timestamps of audit logs, turned into integer nanoseconds since the Unix epoch.

Why this module exists: every audit line carries two or three timestamps, and a 1 GB log has millions of lines, so
``datetime.fromisoformat`` (one object per call, no nanoseconds, no 9-digit fractions before 3.11's lenient parser)
is both too slow and too lossy. Sorting and replay scheduling only need an ``int``. The common form the API server
writes (``2024-01-02T03:04:05.123456Z``, 6 digits, UTC) takes a fast path that caches the epoch value of each
second; any other RFC 3339 variant (0-9 fractional digits, ``z``/``Z`` or a ``+hh:mm``/``-hhmm`` offset, a space
instead of ``T``, no offset at all = UTC) takes a regular-expression path.

It must never return a naive/aware ``datetime`` or a float (floats lose nanoseconds), and it raises only
``ValueError`` on text that is not a timestamp, so that callers can count the line as malformed.
"""

from __future__ import annotations

import re

__all__ = ["TimestampOutOfRange", "format_timestamp", "parse_timestamp"]

_NS = 1_000_000_000
_MIN_NS, _MAX_NS = -(1 << 63), (1 << 63) - 1  # what a recording stores: int64 nanoseconds
_SECONDS_PER_DAY = 86_400

# YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z|±HH:MM|±HHMM]; more than 9 fractional digits are accepted and truncated.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d*))?\s*(?:([Zz])|([+-])(\d{2}):?(\d{2}))?",
    re.ASCII,
)

# Fast-path cache: "YYYY-MM-DDTHH:MM:SS." -> epoch nanoseconds of that second (formats.scan_native reads it directly:
# it inlines the fast path below; keys are only ever validated seconds). A day of log is 86,400 entries
# (~10 MB at most); the cap only protects against adversarial input (random dates) and merely clears the cache.
SECOND_CACHE: dict[str, int] = {}
_SECOND_CACHE_MAX = 200_000

_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm, exact for all years)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _slow(text: str) -> int:
    m = _RFC3339.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text[:40]!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    if not (1 <= month <= 12 and 1 <= day <= _DAYS_IN_MONTH[month - 1] and hour <= 23 and minute <= 59):
        raise ValueError(f"timestamp out of range: {text[:40]!r}")
    if month == 2 and day == 29 and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        raise ValueError(f"timestamp out of range: {text[:40]!r}")
    if second > 60:  # 60 = leap second, folded into the next minute as Go does when it prints one
        raise ValueError(f"timestamp out of range: {text[:40]!r}")
    frac = m.group(7) or ""
    nanos = int((frac[:9]).ljust(9, "0")) if frac else 0
    offset = 0
    if m.group(9):
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            raise ValueError(f"bad UTC offset: {text[:40]!r}")
        offset = (oh * 3600 + om * 60) * (1 if m.group(9) == "+" else -1)
    seconds = _days_from_civil(year, month, day) * _SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offset
    ns = seconds * _NS + nanos
    if not _MIN_NS <= ns <= _MAX_NS:  # (Go's zero time, year 1; year 9999) a recording stores int64 nanoseconds
        raise TimestampOutOfRange(f"timestamp out of range (1677-09-21 to 2262-04-11 in nanoseconds): {text[:40]!r}",
                                  _MIN_NS if ns < _MIN_NS else _MAX_NS)
    return ns


class TimestampOutOfRange(ValueError):
    """A valid RFC 3339 time beyond int64 nanoseconds; ``nearest`` is the bound it lies beyond (for a filter's
    ``--to 9999-12-31T23:59:59Z``, which means "no end", not an error)."""

    def __init__(self, message: str, nearest: int) -> None:
        super().__init__(message)
        self.nearest = nearest



def parse_timestamp(text: str) -> int:
    """Nanoseconds since the epoch for an RFC 3339 timestamp; ``ValueError`` if ``text`` is not one.

    >>> parse_timestamp("1970-01-01T00:00:01.5Z")
    1500000000
    """
    if type(text) is not str:
        raise ValueError(f"timestamp is not a string: {type(text).__name__}")
    # Fast path: the API server's own form, 27 characters, 6 fractional digits, UTC.
    if len(text) == 27 and text[26] == "Z" and text[19] == ".":
        key = text[:20]
        base = SECOND_CACHE.get(key)
        if base is None:
            base = _slow(key + "0Z")  # validates everything up to the second (raises as the full text would)
            if len(SECOND_CACHE) >= _SECOND_CACHE_MAX:
                SECOND_CACHE.clear()
            SECOND_CACHE[key] = base
        micros = text[20:26]
        if micros.isdigit() and micros.isascii():
            return base + int(micros) * 1000
    return _slow(text)


def format_timestamp(ns: int) -> str:
    """The inverse of :func:`parse_timestamp` for UTC: ``YYYY-MM-DDTHH:MM:SS.fffffffffZ`` (9 digits, for messages)."""
    seconds, nanos = divmod(ns, _NS)
    days, rem = divmod(seconds, _SECONDS_PER_DAY)
    # civil_from_days (Hinnant)
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y += m <= 2
    hh, rem = divmod(rem, 3600)
    mm, ss = divmod(rem, 60)
    return f"{y:04d}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}.{nanos:09d}Z"
