"""After the switch: does the new version run in the real sessions, or does the updater roll back?

The self-test (``system.py`` step 5) runs the new version once, as ``nobody``, before ``current``
moves. A version can pass it and still fail where it matters: it crashes when a user's session
starts it, it cannot reach the server with the user's credential, the user unit restarts it in a
loop. So the switch is only provisional: the updater keeps a record of it (``Watch``: switched to
V from P at T; ``system.py`` stores it in ``<root>/update-watch.json``) and judges it on its next
runs from the recorders' activity records, until it confirms V or switches ``current`` back to P.

*Healthy* is what a recorder says in its activity record (``activity_file.ActivityRecord.healthy``,
set by ``in_recorder.SelfUpdate.mark_healthy``): its event channel was accepted by the server (the
WebSocket upgrade checks the recorder's bearer token: enrolled and authenticated) and the server's
first full ``state`` message arrived on it -- the first thing every recorder gets from the server.
A device recorder with nobody logged in has no server session to open; it says healthy once its
pairing endpoint listens (all it does until an agent logs in).

The rule (``judge``), with ``deadline`` seconds after the switch:

* **crashed** -- a record whose process has ended, written by V (it started and died) or by a
  recorder that was live at the switch (it re-executed into V -- same pid -- and died). A recorder
  that stops cleanly (logout) removes its record, so it is no evidence either way.
* before the deadline: **confirm** at once when every live recorder runs V and says healthy and
  nothing crashed; otherwise **wait** (a recorder may take a few seconds to connect, or still be
  in a call on P).
* at the deadline: **roll back** if anything crashed, or a live recorder runs V and is still not
  healthy; else **confirm** if at least one live recorder is healthy on V (ones still on older
  versions are busy or hold a pairing: they move when idle, and are no evidence against V); else
  **wait** -- nobody has run V yet (nobody logged in, or every recorder still busy). Absence alone
  never rolls back: no evidence against V is not evidence.

Pure: no files, no clock (the caller passes ``now``), so the rule is tested as a table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

DEFAULT_DEADLINE = 600.0  # seconds after the switch: time enough to log in, connect and report
# Seconds the recorders get after a switch to report the new version healthy (``health``); the
# updater's environment (a systemd drop-in, the task's), never a user's file.
HEALTH_DEADLINE_ENV = "TANDEM_UPDATE_HEALTH_SECONDS"

Action = Literal["wait", "confirm", "roll_back"]


@dataclass(frozen=True)
class Watch:
    """One switch awaiting its verdict."""

    version: str  # V: what ``current`` points at now
    previous: str  # P: what it pointed at before, the rollback target
    switched_at: float  # wall clock, seconds
    deadline: float  # seconds after ``switched_at``
    live_before: tuple[str, ...] = ()  # names (uids) of the recorders live at the switch

    def to_dict(self) -> dict[str, object]:
        return {
            "version": self.version,
            "previous": self.previous,
            "switched_at": self.switched_at,
            "deadline": self.deadline,
            "live_before": list(self.live_before),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Watch:
        """Raises ValueError/KeyError/TypeError for a record that is not one of ours."""
        before = data.get("live_before", [])
        if not isinstance(before, list):
            raise TypeError("live_before is not a list")
        switched, deadline = data["switched_at"], data["deadline"]
        if not isinstance(switched, int | float) or not isinstance(deadline, int | float):
            raise TypeError("switched_at and deadline must be numbers")
        return cls(
            version=str(data["version"]),
            previous=str(data["previous"]),
            switched_at=float(switched),
            deadline=float(deadline),
            live_before=tuple(str(b) for b in before),
        )


@dataclass(frozen=True)
class Snapshot:
    """One recorder's activity record as the updater found it."""

    name: str  # the record's name: the uid (Linux) or user (Windows)
    version: str
    healthy: bool
    alive: bool  # False: its process has ended (records not believed at all are left out)


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str


def _names(snaps: Iterable[Snapshot]) -> str:
    return ", ".join(sorted(s.name for s in snaps))


def judge(watch: Watch, snapshots: Iterable[Snapshot], now: float) -> Verdict:
    """The rule in the module docstring."""
    snaps = list(snapshots)
    v = watch.version
    live = [s for s in snaps if s.alive]
    crashed = [s for s in snaps if not s.alive and (s.version == v or s.name in watch.live_before)]
    on_v = [s for s in live if s.version == v]
    healthy = [s for s in on_v if s.healthy]
    unhealthy = [s for s in on_v if not s.healthy]
    others = [s for s in live if s.version != v]
    minutes = f"{watch.deadline / 60:g} min"
    if now < watch.switched_at + watch.deadline:
        if live and len(healthy) == len(live) and not crashed:
            return Verdict("confirm", f"{v} healthy on every running recorder ({_names(healthy)})")
        left = watch.switched_at + watch.deadline - now
        return Verdict(
            "wait",
            f"waiting up to {left:.0f} s more for recorders to report {v} healthy "
            f"({len(healthy)} healthy, {len(unhealthy)} not yet, {len(others)} still on older versions)",
        )
    if crashed:
        return Verdict(
            "roll_back", f"recorder(s) {_names(crashed)} stopped after the switch to {v} (crashed)"
        )
    if unhealthy:
        return Verdict(
            "roll_back",
            f"recorder(s) {_names(unhealthy)} run {v} but did not report healthy (server session "
            f"accepted) within {minutes}",
        )
    if healthy:
        rest = f"; {_names(others)} still on older versions, moving when idle" if others else ""
        return Verdict("confirm", f"{v} healthy on {_names(healthy)}{rest}")
    if others:
        return Verdict("wait", f"no recorder has started {v} yet ({_names(others)} busy on older versions)")
    return Verdict("wait", f"no recorder is running: waiting for one to start {v} (absence is no failure)")
