"""HTTP Range parsing (RFC 9110 §14), single ranges only — what media players send.

The choices, where RFC 9110 leaves one open:

* A header that is not valid ``bytes`` range syntax (``bytes=1_0-20``, ``bytes=+1-2``,
  ``bytes=5-3``, another unit, a position of more than 18 digits) is *ignored*: the whole file
  is served with 200, exactly as a server that does not support ranges would answer (§14.2
  lets a server ignore an invalid Range). Only ASCII digits count: Python's ``int()`` would
  also take ``1_0``, ``+1``, ``٣`` and surrounding blanks, which is how ``bytes=1_0-20`` used
  to be served as bytes 10-20.
* Several ranges (``bytes=0-1,5-6``) are ignored too (200, whole file): serving them would
  need a multipart/byteranges body that no player asks for, and serving just the first would
  break §15.3.7 (a 206 for a multi-range request covers every range it serves).
* A valid but unsatisfiable range raises ``RangeNotSatisfiable`` (the caller answers 416 with
  ``Content-Range: bytes */size``): a first position at or past the end (every int-range of a
  zero-length file is one) and the zero-length suffix ``bytes=-0``.
* A suffix range of a zero-length file is satisfiable in §14.1.1's terms but has no bytes a
  206 could name; it is ignored (200 with an empty body).
"""

from __future__ import annotations

import re

from server.errors import RangeNotSatisfiable

# range-unit "=" first-pos "-" [last-pos] / "-" suffix-length; the unit is case-insensitive
# (§14.1); the surrounding blanks an HTTP field value may carry are stripped before matching.
_SINGLE = re.compile(r"bytes=(?:([0-9]{1,18})-([0-9]{0,18})|-([0-9]{1,18}))", re.IGNORECASE)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (start, end) byte range to serve, or None to serve the whole file."""
    if header is None:
        return None
    match = _SINGLE.fullmatch(header.strip(" \t"))
    if match is None:
        return None  # not a single valid bytes range: ignored, the whole file is served
    first, last, suffix = match.groups()
    if suffix is not None:
        length = int(suffix)
        if length == 0:
            raise RangeNotSatisfiable(header)
        if size == 0:
            return None
        return max(0, size - length), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # §14.1.1: last-pos before first-pos makes the range-spec invalid
    if start >= size:
        raise RangeNotSatisfiable(header)
    end = min(int(last), size - 1) if last else size - 1
    return start, end
