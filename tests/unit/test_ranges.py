"""HTTP Range parsing: every edge RFC 9110 §14 defines, and the choices server.api.ranges documents."""

from __future__ import annotations

import pytest

from server.api.ranges import parse_range
from server.errors import RangeNotSatisfiable

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-", (0, 999)),
        ("bytes=0-0", (0, 0)),
        ("bytes=10-20", (10, 20)),
        ("bytes=990-5000", (990, 999)),  # last-pos past the end: clamped
        ("bytes=999-999", (999, 999)),
        ("bytes=-500", (500, 999)),
        ("bytes=-1", (999, 999)),
        ("bytes=-5000", (0, 999)),  # suffix longer than the file: the whole file, as a 206
        ("Bytes=1-2", (1, 2)),  # range units are case-insensitive
        ("  bytes=1-2\t", (1, 2)),  # blanks around a field value are not part of it
    ],
)
def test_satisfiable_ranges(header: str, expected: tuple[int, int]) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes=1_0-20",  # int() would read 10
        "bytes=+1-2",
        "bytes=1-+2",
        "bytes=- 5",
        "bytes=1 -2",
        "bytes = 1-2",
        "bytes=\u0663-5",  # ARABIC-INDIC DIGIT THREE: int() takes it, HTTP does not
        "bytes=5-3",  # last before first: invalid, so ignored (not 416)
        "bytes=-",
        "bytes=",
        "bytes=abc",
        "bytes=0-1,5-6",  # several ranges: served whole rather than as multipart
        "bytes=0-1, 5-6",
        "items=0-5",  # a unit we do not know
        "bytes 0-5",
        "bytes=1-2-3",
        "bytes=" + "9" * 19 + "-",  # absurd positions are not parsed at all
        "bytes=" + "1" * 5000 + "-",  # (int() would even raise on this many digits)
    ],
)
def test_invalid_or_multiple_ranges_are_ignored(header: str | None) -> None:
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize(
    "header", ["bytes=-0", "bytes=-00", "bytes=1000-", "bytes=1000-2000", "bytes=5000-6000"]
)
def test_unsatisfiable_ranges_raise(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, SIZE)


def test_zero_length_file() -> None:
    for header in ("bytes=0-", "bytes=0-0", "bytes=-0"):
        with pytest.raises(RangeNotSatisfiable):
            parse_range(header, 0)
    # A non-zero suffix is satisfiable per §14.1.1 yet names no byte: served whole (and empty).
    assert parse_range("bytes=-500", 0) is None
    assert parse_range(None, 0) is None


def test_unsatisfiable_is_not_a_value_error() -> None:
    # It used to be a ValueError raised inside ``except ValueError``: bytes=-0 got the whole file.
    assert not issubclass(RangeNotSatisfiable, ValueError)
