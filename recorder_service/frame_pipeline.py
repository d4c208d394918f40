"""What a capture session grabs, built from the admin's recorder policy: the screen source (all
monitors as one canvas, or the primary) and whatever the policy adds around it.

One place composes the grabber so that the capture session stays ignorant of policy: it calls
``build_grabber(policy)`` and gets a ``Grabber``.
"""

from __future__ import annotations

from recorder_service.capture import Grabber, MssGrabber
from tandem_protocol.recorder_policy import RecorderPolicy


def build_grabber(policy: RecorderPolicy) -> Grabber:
    """mss monitor 0 is the union of all monitors, 1 the primary."""
    return MssGrabber(0 if policy.monitors == "all" else 1)
