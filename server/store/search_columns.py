"""The search keys of an interaction, kept on every ORM write: the caller's and callee's numbers
alone (for prefix search), the talk time, whether it has a screen recording and was paused (set
when a screen file/segment or a pause span is written: a flag on the row is one read, where
EXISTS over two tables per candidate row cost 75 ms at a million rows), and the values of the
admin's searchable metadata keys (table ``interaction_meta_values``).

Mapper events rather than calls in each write path: interactions are created and updated in
several places (server/calls/repository.py, session_records.py, the simulator, tests), and a
search key that one of them forgets to refresh is a call a supervisor cannot find. Bulk
``update()`` statements bypass mapper events; none of them touches these inputs.

Models pass their classes in (``register``) so this module does not import ``models`` (which
imports it): the import graph stays a tree.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import delete, event, insert, inspect, select
from sqlalchemy.engine import Connection

SEARCH_KEYS_SETTING = "search.metadata_keys"
MAX_SEARCH_KEYS = 20
MAX_VALUE_LENGTH = 200
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_BRACKETED = re.compile(r"<([^>]*)>")
_SCHEME = re.compile(r"^(sips?|tel):", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s\-.()/]")


def number_key(text: str) -> str:
    """The number a caller/callee field names, as searched by prefix: the address inside <…>
    when there is one, without scheme, host, parameters, separators and a leading "+"
    ("Ann <sip:+1 555-0100@pbx>" → "15550100"). A SIP user that is no number stays, lower-case."""
    found = _BRACKETED.search(text)
    inner = (found.group(1) if found else text).strip()
    inner = _SCHEME.sub("", inner)
    inner = inner.split("@", 1)[0].split(";", 1)[0]
    return _SEPARATORS.sub("", inner).lstrip("+").lower()[:64]


def talk_time(started_at: float | None, answered_at: float | None, ended_at: float | None) -> float | None:
    """Seconds from answer (or start) to end, as the web UI shows it; None while the call lasts."""
    begin = answered_at if answered_at is not None else started_at
    if ended_at is None or begin is None:
        return None
    return max(0.0, ended_at - begin)


def parse_keys(stored: str | None) -> list[str]:
    """The admin's searchable keys from the setting's JSON (a bad value reads as none)."""
    if not stored:
        return []
    try:
        value = json.loads(stored)
    except ValueError:
        return []
    if not isinstance(value, list):
        return []
    return [k for k in value if isinstance(k, str) and KEY_PATTERN.match(k)][:MAX_SEARCH_KEYS]


def meta_values(recording_meta: str | None, keys: list[str]) -> dict[str, str]:
    """The values of ``keys`` among an interaction's recording parameters (``recording_meta``
    JSON, ``params``: X-Recording-* headers and Request-URI parameters), case-folded."""
    if not keys or not recording_meta:
        return {}
    try:
        meta = json.loads(recording_meta)
    except ValueError:
        return {}
    params = meta.get("params") if isinstance(meta, dict) else None
    if not isinstance(params, dict):
        return {}
    lowered = {str(k).lower(): v for k, v in params.items()}
    out: dict[str, str] = {}
    for key in keys:
        value = lowered.get(key)
        if isinstance(value, (str, int, float)) and str(value).strip():
            out[key] = str(value).strip().casefold()[:MAX_VALUE_LENGTH]
    return out


SCREEN_KINDS = ("screen", "muxed")
HOLD_REASON = "hold"  # a hold is a pause span too, but not a pause of the recording's choice


def register(
    interaction: Any, meta_value: Any, setting: Any, media_file: Any, pause_span: Any, screen_segment: Any
) -> None:
    """Keep the search keys of ``interaction`` rows (mapped class) up to date on every flush."""

    def numbers_and_duration(_mapper: Any, _connection: Connection, target: Any) -> None:
        target.caller_number = number_key(target.caller or "")
        target.callee_number = number_key(target.callee or "")
        target.duration = talk_time(target.started_at, target.answered_at, target.ended_at)

    def write_meta(connection: Connection, target: Any) -> None:
        interaction_id, recording_meta = target.id, target.recording_meta
        stored = connection.execute(select(setting.value).where(setting.key == SEARCH_KEYS_SETTING)).scalar()
        values = meta_values(recording_meta, parse_keys(stored))
        table = meta_value.__table__
        connection.execute(delete(table).where(table.c.interaction_id == interaction_id))
        if values:
            rows = [
                {"interaction_id": interaction_id, "key": k, "value": v, "started_at": target.started_at}
                for k, v in values.items()
            ]
            connection.execute(insert(table), rows)

    def after_insert(_mapper: Any, connection: Connection, target: Any) -> None:
        if target.recording_meta and target.recording_meta != "{}":
            write_meta(connection, target)

    def after_update(_mapper: Any, connection: Connection, target: Any) -> None:
        if inspect(target).attrs.recording_meta.history.has_changes():
            write_meta(connection, target)

    table = interaction.__table__

    def flag(connection: Connection, interaction_id: str, column: str) -> None:
        connection.execute(table.update().where(table.c.id == interaction_id).values({column: True}))

    def media_stored(_mapper: Any, connection: Connection, target: Any) -> None:
        if target.state == "complete" and target.kind in SCREEN_KINDS:
            flag(connection, target.interaction_id, "has_screen")

    def segment_stored(_mapper: Any, connection: Connection, target: Any) -> None:
        flag(connection, target.interaction_id, "has_screen")

    def pause_started(_mapper: Any, connection: Connection, target: Any) -> None:
        if target.reason != HOLD_REASON:
            flag(connection, target.interaction_id, "was_paused")

    event.listen(media_file, "after_insert", media_stored)
    event.listen(media_file, "after_update", media_stored)
    event.listen(screen_segment, "after_insert", segment_stored)
    event.listen(pause_span, "after_insert", pause_started)
    event.listen(interaction, "before_insert", numbers_and_duration)
    event.listen(interaction, "before_update", numbers_and_duration)
    event.listen(interaction, "after_insert", after_insert)
    event.listen(interaction, "after_update", after_update)


def reindex_meta(connection: Connection, interaction: Any, meta_value: Any, keys: list[str]) -> int:
    """Rebuild every interaction's metadata values for a new key list (the admin changed it).
    Returns the number of values written. Batched: a million rows must not sit in memory."""
    table = meta_value.__table__
    connection.execute(delete(table))
    if not keys:
        return 0
    written = 0
    with_params = interaction.recording_meta.like('%"params"%')
    rows = connection.execute(
        select(interaction.id, interaction.recording_meta, interaction.started_at).where(with_params)
    )
    batch: list[dict[str, object]] = []
    for interaction_id, recording_meta, started_at in rows:
        for key, value in meta_values(recording_meta, keys).items():
            batch.append(
                {"interaction_id": interaction_id, "key": key, "value": value, "started_at": started_at}
            )
        if len(batch) >= 5000:
            connection.execute(insert(table), batch)
            written += len(batch)
            batch = []
    if batch:
        connection.execute(insert(table), batch)
        written += len(batch)
    return written
