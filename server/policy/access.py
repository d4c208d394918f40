"""Who may see which interaction. Pure: callers pass the facts, this says yes or no."""

from __future__ import annotations

from dataclasses import dataclass

SEE_ALL_ROLES = frozenset({"admin", "compliance"})
TEAM_ROLES = frozenset({"supervisor", "evaluator"})
MEDIA_ROLES = SEE_ALL_ROLES | TEAM_ROLES


@dataclass(frozen=True, slots=True)
class Viewer:
    user_id: int
    role: str
    supervised_team_ids: frozenset[int]


def may_see_interaction(viewer: Viewer, agent_id: int | None, agent_team_id: int | None) -> bool:
    if viewer.role in SEE_ALL_ROLES:
        return True
    if viewer.role in TEAM_ROLES:
        return agent_team_id is not None and agent_team_id in viewer.supervised_team_ids
    if viewer.role == "agent":
        return agent_id is not None and agent_id == viewer.user_id
    return False


def may_play_media(
    viewer: Viewer,
    agent_id: int | None,
    agent_team_id: int | None,
    agent_play_teams: frozenset[int] = frozenset(),
) -> bool:
    """Agents see their own call list; they replay their own recordings only where the admin
    allows it for their team (``agent_play_teams``, server/services/agent_playback.py)."""
    if viewer.role == "agent":
        return (
            agent_team_id is not None
            and agent_team_id in agent_play_teams
            and may_see_interaction(viewer, agent_id, agent_team_id)
        )
    return viewer.role in MEDIA_ROLES and may_see_interaction(viewer, agent_id, agent_team_id)
