"""What the server knows about the agents' recorders while calls go on: whether each agent's
recorder is connected (so a sampled call without one says so at once), and the admin's recorder
policy the recorders are given (in every ``screen.start``, and pushed as ``recorder.policy`` to
the connected ones when it changes).

A recorder that disconnects mid-call gets the heartbeat timeout (three of the policy's
``heartbeat_seconds``) to come back — a network blip or a restart of the service is not a missing
recorder — after which the call's screen is ``no_recorder``; when one connects again the screen
is ``requested`` before the recorder's ``state`` message is built, so the recorder's resync starts
the capture (paused if the call is). Runs on the event loop; database work goes through
``RecordingControl`` (queued, never lost to a busy database).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from server.calls.control import LiveCall, RecordingControl
from server.events.hub import EventHub
from tandem_protocol.events import EventType, Phase
from tandem_protocol.recorder_policy import RecorderPolicy

log = logging.getLogger(__name__)
RECORDER = "recorder"  # the event channel's client name of a recorder
MISSED_BEATS = 3
DEFAULT_HEARTBEAT = RecorderPolicy().heartbeat_seconds
POLICY_POLL_SECONDS = 5.0  # how soon a change made with the CLI (another process) reaches recorders


class RecorderLink:
    def __init__(
        self,
        hub: EventHub,
        control: RecordingControl,
        calls: dict[str, LiveCall],
        current: dict[int, str],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._hub = hub
        self._control = control
        self._calls = calls
        self._current = current
        self._sleep = sleep
        self._agents: set[int] = set()  # agents whose recorder connected since the server started
        self._timers: dict[int, asyncio.Task[None]] = {}
        self.policy: dict[str, Any] = RecorderPolicy().to_dict()
        control.recorder_policy = self.policy

    # -- presence ----------------------------------------------------------------------------
    def connected(self, agent_id: int | None) -> bool:
        return agent_id is not None and RECORDER in self._hub.connected_clients(agent_id)

    @property
    def timeout(self) -> float:
        """Seconds a recorder may be gone before its agent's call counts it missing."""
        return MISSED_BEATS * float(self.policy.get("heartbeat_seconds", DEFAULT_HEARTBEAT))

    async def recorder_connected(self, agent_id: int) -> None:
        """Call after the recorder's subscription is made and before its ``state`` is built."""
        self._agents.add(agent_id)
        timer = self._timers.pop(agent_id, None)
        if timer is not None:
            timer.cancel()
        # The policy in force, queued behind the ``state`` message: a recorder that connects
        # between two calls knows its heartbeat, spool and upload rules before any screen.start.
        self._hub.publish(agent_id, EventType.RECORDER_POLICY, dict(self.policy))
        live = self._live(agent_id)
        pause_at = live.state.unconfirmed_pause_start() if live is not None else None
        if live is not None and pause_at is not None:
            # Queued behind the ``state`` message (which does not say "paused" for a pause not
            # confirmed): the recorder pauses from the pause's start — frames already taken after
            # it are cut — and its ack completes the secure pause.
            self._control.command(live, EventType.SCREEN_PAUSE, pause_at)
        if live is not None and live.state.recorder_back():
            log.info("interaction %s: the recorder is back; screen requested again", live.interaction_id)
            await self._control.save(live)
            self._control.publish(live, EventType.CALL_UPDATED)
            await self._control.audit(
                "recording.screen_requested", live.interaction_id, "the agent's recorder connected again"
            )

    def recorder_disconnected(self, agent_id: int) -> None:
        """Call after the recorder's subscription ended."""
        if self.connected(agent_id) or agent_id in self._timers:
            return  # another connection of it is still up, or the wait already runs
        task = asyncio.create_task(self._wait_for_return(agent_id, self.timeout))
        self._timers[agent_id] = task
        task.add_done_callback(
            lambda t: self._timers.pop(agent_id, None) if self._timers.get(agent_id) is t else None
        )

    async def _wait_for_return(self, agent_id: int, grace: float) -> None:
        await self._sleep(grace)
        if self.connected(agent_id):
            return
        await self.mark_missing(agent_id, f"recorder not connected (gone for more than {grace:g} s)")

    async def mark_missing(self, agent_id: int, why: str) -> bool:
        live = self._live(agent_id)
        if live is None or not live.state.recorder_lost():
            return False
        log.warning("interaction %s: %s", live.interaction_id, why)
        await self._control.save(live)
        self._control.publish(live, EventType.CALL_UPDATED)
        await self._control.audit("recording.screen_missing", live.interaction_id, why, outcome="failed")
        return True

    async def screen_unavailable(self, live: LiveCall) -> None:
        """A sampled call was answered with no recorder connected (its state says so already):
        the audit trail says why the screen is missing."""
        await self._control.audit(
            "recording.screen_missing", live.interaction_id, "recorder not connected", outcome="failed"
        )

    def close(self) -> None:
        for task in list(self._timers.values()):
            task.cancel()
        self._timers.clear()

    # -- policy ------------------------------------------------------------------------------
    def set_policy(self, policy: dict[str, Any]) -> int:
        """The policy in force from now on; when it changed, pushed to every connected recorder.
        Returns how many were told. Call on the event loop."""
        if policy == self.policy:
            return 0
        self.policy = policy
        self._control.recorder_policy = policy
        told = 0
        for agent_id in sorted(self._agents):
            if self.connected(agent_id):
                self._hub.publish(agent_id, EventType.RECORDER_POLICY, dict(policy))
                told += 1
        log.info("recorder policy changed: sent to %d connected recorder(s)", told)
        return told

    async def watch_policy(
        self, load: Callable[[], dict[str, Any]], interval: float = POLICY_POLL_SECONDS
    ) -> None:
        """Re-read the stored policy every ``interval`` s (in a thread): a change made by
        ``tandem-server recorder-policy`` in another process reaches the recorders too."""
        while True:
            try:
                self.set_policy(await asyncio.to_thread(load))
            except Exception as exc:  # a busy database: try again at the next round
                log.warning("recorder policy not re-read: %s", exc)
            await asyncio.sleep(interval)

    # -- helpers -----------------------------------------------------------------------------
    def _live(self, agent_id: int) -> LiveCall | None:
        live = self._calls.get(self._current.get(agent_id, ""))
        if live is None or live.state.phase is Phase.DONE:
            return None
        return live
