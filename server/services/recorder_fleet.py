"""Recorder health: each recorder's latest heartbeat stored, and the fleet as administrators see it
— every recorder with its host, agent, last contact, version, state, backlog, free disk, clock
accuracy and last error, problems first.

"Offline" is read off the last heartbeat's time (more than three of its own intervals ago), not
stored by a timer: after a server restart, or for a PC switched off, the answer is right at once.
A recorder enrolled but never heard from is listed too ("never_seen"): to IT that is a PC where the
service does not run. So are PCs that never got that far: a refused enrolment (token or code) and
a recorder that does not run, as the agent's desktop there reported it. Who sees what: admins every
recorder; supervisors the recorders (and desktop reports) of their teams' agents (as on
``GET /api/agents``); any other role is refused, audited.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import Forbidden
from server.security.tokens import RECORDER_SCOPE
from server.services import enrolment_refusals, recorder_problems
from server.services.actor import Actor, refuse
from server.store import models
from tandem_protocol.recorder_health import Heartbeat
from tandem_protocol.recorder_policy import RecorderPolicy

ACTION = "fleet.read"
MISSED_BEATS = 3  # offline after this many heartbeat intervals without one
BACKLOG_SEGMENTS = 10  # segments waiting for the server: uploads are not keeping up
BACKLOG_SPOOL_SHARE = 0.5  # or the spool is half its quota
LOW_DISK_MARGIN = 5.0  # percent above the policy's floor where the fleet warns before capture stops
CLOCK_LIMIT = 0.1  # ± seconds: worse than this and frames may be misplaced against the voice
GONE_AFTER = 30 * 86400  # a revoked or expired recorder is listed this long after its last contact

# Problems, worst first: the fleet's order and the page's colours follow this.
PROBLEMS = {
    "recorder_problem": "recorder not running",
    "enrol_refused": "enrolment refused",
    "offline": "no heartbeat for three intervals",
    "never_seen": "enrolled, never connected",
    "revoked": "its credential was revoked or expired",
    "failed": "capture failed",
    "spool_full": "spool full: capture stopped",
    "low_disk": "disk almost full",
    "backlog": "uploads are falling behind",
    "clock": "clock not synchronised with the server",
    "error": "reported an error",
}
_RANK = {code: i for i, code in enumerate(PROBLEMS)}
# Each recorder's latest self-update state from its heartbeat, by token id: (state, detail). Kept in
# memory, not in recorder_status (no schema change for a figure every heartbeat repeats): after a
# server restart it is back with each recorder's next heartbeat.
_UPDATES: dict[int, tuple[str, str]] = {}


@dataclass(frozen=True, slots=True)
class FleetEntry:
    token_id: int
    user_id: int
    agent: str
    full_name: str
    team: str
    host: str
    version: str
    status: str  # the reported state, or offline / never_seen / revoked
    reported_state: str
    interaction_id: str | None
    last_seen: float | None
    spool_bytes: int
    segments_pending: int
    upload: dict[str, Any] | None
    free_disk_bytes: int | None
    free_disk_percent: float | None
    clock_offset: float | None
    clock_accuracy: float | None
    last_error: str
    interval: float | None
    problems: list[str] = field(default_factory=list)
    # A device's recorder: the PC's OS account its pairing came from (device_pairings.os_user), else "".
    os_user: str = ""
    update_state: str = ""  # the PC's last self-update check (off, waiting, applied, rolled_back, ...)
    update_detail: str = ""
    # A PC whose enrolment was refused (status "enrol_refused"): token_id 0, no agent; the reason
    # in words, the token's prefix, the source address and how many attempts are kept.
    refusal: dict[str, Any] | None = None
    # A PC whose recorder is not running, as its agent's desktop reported it (status "problem"):
    # token_id 0, the reporter as the agent; kind, message, OS user, when (recorder_problems.py).
    report: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["problem_text"] = "; ".join(self._problem_text(p) for p in self.problems)
        return out

    def _problem_text(self, code: str) -> str:
        if code == "enrol_refused" and self.refusal:
            return f"{PROBLEMS[code]}: {self.refusal['reason_text']}"
        if code == "recorder_problem" and self.report:
            return f"{PROBLEMS[code]}: {self.report['kind_text']}"
        return PROBLEMS[code]


# -- pure rules ------------------------------------------------------------------------------


def is_offline(last_seen: float, interval: float, now: float) -> bool:
    return now - last_seen > MISSED_BEATS * interval


def problems_of(
    *,
    state: str,
    last_seen: float | None,
    interval: float | None,
    segments_pending: int,
    spool_bytes: int,
    free_disk_percent: float | None,
    clock_accuracy: float | None,
    last_error: str,
    credential_valid: bool,
    policy: RecorderPolicy,
    now: float,
) -> list[str]:
    """The problem codes of one recorder, worst first (``PROBLEMS``)."""
    found: list[str] = []
    if not credential_valid:
        found.append("revoked")
    if last_seen is None:
        return [*found, "never_seen"] if credential_valid else found
    offline = is_offline(last_seen, interval or policy.heartbeat_seconds, now)
    if offline and credential_valid:
        found.append("offline")
    if state == "failed":
        found.append("failed")
    if state == "spool_full":
        found.append("spool_full")
    if free_disk_percent is not None and free_disk_percent < policy.spool_min_free_percent + LOW_DISK_MARGIN:
        found.append("low_disk")
    quota = policy.spool_max_mb * 1024 * 1024
    if segments_pending >= BACKLOG_SEGMENTS or spool_bytes >= BACKLOG_SPOOL_SHARE * quota:
        found.append("backlog")
    if not offline and (clock_accuracy is None or clock_accuracy > CLOCK_LIMIT):
        found.append("clock")
    if last_error:
        found.append("error")
    return sorted(found, key=_RANK.__getitem__)


def order_key(entry: FleetEntry) -> tuple[int, float, str]:
    """Problems first (the worst problem decides), then the longest silent, then by host."""
    worst = _RANK[entry.problems[0]] if entry.problems else len(PROBLEMS)
    return (worst, entry.last_seen or 0.0, entry.host)


# -- storage -----------------------------------------------------------------------------------


def store_heartbeat(session: Session, token_id: int, user_id: int, beat: Heartbeat, now: float) -> None:
    """Keep the recorder's latest heartbeat (one row per recorder token)."""
    row = session.get(models.RecorderStatus, token_id)
    if row is None:
        row = models.RecorderStatus(token_id=token_id, user_id=user_id, first_seen=now)
        session.add(row)
    row.user_id = user_id
    row.host = beat.host
    row.version = beat.version
    row.state = beat.state
    row.interaction_id = beat.interaction_id
    row.spool_bytes = beat.spool_bytes
    row.segments_pending = beat.segments_pending
    row.upload = json.dumps(asdict(beat.upload)) if beat.upload is not None else ""
    row.last_error = beat.last_error
    row.free_disk_bytes = beat.free_disk_bytes
    row.free_disk_percent = beat.free_disk_percent
    row.clock_offset = beat.clock_offset
    row.clock_accuracy = beat.clock_accuracy
    row.interval = beat.interval
    row.last_seen = now
    session.flush()
    _UPDATES[token_id] = (beat.update_state, beat.update_detail)


def fleet(
    session: Session,
    actor: Actor,
    supervised_teams: Iterable[int],
    policy: RecorderPolicy,
    now: float,
) -> list[FleetEntry]:
    """Every recorder the actor may see, problems first. Refused (audited) for agents,
    evaluators and compliance."""
    if actor.role not in ("admin", "supervisor"):
        error = Forbidden("forbidden", "the recorder fleet is for administrators and supervisors")
        raise refuse(session, actor, error, action=ACTION, target_type="fleet", target_id="recorders")
    query = (
        select(models.ApiToken, models.User, models.RecorderStatus, models.Team, models.DevicePairing.os_user)
        .join(models.User, models.User.id == models.ApiToken.user_id)
        .outerjoin(models.RecorderStatus, models.RecorderStatus.token_id == models.ApiToken.id)
        .outerjoin(models.Team, models.Team.id == models.User.team_id)
        # A device's recorder token: the OS account its pairing came from (one pairing per token).
        .outerjoin(models.DevicePairing, models.DevicePairing.recorder_token_id == models.ApiToken.id)
        .where(models.ApiToken.client == RECORDER_SCOPE)
    )
    if actor.role != "admin":
        query = query.where(models.User.team_id.in_(list(supervised_teams) or [-1]))
    entries = []
    for token, user, status, team, os_user in session.execute(query).all():
        valid = token.revoked_at is None and token.expires_at > now
        last_seen = status.last_seen if status is not None else None
        if not valid and (last_seen is None or now - last_seen > GONE_AFTER):
            continue  # an old credential nobody uses: not part of the fleet any more
        entries.append(_entry(token, user, status, team, valid, policy, now, os_user or ""))
    if actor.role == "admin":  # a refused PC belongs to no team yet: only admins see it
        entries.extend(refused_entry(h) for h in enrolment_refusals.refused_hosts(session, now))
    # A reported problem is its own row, also for a host that has a recorder row: that row is the
    # recorder's last contact, this one what the desktop saw since. Supervisors: their teams' reports.
    teams = None if actor.role == "admin" else list(supervised_teams)
    entries.extend(problem_entry(p) for p in recorder_problems.reported(session, teams, now))
    return sorted(entries, key=order_key)


# Words a server message wraps a refusal's reason in ("this enrolment code has expired").
_FILLER = frozenset({"this", "the", "a", "an", "enrolment", "was", "has", "been", "is", "already"})


def restates(message: str, reason_text: str) -> bool:
    """True when ``message`` says no more than ``reason_text`` ("unknown enrolment code" after
    "unknown code"); false when it adds something ("...; ask IT for a new one", a count)."""
    words = {w for w in message.lower().replace(";", " ").replace(":", " ").split() if w not in _FILLER}
    return words <= set(reason_text.lower().split())


def _pc_without_recorder(**fields: Any) -> FleetEntry:
    """A fleet row for a PC with no recorder token of its own (refused, or reported not running):
    token 0 and none of a recorder's telemetry."""
    return FleetEntry(
        token_id=0,
        reported_state="",
        interaction_id=None,
        spool_bytes=0,
        segments_pending=0,
        upload=None,
        free_disk_bytes=None,
        free_disk_percent=None,
        clock_offset=None,
        clock_accuracy=None,
        interval=None,
        **fields,
    )


def refused_entry(host: enrolment_refusals.RefusedHost) -> FleetEntry:
    """A PC that tried to enrol and was refused, as a fleet row (it has no recorder token)."""
    token = f"{host.credential} {host.token_prefix}…" + (
        f" (#{host.token_id})" if host.token_id is not None else ""
    )
    times = f"{host.attempts} attempt{'s' if host.attempts != 1 else ''}"
    return _pc_without_recorder(
        user_id=0,
        agent=host.os_user,
        full_name="",
        team="",
        host=host.hostname,
        version="",
        status="enrol_refused",
        last_seen=host.at,
        # The page shows problem_text ("enrolment refused: unknown code") beside this: the server's
        # message only when it adds to the reason.
        last_error=("" if restates(host.message, host.reason_text) else f"{host.message} — ")
        + f"{token}, {times} from {host.remote_addr or 'unknown address'}",
        problems=["enrol_refused"],
        refusal=asdict(host),
    )


def problem_entry(problem: recorder_problems.ReportedProblem) -> FleetEntry:
    """A PC whose recorder is not running, as its desktop reported it, as a fleet row."""
    return _pc_without_recorder(
        user_id=problem.reported_by_id or 0,
        agent=problem.reported_by,
        full_name=problem.full_name,
        team=problem.team,
        host=problem.hostname,
        version=problem.recorder_version,
        status="problem",
        last_seen=problem.occurred_at,
        last_error=problem.message,
        problems=["recorder_problem"],
        report=asdict(problem),
    )


def _entry(
    token: models.ApiToken,
    user: models.User,
    status: models.RecorderStatus | None,
    team: models.Team | None,
    valid: bool,
    policy: RecorderPolicy,
    now: float,
    os_user: str = "",
) -> FleetEntry:
    s = status
    state = s.state if s is not None else "never_seen"
    problems = problems_of(
        state=state,
        last_seen=s.last_seen if s else None,
        interval=s.interval if s else None,
        segments_pending=s.segments_pending if s else 0,
        spool_bytes=s.spool_bytes if s else 0,
        free_disk_percent=s.free_disk_percent if s else None,
        clock_accuracy=s.clock_accuracy if s else None,
        last_error=s.last_error if s else "",
        credential_valid=valid,
        policy=policy,
        now=now,
    )
    shown = state
    for override in ("revoked", "offline", "never_seen"):
        if override in problems:
            shown = override
            break
    return FleetEntry(
        token_id=token.id,
        user_id=user.id,
        agent=user.username,
        full_name=user.full_name,
        team=team.name if team is not None else "",
        host=s.host if s else "",
        version=s.version if s else "",
        status=shown,
        reported_state=state,
        interaction_id=s.interaction_id if s else None,
        last_seen=s.last_seen if s else None,
        spool_bytes=s.spool_bytes if s else 0,
        segments_pending=s.segments_pending if s else 0,
        upload=json.loads(s.upload) if s and s.upload else None,
        free_disk_bytes=s.free_disk_bytes if s else None,
        free_disk_percent=s.free_disk_percent if s else None,
        clock_offset=s.clock_offset if s else None,
        clock_accuracy=s.clock_accuracy if s else None,
        last_error=s.last_error if s else "",
        interval=s.interval if s else None,
        problems=problems,
        os_user=os_user,
        update_state=_UPDATES.get(token.id, ("", ""))[0],
        update_detail=_UPDATES.get(token.id, ("", ""))[1],
    )
