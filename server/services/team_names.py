"""Teams named by an admin (per-team settings: agents' playback, pause policy): the rows, or one
clear refusal naming the first unknown name and the teams there are."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import InvalidInput
from server.store import models


def teams_named(session: Session, names: Iterable[str]) -> tuple[list[str], list[models.Team]]:
    """(the names, stripped, unique, sorted; their teams). ``InvalidInput`` for an unknown name."""
    wanted = sorted({n.strip() for n in names if n.strip()})
    rows = (
        list(session.execute(select(models.Team).where(models.Team.name.in_(wanted))).scalars())
        if wanted
        else []
    )
    unknown = sorted(set(wanted) - {t.name for t in rows})
    if unknown:
        known = ", ".join(sorted(session.execute(select(models.Team.name)).scalars())) or "none yet"
        raise InvalidInput("unknown_team", f'there is no team named "{unknown[0]}" (teams: {known})')
    return wanted, rows
