"""What an INVITE asks of the recorder, beyond its SDP: pure functions, no sockets.

- ``call_offer``: the listener's ``CallOffer`` from a parsed ``RecordingOffer`` — the parties a
  SIPREC metadata names (with the user parts of their AORs, which the core matches to DNs) or,
  for a plain INVITE (Genesys GIR style), the DN and recording parameters from the Request-URI
  and ``X-Recording-*`` headers.
- ``consent_declined``: the caller declined recording, by a configurable header or a
  configurable metadata element/attribute (SBCs carry an IVR's consent answer either way).
- ``control_action``: a SIP-side pause/resume/stop request in a configurable header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.sip.aor import aor_number
from server.sip.listener import CallOffer, OfferedStream, Party, UpdateKind
from server.sip.message import SipRequest
from server.sip.rs_model import RecordingMetadata
from server.sip.siprec import RecordingOffer

DECLINED = frozenset({"declined", "decline", "denied", "deny", "no", "false", "0", "refused", "off"})
_TRANSPORT_PARAMS = frozenset({"transport", "lr", "maddr", "user", "method", "ttl"})
_CONTROL = {"pause": UpdateKind.PAUSE, "resume": UpdateKind.RESUME, "stop": UpdateKind.STOP}
MAX_PARAMS = 32
MAX_PARAM_LENGTH = 200


@dataclass(frozen=True, slots=True)
class RequestPolicy:
    """Names of the headers and metadata flags the recorder reads (server settings)."""

    consent_header: str = "X-Recording-Consent"
    consent_element: str = "consent"  # metadata element (or attribute) whose value says declined
    control_header: str = "X-Recording-Control"
    dn_header: str = "X-Recording-DN"
    param_prefix: str = "x-recording-"


def user_number(uri_text: str) -> str | None:
    """The number an AOR names, in any form SRCs write one (``server.sip.aor``)."""
    return aor_number(uri_text)


def parties(offer: RecordingOffer) -> tuple[Party, ...]:
    index_of = {s.label: s.audio.index for s in offer.streams if s.label is not None}
    out: list[Party] = []
    for p in offer.participants:
        numbers = tuple(n for n in (user_number(a) for a in p.aors) if n)
        sends = tuple(index_of[label] for label in p.sends if label in index_of)
        out.append(Party(p.participant_id, p.aor, p.name, numbers, sends, p.calling_party, p.recorded))
    return tuple(out)


def metadata_parties(metadata: RecordingMetadata) -> tuple[Party, ...]:
    """Parties of a metadata-only update (no SDP): who takes part now, streams unknown."""
    out: list[Party] = []
    for p in metadata.participants:
        if not p.declared:
            continue
        numbers = tuple(n for n in (user_number(a) for a in p.aors) if n)
        out.append(
            Party(
                p.participant_id,
                p.aors[0] if p.aors else None,
                p.names[0] if p.names else None,
                numbers,
                (),
                p.calling_party,
                p.recorded,
            )
        )
    return tuple(out)


def recording_params(req: SipRequest, policy: RequestPolicy) -> tuple[tuple[str, str], ...]:
    """Request-URI parameters (other than transport ones) and ``X-Recording-*`` headers, bounded."""
    params: list[tuple[str, str]] = []
    for key, value in req.uri.params.items():
        if key not in _TRANSPORT_PARAMS:
            params.append((key, (value or "")[:MAX_PARAM_LENGTH]))
    for name, value in req.headers:
        lowered = name.lower()
        if lowered.startswith(policy.param_prefix):
            params.append((lowered[len(policy.param_prefix) :], value.strip()[:MAX_PARAM_LENGTH]))
    return tuple(params[:MAX_PARAMS])


def recorded_dn(req: SipRequest, policy: RequestPolicy) -> str:
    """DN header, else a ``dn=`` Request-URI parameter, else the Request-URI user part."""
    header = req.get(policy.dn_header)
    if header and header.strip():
        return header.strip()[:64]
    param = req.uri.params.get("dn")
    if param:
        return param[:64]
    return req.uri.user or ""


def consent_declined(req: SipRequest, metadata_xml: bytes | None, policy: RequestPolicy) -> bool:
    header = req.get(policy.consent_header)
    if header is not None and header.strip().lower() in DECLINED:
        return True
    if not metadata_xml or not policy.consent_element:
        return False
    name = re.escape(policy.consent_element)
    text = metadata_xml.decode("utf-8", "replace")
    # Element text (<consent>declined</consent>, any prefix) or attribute (consent="no").
    for pattern in (
        rf"<(?:[\w.-]+:)?{name}(?:\s[^>]*)?>\s*([^<\s]+)\s*<",
        rf"\b{name}\s*=\s*[\"']([^\"']*)[\"']",
    ):
        for match in re.finditer(pattern, text, re.IGNORECASE):
            if match.group(1).strip().lower() in DECLINED:
                return True
    return False


def control_action(req: SipRequest, policy: RequestPolicy) -> UpdateKind | None:
    value = req.get(policy.control_header)
    if value is None:
        return None
    return _CONTROL.get(value.split(";")[0].strip().lower())


def call_offer(
    req: SipRequest, source: tuple[str, int], offer: RecordingOffer, policy: RequestPolicy
) -> CallOffer:
    from_, to = req.from_, req.to
    recorded = offer.accepted_streams
    streams = tuple(OfferedStream(s.audio.index, s.label, s.audio.codec or "", s.sender) for s in recorded)
    found = parties(offer)
    caller = _display(from_.display, from_.uri.user or from_.uri.raw) if from_ else ""
    return CallOffer(
        call_id=req.call_id or "",
        dn=recorded_dn(req, policy),
        caller=caller,
        callee=(to.uri.user or to.uri.raw) if to else "",
        source=source,
        codec=recorded[0].audio.codec or "" if recorded else "",
        siprec=offer.siprec,
        session_id=offer.session_id,
        participants=found,
        streams=streams,
        deferred=offer.deferred,
        consent_declined=consent_declined(req, offer.metadata_xml, policy),
        params=recording_params(req, policy),
        warnings=offer.warnings,
    )


def _display(display: str | None, number: str) -> str:
    """What an agent and a supervisor want to read: the name and the number, when both are known."""
    if display and number and display != number:
        return f"{display} <{number}>"
    return display or number
