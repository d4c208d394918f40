"""The interaction search's query model, pure: the URL's parameters parsed and checked into a
``SearchQuery``, its canonical query string (what saved searches and shared URLs hold), and the
keyset cursor of the next page. No database here (server/services/search.py builds the SQL).

The cursor is base64url JSON: the last row's sort value and id, and a fingerprint of the filters
and sort it was made for. It is not signed: the query enforces who may see what whatever the
cursor says, so a forged cursor can only move where a page starts. The fingerprint catches the
honest mistake — a cursor reused after the filters or sort changed — with a clear 422.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from urllib.parse import urlencode

SORTS = ("started_at", "duration", "agent", "caller", "callee", "end_reason", "direction")
NUMERIC_SORTS = frozenset({"started_at", "duration"})
ORDERS = ("desc", "asc")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_TEXT = 100
MAX_LIST = 50
META_PREFIX = "meta."
RESTART = "start again from the first page"
# Filters on columns another part of the product adds (ACW disposition and notes, issue 13): the
# search takes them once the column exists, and says so clearly until then.
OPTIONAL_FILTERS = ("disposition", "notes")
SINGLE = (
    "from",
    "to",
    "caller",
    "callee",
    "min_duration",
    "max_duration",
    "has_screen",
    "paused",
    "pause_reason_missing",
    "end_reason",
    "direction",
    "disposition",
    "notes",
    "sort",
    "order",
    "limit",
    "cursor",
)
MULTI = ("agent", "team")
# Fields the search refuses with a reason because the interactions do not record them (none now:
# direction is stored since revision 0017).
NOT_RECORDED: dict[str, str] = {}
# "unknown": the SIP side did not say (stored as "" — also every call recorded before 0017).
DIRECTIONS = ("inbound", "outbound", "unknown")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


class QueryError(ValueError):
    """A parameter the search cannot take: ``field`` names it, the message says why and how."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True, slots=True)
class Cursor:
    value: float | str
    id: str


@dataclass(frozen=True, slots=True)
class SearchQuery:
    since: float | None = None  # started_at >= since
    until: float | None = None  # started_at < until
    agents: tuple[str, ...] = ()  # usernames
    teams: tuple[str, ...] = ()  # team names
    caller: str = ""  # number prefix (number_key form)
    callee: str = ""
    min_duration: float | None = None
    max_duration: float | None = None
    has_screen: bool | None = None
    paused: bool | None = None
    # A pause whose reason the admin requires was never given (server/services/pause_reasons.py).
    pause_reason_missing: bool | None = None
    end_reason: str = ""
    direction: str = ""  # one of DIRECTIONS, "" = any
    disposition: str = ""
    notes: str = ""
    meta: tuple[tuple[str, str], ...] = ()  # (key, case-folded value), sorted by key
    sort: str = "started_at"
    order: str = "desc"
    limit: int = DEFAULT_LIMIT
    cursor: Cursor | None = field(default=None, compare=False)

    def filters(self) -> dict[str, object]:
        """What selects the rows (not the sort, page size or cursor): audit detail and count."""
        out: dict[str, object] = {}
        for name in (
            "since",
            "until",
            "caller",
            "callee",
            "min_duration",
            "max_duration",
            "has_screen",
            "paused",
            "pause_reason_missing",
            "end_reason",
            "direction",
            "disposition",
            "notes",
        ):
            value = getattr(self, name)
            if value not in (None, ""):
                out[name] = value
        if self.agents:
            out["agents"] = list(self.agents)
        if self.teams:
            out["teams"] = list(self.teams)
        if self.meta:
            out["meta"] = dict(self.meta)
        return out


def parse(
    items: Iterable[tuple[str, str]],
    *,
    searchable_keys: Iterable[str] = (),
    optional_columns: Iterable[str] = (),
    number_key: Callable[[str], str] | None = None,
) -> SearchQuery:
    """A ``SearchQuery`` from URL parameters (repeats allowed for agent and team), or QueryError.
    ``optional_columns``: which of OPTIONAL_FILTERS the database has; ``number_key``: how stored
    numbers are written (so "+1 555" finds 1555…)."""
    keys = frozenset(searchable_keys)
    present = frozenset(optional_columns)
    to_key = number_key or _digits_only
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {name: [] for name in MULTI}
    meta: dict[str, str] = {}
    for name, raw in items:
        value = raw.strip()
        if name in NOT_RECORDED:
            raise QueryError(name, NOT_RECORDED[name])
        if name.startswith(META_PREFIX):
            key = name[len(META_PREFIX) :].lower()
            if key not in keys:
                named = ", ".join(sorted(keys)) or "none yet (an admin names them)"
                raise QueryError(name, f"not a searchable metadata key; searchable keys: {named}")
            if value:
                meta[key] = value.casefold()[:200]
            continue
        if name in MULTI:
            multi[name].extend(v.strip() for v in value.split(",") if v.strip())
            continue
        if name not in SINGLE:
            known = ", ".join((*SINGLE, *MULTI))
            raise QueryError(name, f"unknown parameter; the search takes {known}, meta.<key>")
        if name in single:
            raise QueryError(name, "given twice")
        single[name] = value
    for name in OPTIONAL_FILTERS:
        if single.get(name) and name not in present:
            raise QueryError(name, f"interactions have no {name} yet (after-call work is not coded yet)")
    for name, values in multi.items():
        if len(values) > MAX_LIST:
            raise QueryError(name, f"at most {MAX_LIST} values")
        for v in values:
            _text(name, v)
    since = _time("from", single.get("from", ""))
    until = _time("to", single.get("to", ""))
    if since is not None and until is not None and since >= until:
        raise QueryError("to", "must be later than from")
    min_d = _seconds("min_duration", single.get("min_duration", ""))
    max_d = _seconds("max_duration", single.get("max_duration", ""))
    if min_d is not None and max_d is not None and min_d > max_d:
        raise QueryError("max_duration", "must not be less than min_duration")
    sort = single.get("sort") or "started_at"
    if sort not in SORTS:
        raise QueryError("sort", f"must be one of {', '.join(SORTS)}")
    order = single.get("order") or "desc"
    if order not in ORDERS:
        raise QueryError("order", "must be asc or desc")
    query = SearchQuery(
        since=since,
        until=until,
        agents=tuple(dict.fromkeys(multi["agent"])),
        teams=tuple(dict.fromkeys(multi["team"])),
        caller=_prefix("caller", single.get("caller", ""), to_key),
        callee=_prefix("callee", single.get("callee", ""), to_key),
        min_duration=min_d,
        max_duration=max_d,
        has_screen=_flag("has_screen", single.get("has_screen", "")),
        paused=_flag("paused", single.get("paused", "")),
        pause_reason_missing=_flag("pause_reason_missing", single.get("pause_reason_missing", "")),
        end_reason=_text("end_reason", single.get("end_reason", "")),
        direction=_direction(single.get("direction", "")),
        disposition=_text("disposition", single.get("disposition", "")),
        notes=_text("notes", single.get("notes", "")),
        meta=tuple(sorted(meta.items())),
        sort=sort,
        order=order,
        limit=_limit(single.get("limit", "")),
    )
    token = single.get("cursor", "")
    return replace(query, cursor=decode_cursor(token, query)) if token else query


def fingerprint(query: SearchQuery) -> str:
    """The filters and sort a cursor belongs to (16 hex digits of a sha256)."""
    basis = json.dumps([query.filters(), query.sort, query.order], sort_keys=True, default=str)
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


def encode_cursor(query: SearchQuery, value: float | str | None, row_id: str) -> str:
    payload = {"v": _cursor_value(query.sort, value), "i": row_id, "f": fingerprint(query)}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, query: SearchQuery) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError):
        raise QueryError("cursor", f"not a cursor this search gave out; {RESTART}") from None
    if not isinstance(payload, dict) or set(payload) != {"v", "i", "f"}:
        raise QueryError("cursor", f"not a cursor this search gave out; {RESTART}")
    if payload["f"] != fingerprint(query):
        raise QueryError("cursor", f"belongs to another search (the filters or sort changed); {RESTART}")
    value, row_id = payload["v"], payload["i"]
    numeric = query.sort in NUMERIC_SORTS
    value_ok = (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if numeric
        else isinstance(value, str)
    )
    if not value_ok or not isinstance(row_id, str) or not 0 < len(row_id) <= 36:
        raise QueryError("cursor", f"is damaged; {RESTART}")
    return Cursor(float(value) if numeric else value, row_id)


def canonical(query: SearchQuery) -> str:
    """The query string that gives this search back (no cursor): shared URLs and saved searches."""
    pairs: list[tuple[str, str]] = []
    if query.since is not None:
        pairs.append(("from", _iso(query.since)))
    if query.until is not None:
        pairs.append(("to", _iso(query.until)))
    pairs += [("agent", a) for a in query.agents]
    pairs += [("team", t) for t in query.teams]
    for name in ("caller", "callee", "end_reason", "direction", "disposition", "notes"):
        if getattr(query, name):
            pairs.append((name, getattr(query, name)))
    for name in ("min_duration", "max_duration"):
        value = getattr(query, name)
        if value is not None:
            pairs.append((name, f"{value:g}"))
    for name in ("has_screen", "paused", "pause_reason_missing"):
        value = getattr(query, name)
        if value is not None:
            pairs.append((name, "true" if value else "false"))
    pairs += [(META_PREFIX + k, v) for k, v in query.meta]
    if query.sort != "started_at":
        pairs.append(("sort", query.sort))
    if query.order != "desc":
        pairs.append(("order", query.order))
    if query.limit != DEFAULT_LIMIT:
        pairs.append(("limit", str(query.limit)))
    return urlencode(pairs)


# -- value parsers ---------------------------------------------------------------------------


def _time(name: str, value: str) -> float | None:
    """ISO 8601 (a time without offset is UTC) or Unix seconds."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise QueryError(
                name,
                f"{value[:40]!r} is not a date and time; use ISO 8601 (2026-12-04T09:00Z) or Unix seconds",
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    if not math.isfinite(seconds) or not 0 <= seconds < 1e11:
        raise QueryError(name, "Unix seconds out of range")
    return seconds


def _seconds(name: str, value: str) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise QueryError(name, f"{value[:40]!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0 or seconds > 7 * 86400:
        raise QueryError(name, "seconds between 0 and 604800")
    return seconds


def _flag(name: str, value: str) -> bool | None:
    lowered = value.lower()
    if not lowered or lowered == "any":
        return None
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise QueryError(name, "must be true or false")


def _direction(value: str) -> str:
    lowered = value.lower()
    if not lowered or lowered == "any":
        return ""
    if lowered not in DIRECTIONS:
        raise QueryError("direction", f"{value[:40]!r} is not a direction; use {', '.join(DIRECTIONS)}")
    return lowered


def _text(name: str, value: str) -> str:
    if len(value) > MAX_TEXT:
        raise QueryError(name, f"at most {MAX_TEXT} characters")
    if any(ord(c) < 32 for c in value):
        raise QueryError(name, "control characters are not allowed")
    return value


def _prefix(name: str, value: str, to_key: Callable[[str], str]) -> str:
    text = _text(name, value)
    if not text:
        return ""
    key = to_key(text)
    if not key:
        raise QueryError(name, "give the start of a number (digits)")
    return key


def _limit(value: str) -> int:
    if not value:
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise QueryError("limit", "must be a whole number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError("limit", f"between 1 and {MAX_LIMIT}")
    return limit


def _cursor_value(sort: str, value: float | str | None) -> float | str:
    if sort in NUMERIC_SORTS:
        return -1.0 if value is None else float(value)  # the sort's own COALESCE(…, -1)
    return "" if value is None else str(value)


def _digits_only(text: str) -> str:
    return "".join(c for c in text if c.isalnum()).lower()


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
