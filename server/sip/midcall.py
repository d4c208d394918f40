"""In-dialog requests of a recorded call: re-INVITE and UPDATE offers, INFO.

A new offer may (RFC 7866 §8.1.5, RFC 3264 §8):
- make every recorded stream ``inactive`` (or ``c=0.0.0.0``): the SRC pauses recording;
- make some of them inactive: the call is on hold;
- make them active again (resume), or start a deferred session's media;
- move a stream (new address/port): the RTP source latch starts over;
- carry partial metadata (a transfer or conference changed the participants);
- carry a control header (pause/resume/stop) or withdraw the caller's consent.

The engine answers and then reports each change to the listener as a ``CallUpdate``; whether a
hold is silenced and what a stop means is the core's policy, not the engine's.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Protocol

from server.callmedia.plan import MediaPlan, StreamPlan
from server.errors import SiprecError
from server.ratelog import RateLimitedLog
from server.sip.dialog import Call, MediaState
from server.sip.listener import CallListener, CallUpdate, UpdateKind
from server.sip.message import SipRequest
from server.sip.recording_request import (
    RequestPolicy,
    consent_declined,
    control_action,
    metadata_parties,
    parties,
)
from server.sip.refusals import warning_header
from server.sip.rs_metadata import parse_metadata
from server.sip.sdp import AudioStream, build_multistream_answer
from server.sip.siprec import METADATA_TYPES, RecordingOffer, parse_offer
from server.sip.transactions import ServerTransaction
from server.sip.wiretext import display_text

_logger = logging.getLogger(__name__)


class CallHost(Protocol):
    """What in-dialog requests need of the UAS (``server.sip.uas.CallManager``): its dialogs,
    responses and retransmissions. A protocol, so this module does not import the UAS that
    imports it."""

    policy: RequestPolicy

    @property
    def listener(self) -> CallListener: ...
    @property
    def log(self) -> RateLimitedLog: ...
    @property
    def advertised_host(self) -> str: ...

    def find_dialog(self, req: SipRequest) -> Call | None: ...
    def respond(
        self,
        req: SipRequest,
        addr: tuple[str, int],
        status: int,
        *,
        reason: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        to_tag: str | None = None,
        body: bytes = b"",
        why: str | None = None,
    ) -> bytes: ...
    def final(
        self,
        txn: ServerTransaction,
        status: int,
        *,
        reason: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        why: str | None = None,
    ) -> None: ...
    def finish(self, txn: ServerTransaction, data: bytes) -> None: ...
    def contact(self, addr: tuple[str, int], siprec: bool) -> tuple[tuple[str, str], ...]: ...
    def retransmit_reinvite_2xx(self, call: Call, data: bytes, cseq: int) -> None: ...
    def start_media(self, call: Call, at: float) -> None: ...
    async def notify_answered(self, call: Call) -> None: ...
    async def acknowledged(self, call: Call) -> None: ...
    def tolerate(self, kind: str, msg: str, *args: object) -> None: ...


def media_state_of(offer: RecordingOffer, plan: MediaPlan) -> MediaState:
    """What a new offer says of the recorded streams: a stream that is gone, refused (port 0)
    or deferred (inactive, 0.0.0.0) carries no media."""
    by_index = {s.audio.index: s.audio for s in offer.streams}
    flowing = [not _silent(by_index.get(p.index)) for p in plan.streams]
    if all(flowing):
        return MediaState.ACTIVE
    return MediaState.HOLD if any(flowing) else MediaState.PAUSED


# What every RTP session decodes whatever the offer said (server.rtp.session.payload_decoders).
STATIC_DECODABLE = frozenset({(0, "PCMU"), (8, "PCMA"), (9, "G722")})


def known_types(plan: StreamPlan) -> frozenset[tuple[int, str]]:
    """The (PT, codec) pairs the stream's running RTP session decodes."""
    return STATIC_DECODABLE | frozenset(plan.payload_codecs) | {(plan.payload_type, plan.codec)}


def codec_change(offer: RecordingOffer, plan: MediaPlan) -> str | None:
    """A recorded stream whose re-offer has no payload type its running session decodes (a
    dynamic type first mapped now): the file cannot follow. A change among the decodable codecs
    (PCMA → G.722 after a transfer) is no problem: each packet is decoded by its own type, and
    the file keeps its rate (server.callmedia.plan)."""
    by_index = {s.audio.index: s.audio for s in offer.streams}
    for p in plan.streams:
        stream = by_index.get(p.index)
        if stream is not None and stream.accepted and not set(stream.decodable) & known_types(p):
            offered = ", ".join(f"{pt} {name}" for pt, name in stream.decodable)
            return f"m-line {p.index} offers only payload types its recording cannot decode ({offered})"
    return None


def srtp_change(offer: RecordingOffer, plan: MediaPlan) -> str | None:
    """A recorded stream whose re-offer changes its SRTP keying: a new key (RFC 4568 §7.1.4
    rekey), another suite, or a move between RTP and SRTP. Refused (488, the old session goes
    on, RFC 3261 §14.2): the running RTP session cannot take a new key yet. The same key
    again (a hold, a session refresh) is no change."""
    by_index = {s.audio.index: s.audio for s in offer.streams}
    for p in plan.streams:
        stream = by_index.get(p.index)
        if stream is None or not stream.accepted:
            continue
        now = (stream.crypto.suite, stream.crypto.key) if stream.crypto is not None else None
        if now != p.srtp:
            if p.srtp is None or now is None:
                return f"m-line {p.index} switches between RTP and SRTP mid-call (not supported)"
            return f"m-line {p.index} changes its SRTP key mid-call (rekeying is not supported)"
    return None


def reanswer(offer: RecordingOffer, plan: MediaPlan, host: str, ports: dict[int, int]) -> bytes:
    """The answer to a re-offer: each recorded stream lists only the types its session decodes."""
    known = {p.index: known_types(p) for p in plan.streams}
    streams = [
        replace(s.audio, decodable=tuple(c for c in s.audio.decodable if c in known[s.audio.index]))
        if s.audio.index in known
        else s.audio
        for s in offer.streams
    ]
    return build_multistream_answer(offer.sdp, streams, host, ports)


def apply_ack_answer(m: CallHost, call: Call, req: SipRequest) -> None:
    """The SDP answer in the ACK of a delayed-offer call (RFC 3264 §4: our 200 OK made the
    offer): each answered stream's address becomes its expected source. Without one (a broken
    peer), latching still finds the streams; the deviation is logged and counted."""
    if not req.body:
        m.tolerate("ack-without-answer", "ACK of our offer in dialog %s carries no SDP answer", call.call_id)
        return
    try:
        answer = parse_offer(req.get("content-type") or "application/sdp", req.body, None, None)
    except SiprecError as exc:
        m.tolerate(
            "ack-answer-unusable", "SDP answer in the ACK of %s unusable: %s", call.call_id, exc.reason
        )
        return
    by_index = {s.audio.index: s.audio for s in answer.streams}
    for p in call.plan.streams:
        stream = by_index.get(p.index)
        if stream is None or _silent(stream) or stream.remote_host is None:
            continue  # refused (port 0) or held: its channel stays silent, the call goes on
        call.media.relatch(p.index, (stream.remote_host, stream.port))


def _silent(stream: AudioStream | None) -> bool:
    return stream is None or not stream.accepted or stream.deferred


class MidCall:
    def __init__(self, manager: CallHost) -> None:
        self._m = manager

    async def on_offer(self, req: SipRequest, addr: tuple[str, int], txn: ServerTransaction) -> None:
        """re-INVITE (``txn`` set, 2xx retransmitted until ACK) or UPDATE."""
        m = self._m
        call = m.find_dialog(req)
        if call is None or call.state not in ("answering", "answered"):
            m.final(txn, 481)
            return
        cseq = req.cseq.number if req.cseq else 0
        if req.method == "INVITE":
            if call.reinvite_cseq is not None or call.state == "answering":
                # A UAC sends a re-INVITE only after it has ACKed our last 2xx (RFC 3261 §13.2.2.4,
                # §14.1): that ACK was lost or did not match. Refusing the offer (491, as before)
                # left the 2xx unacknowledged for good, so every later re-INVITE was refused too
                # and the call ended after 32 s without an ACK.
                m.tolerate(
                    "reinvite-before-ack",
                    "re-INVITE (CSeq %s) in dialog %s before the ACK of our 2xx: taking that ACK as sent",
                    cseq,
                    call.call_id,
                )
                await m.acknowledged(call)
            call.note_invite(cseq)
        if cseq <= call.remote_cseq:
            # RFC 3261 §12.2.2 says 500, but the peer cannot have two INVITEs of a dialog open at
            # once (§14.1), and a retransmission matched its transaction before this point: a
            # lower number is an SBC that restarted its numbering (failover), not reordering.
            m.tolerate(
                "cseq-not-increasing",
                "%s in dialog %s with CSeq %s after %s: accepted (the peer restarted its numbering)",
                req.method,
                call.call_id,
                cseq,
                call.remote_cseq,
            )
        call.remote_cseq = cseq
        if not req.body:
            # An offer-less re-INVITE (session refresh): our current description is the offer.
            self._answer(call, req, addr, txn, call.answer_sdp if req.method == "INVITE" else b"", cseq)
            await self._apply_headers(call, req, None)
            return
        if (req.content_type or "") in METADATA_TYPES:
            # RFC 7866 §7.1.1: a metadata update without a new offer (partial metadata).
            self._answer(call, req, addr, txn, call.answer_sdp if req.method == "INVITE" else b"", cseq)
            parties = metadata_parties(parse_metadata(req.body))
            if parties:
                await self._notify(
                    call, CallUpdate(UpdateKind.METADATA, time.time(), "metadata update", parties)
                )
            await self._apply_headers(call, req, None)
            return
        try:
            offer = parse_offer(
                req.get("content-type") or "", req.body, ", ".join(req.get_all("require")), req.get("contact")
            )
            problem = codec_change(offer, call.plan)
            phrase = "Codec Not Decodable"
            if problem is None and (problem := srtp_change(offer, call.plan)) is not None:
                phrase = "Not Acceptable Here"
        except SiprecError as exc:
            m.log.warning(
                "reoffer", "unacceptable re-offer in %s: %s", display_text(call.call_id), exc.reason
            )
            m.final(txn, exc.status, headers=(warning_header(exc.reason),))
            return
        if problem is not None:
            m.log.warning("reoffer", "re-offer in %s refused: %s", display_text(call.call_id), problem)
            m.final(txn, 488, reason=phrase, headers=(warning_header(problem),))
            return
        at = time.time()  # before the answer leaves: a deferred stream's sample 0 (see uas.on_invite)
        answer = reanswer(offer, call.plan, m.advertised_host, call.media.ports)
        self._answer(call, req, addr, txn, answer, cseq)
        for p in call.plan.streams:
            stream = next((s.audio for s in offer.streams if s.audio.index == p.index), None)
            if stream is not None and not _silent(stream) and stream.remote_host is not None:
                remote = (stream.remote_host, stream.port)
                if remote != p.remote:
                    call.media.relatch(p.index, remote)
        await self._apply_media_state(call, media_state_of(offer, call.plan), at)
        await self._apply_headers(call, req, offer)

    async def on_info(self, req: SipRequest, addr: tuple[str, int]) -> None:
        m = self._m
        call = m.find_dialog(req)
        if call is None or call.state not in ("answering", "answered"):
            m.respond(req, addr, 481)
            return
        m.respond(req, addr, 200)
        await self._apply_headers(call, req, None)

    def _answer(
        self,
        call: Call,
        req: SipRequest,
        addr: tuple[str, int],
        txn: ServerTransaction,
        sdp: bytes,
        cseq: int,
    ) -> None:
        m = self._m
        call.answer_sdp = sdp
        data = m.respond(
            req, addr, 200, to_tag=call.local_tag, headers=m.contact(addr, call.siprec), body=sdp
        )
        m.finish(txn, data)
        if req.method == "INVITE":
            m.retransmit_reinvite_2xx(call, data, cseq)

    async def _apply_media_state(self, call: Call, state: MediaState, at: float) -> None:
        m = self._m
        if not call.media_started:
            if state is MediaState.ACTIVE:  # a deferred session's media begins now
                m.start_media(call, at)
                if call.state == "answered":
                    await m.notify_answered(call)
            return
        if state is call.media_state:
            return
        previous, call.media_state = call.media_state, state
        if state is MediaState.ACTIVE:
            call.active_since = at
            await self._notify(
                call, CallUpdate(UpdateKind.RESUME, at, f"streams active again (was {previous})")
            )
        elif state is MediaState.PAUSED:
            await self._notify(call, CallUpdate(UpdateKind.PAUSE, at, "a=inactive on every stream"))
        else:
            await self._notify(call, CallUpdate(UpdateKind.HOLD, at, "a=inactive on some streams (hold)"))

    async def _apply_headers(self, call: Call, req: SipRequest, offer: RecordingOffer | None) -> None:
        m = self._m
        at = time.time()
        if offer is not None and offer.participants:
            await self._notify(call, CallUpdate(UpdateKind.METADATA, at, "metadata update", parties(offer)))
        if consent_declined(req, offer.metadata_xml if offer else None, m.policy):
            await self._notify(call, CallUpdate(UpdateKind.STOP, at, "caller declined consent"))
            return
        action = control_action(req, m.policy)
        if action is not None:
            await self._notify(call, CallUpdate(action, at, f"{m.policy.control_header}: {action.value}"))

    async def _notify(self, call: Call, update: CallUpdate) -> None:
        try:
            await self._m.listener.on_call_updated(call, update)
        except Exception:
            _logger.exception("listener.on_call_updated failed for %s", display_text(call.call_id))
