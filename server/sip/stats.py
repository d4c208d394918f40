"""``SipStats``: the SIP engine's counters since start (``GET /api/admin/sip/stats``).

A leaf: the service owns the counters and the UAS and its BYE client count into them, so it
imports nothing of the engine (it used to live in ``service``, which made the UAS
and the BYE client import the service that imports them).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class SipStats:
    received: int = 0
    malformed: int = 0
    dropped: int = 0  # malformed with no response possible, overload, stray responses
    handler_errors: int = 0
    responses: Counter[int] = field(default_factory=Counter)  # sent, by status code
    calls_started: int = 0
    calls_ended: Counter[str] = field(default_factory=Counter)  # by reason
    retransmissions: int = 0  # 2xx resent while waiting for ACK
    refused_per_source: int = 0  # INVITEs refused: too many dialogs from one source
    refused: Counter[str] = field(default_factory=Counter)  # INVITEs refused, by reason code
    untrusted: int = 0  # messages (any method, responses too) from outside sip_trusted_sources
    auth_challenges: int = 0  # 401s sent to INVITEs without (or with stale) digest credentials
    # Deviations from RFC 3261 accepted (or ACKs dropped unanswered) instead of failing the call,
    # by kind: see CallManager.tolerate and the README's SIP section.
    tolerated: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "received": self.received,
            "malformed": self.malformed,
            "dropped": self.dropped,
            "handler_errors": self.handler_errors,
            "responses": {str(k): v for k, v in sorted(self.responses.items())},
            "calls_started": self.calls_started,
            "calls_ended": dict(self.calls_ended),
            "retransmissions": self.retransmissions,
            "refused": dict(self.refused),
            "untrusted": self.untrusted,
            "auth_challenges": self.auth_challenges,
            "tolerated": dict(self.tolerated),
        }
