"""What the running recorder is doing, as the update policy needs it (``policy.Activity``).

The capture controller knows its own mode, the uploader its queue; neither keeps whether the agent
has a call (a call that is not screen-recorded -- sampling -- leaves the controller idle, and a
ringing call has no capture yet). ``CallWatch`` keeps that from the server's events, fed every
envelope by the service's dispatcher like ``heartbeat.PolicyWatch``."""

from __future__ import annotations

import logging
from typing import Any

from recorder_service.updater.policy import Activity
from tandem_protocol.events import CallInfo, Envelope, EventType, Phase

log = logging.getLogger(__name__)

_CALL_EVENTS = (EventType.CALL_STARTED, EventType.CALL_UPDATED, EventType.CALL_ENDED, EventType.ACW_ENDED)
# a ringing call counts: it may be answered during the few seconds a restart takes
_OPEN = (Phase.RINGING, Phase.ACTIVE, Phase.ACW)


class CallWatch:
    def __init__(self) -> None:
        self.phases: dict[str, Phase] = {}  # interaction id -> its latest phase, open calls only

    def _note(self, raw: Any) -> None:
        try:
            call = CallInfo.from_dict(raw)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("call event not understood, the update keeps waiting for a clear state: %s", exc)
            return
        if call.phase in _OPEN:
            self.phases[call.interaction_id] = call.phase
        else:
            self.phases.pop(call.interaction_id, None)

    def observe(self, envelope: Envelope) -> None:
        if envelope.type == EventType.STATE:
            # the full state (on connect): it replaces what we knew
            self.phases.clear()
            if isinstance(envelope.data.get("call"), dict):
                self._note(envelope.data["call"])
        elif envelope.type in _CALL_EVENTS:
            self._note(envelope.data)

    @property
    def in_call(self) -> bool:
        return bool(self.phases)

    @property
    def in_acw(self) -> bool:
        """Only after-call work is open (the call itself has ended)."""
        return bool(self.phases) and all(p == Phase.ACW for p in self.phases.values())


def activity_of(controller: Any, uploader: Any, calls: CallWatch) -> Activity:
    """The policy's view of the running service (controller.mode, uploader.stats())."""
    stats = uploader.stats()
    return Activity(
        capture_mode=str(getattr(controller, "mode", "idle")),
        in_call=calls.in_call,
        pending_segments=int(getattr(stats, "pending_segments", 0)),
        uploading=getattr(stats, "state", "") == "uploading" or getattr(stats, "current", None) is not None,
    )
