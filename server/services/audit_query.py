"""Reading the audit log for the audit viewer: filters, keyset paging and CSV rows.

``parse_filter`` and ``csv_line`` are pure (tested directly); ``page`` and ``export_rows`` run
the query. Paging goes backwards by ``seq`` (newest first): ``before`` is the last seq of the
previous page, so a page is one index range read however deep the user pages, and records
written meanwhile do not shift the pages already seen. Reading the log is itself audited by the
caller (the API), with the filter it used."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from server.errors import InvalidInput
from server.store import models
from server.store.audit import OUTCOMES

MAX_PAGE = 500
DEFAULT_PAGE = 50
CSV_COLUMNS = (
    "seq",
    "at",
    "time_utc",
    "username",
    "user_id",
    "action",
    "outcome",
    "target_type",
    "target_id",
    "detail",
    "remote_addr",
)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    username: str = ""  # exact
    action: str = ""  # exact, or a family: "share" matches share.create, share.use…
    interaction: str = ""  # the interaction id (target_id of interaction records)
    target_type: str = ""  # e.g. "policy": every policy change
    outcome: str = ""  # allowed, denied, failed
    since: float | None = None  # Unix seconds, inclusive
    until: float | None = None  # Unix seconds, exclusive

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v not in ("", None)}


def _time(name: str, raw: str) -> float | None:
    """Unix seconds or an ISO 8601 time (UTC unless it names its offset)."""
    text = raw.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(
                "invalid_filter", f"{name} must be Unix seconds or an ISO 8601 time such as 2026-12-05T09:30"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    if not math.isfinite(value):
        raise InvalidInput("invalid_filter", f"{name} must be a finite time")
    return value


def parse_filter(params: Mapping[str, str]) -> AuditFilter:
    """The filter from query parameters; a clear ``InvalidInput`` for a bad value (pure)."""
    outcome = params.get("outcome", "").strip()
    if outcome and outcome not in OUTCOMES:
        raise InvalidInput(
            "invalid_filter", f"outcome must be one of {', '.join(OUTCOMES)} (got {outcome[:20]!r})"
        )
    since = _time("since", params.get("since", ""))
    until = _time("until", params.get("until", ""))
    if since is not None and until is not None and until <= since:
        raise InvalidInput("invalid_filter", "the end of the time range must be after its start")
    return AuditFilter(
        username=params.get("user", "").strip()[:100],
        action=params.get("action", "").strip()[:50],
        interaction=params.get("interaction", "").strip()[:64],
        target_type=params.get("target_type", "").strip()[:30],
        outcome=outcome,
        since=since,
        until=until,
    )


def page_size(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PAGE
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput("invalid_filter", f"limit must be a whole number from 1 to {MAX_PAGE}") from None
    if not 1 <= value <= MAX_PAGE:
        raise InvalidInput("invalid_filter", f"limit must be from 1 to {MAX_PAGE} (got {value})")
    return value


def _query(f: AuditFilter) -> Select[Any]:
    a = models.AuditRecord
    q = select(a)
    if f.username:
        q = q.where(a.username == f.username)
    if f.action:
        q = q.where(or_(a.action == f.action, a.action.startswith(f.action + ".", autoescape=True)))
    if f.interaction:
        q = q.where(a.target_id == f.interaction, a.target_type == "interaction")
    if f.target_type:
        q = q.where(a.target_type == f.target_type)
    if f.outcome:
        q = q.where(a.outcome == f.outcome)
    if f.since is not None:
        q = q.where(a.at >= f.since)
    if f.until is not None:
        q = q.where(a.at < f.until)
    return q


def as_row(r: models.AuditRecord) -> dict[str, object]:
    return {
        "seq": r.seq,
        "at": r.at,
        "user_id": r.user_id,
        "username": r.username,
        "action": r.action,
        "target_type": r.target_type,
        "target_id": r.target_id,
        "outcome": r.outcome,
        "detail": r.detail,
        "remote_addr": r.remote_addr,
    }


@dataclass(frozen=True, slots=True)
class Page:
    records: list[dict[str, object]]
    next_before: int | None  # pass as ``before`` for the next (older) page; None at the end


def page(session: Session, f: AuditFilter, limit: int, before: int | None = None) -> Page:
    a = models.AuditRecord
    q = _query(f)
    if before is not None:
        q = q.where(a.seq < before)
    rows = session.execute(q.order_by(a.seq.desc()).limit(limit + 1)).scalars().all()
    more = len(rows) > limit
    shown = [as_row(r) for r in rows[:limit]]
    return Page(shown, int(rows[limit - 1].seq) if more else None)


def export_rows(session: Session, f: AuditFilter, batch: int = 1000) -> Iterator[dict[str, object]]:
    """Every matching record, oldest first, streamed from one statement."""
    a = models.AuditRecord
    q = _query(f).order_by(a.seq).execution_options(yield_per=batch)
    for r in session.execute(q).scalars():
        yield as_row(r)


def csv_line(values: list[object]) -> str:
    """One CSV line (RFC 4180 quoting). A cell that a spreadsheet would run as a formula
    (=, +, -, @ first) gets a leading apostrophe: audit details hold user-typed text (pure)."""
    out = io.StringIO()
    cells = []
    for v in values:
        text = "" if v is None else str(v)
        if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
            text = "'" + text
        cells.append(text)
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_record(row: dict[str, object]) -> str:
    at = float(row["at"])  # type: ignore[arg-type]
    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    values = {**row, "time_utc": stamp}
    return csv_line([values[c] for c in CSV_COLUMNS])
