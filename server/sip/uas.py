"""INVITE dialogs of the recording UAS (RFC 3261 §13, §15, §17.2): offer (plain SDP or SIPREC,
RFC 7866) → listener → media → 200 OK (retransmitted until ACK), ACK, BYE in both directions,
CANCEL. In-dialog offers (re-INVITE, UPDATE) and INFO live in ``server.sip.midcall``; response
building and refusal accounting in ``server.sip.uas_responses``; 2xx retransmission and ACK
matching (with a delayed offer's answer) in ``server.sip.uas_ack``, both mixins of CallManager.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from server.callmedia.plan import StreamSpec, plan_media
from server.errors import SiprecError
from server.ratelog import RateLimitedLog
from server.sip.builders import new_tag
from server.sip.bye_client import ByeClient
from server.sip.dialog import Call, MediaFactory, MediaState
from server.sip.digest import DigestAuth, Verdict
from server.sip.listener import CallAccepted, CallListener, CallOffer, CallRejected
from server.sip.message import SipRequest, SipResponse
from server.sip.midcall import MidCall
from server.sip.recording_request import RequestPolicy
from server.sip.recording_request import call_offer as build_call_offer
from server.sip.refusals import RefusalSink, safe_text, warning_header
from server.sip.sdp import AudioStream
from server.sip.siprec import ACCEPT, parse_offer
from server.sip.stats import SipStats
from server.sip.transactions import (
    ServerTransaction,
    TransactionTable,
    transaction_key,
)
from server.sip.uas_ack import Acks
from server.sip.uas_responses import Responses, Send
from server.sip.wiretext import display_text, safe_offer

_logger = logging.getLogger(__name__)
Spawn = Callable[[Coroutine[Any, Any, None]], None]


class CallManager(Responses, Acks):
    def __init__(
        self,
        listener: CallListener,
        *,
        send: Send,
        stats: SipStats,
        log: RateLimitedLog,
        advertised_host: str,
        rtp_host: str,
        rtp_port_range: tuple[int, int],
        voice_dir: Path | None,
        media_factory: MediaFactory,
        spawn: Spawn,
        policy: RequestPolicy | None = None,
        latching: bool = True,
        max_dialogs_per_source: int = 2000,
        digest: DigestAuth | None = None,
        refusals: RefusalSink | None = None,
    ) -> None:
        self._listener = listener
        self._digest = digest
        self._refusals = refusals
        self.policy = policy or RequestPolicy()
        self._latching = latching
        self._max_dialogs_per_source = max_dialogs_per_source
        self._per_source: Counter[str] = Counter()
        self._send = send
        self._stats = stats
        self._log = log
        self._advertised_host = advertised_host
        self._rtp_host = rtp_host
        self._rtp_port_range = rtp_port_range
        self._voice_dir = voice_dir
        self._media_factory = media_factory
        self._spawn = spawn
        self.local_port = 0
        self._txns = TransactionTable()
        self._dialogs: dict[tuple[str, str], Call] = {}
        self._by_call_id: dict[str, list[Call]] = {}  # for requests that lack the To-tag
        self._bye = ByeClient(send=send, spawn=spawn, stats=stats, advertised_host=advertised_host)
        self.midcall = MidCall(self)
        self._error_timers: set[asyncio.Task[None]] = set()
        # Delayed-offer dialogs (INVITE without SDP) whose SDP answer is due in the ACK.
        self._awaiting_answer: set[tuple[str, str]] = set()

    @property
    def listener(self) -> CallListener:
        return self._listener

    @property
    def log(self) -> RateLimitedLog:
        return self._log

    @property
    def advertised_host(self) -> str:
        return self._advertised_host

    @property
    def active(self) -> int:
        return len(self._dialogs)

    def live_calls(self) -> list[Call]:
        return [c for c in self._dialogs.values() if c.state in ("answering", "answered")]

    def find_dialog(self, req: SipRequest, *, lenient: bool = False) -> Call | None:
        """The dialog of an in-dialog request: Call-ID + our tag (To). ``lenient`` (ACK, BYE):
        a request without a To-tag matches the one dialog of its Call-ID whose remote tag is
        its From-tag, as widely deployed UAs do; the deviation is logged and counted."""
        to = req.to
        if to is None or req.call_id is None:
            return None
        if to.tag is not None:
            return self._dialogs.get((req.call_id, to.tag))
        if not lenient:
            return None
        from_tag = req.from_.tag if req.from_ else None
        matches = [c for c in self._by_call_id.get(req.call_id, ()) if c.remote_tag == from_tag]
        if len(matches) != 1:
            return None
        call = matches[0]
        self.tolerate(
            f"{req.method.lower()}-without-to-tag",
            "%s without To-tag matched to dialog %s (from-tag %s)",
            req.method,
            call.call_id,
            from_tag,
        )
        return call

    # ---- INVITE ------------------------------------------------------------------------------
    async def on_invite(self, req: SipRequest, addr: tuple[str, int], in_dialog: bool) -> None:
        txn = ServerTransaction(req, addr)
        self._txns.add(transaction_key(req), txn)
        if in_dialog:
            await self.midcall.on_offer(req, addr, txn)
            return
        host = addr[0]
        if self._per_source[host] >= self._max_dialogs_per_source:
            self._stats.refused_per_source += 1
            self._log.warning(
                "per-source", "refusing INVITE from %s: %d dialogs open", host, self._per_source[host]
            )
            self.final(txn, 503, reason="Too Many Dialogs", headers=(("retry-after", "5"),))
            return
        if self._digest is not None and not self._authorised(txn):
            return
        try:
            offer = parse_offer(
                req.get("content-type") or "", req.body, ", ".join(req.get_all("require")), req.get("contact")
            )
        except SiprecError as exc:
            self._log.warning("offer", "unacceptable offer from %s: %s", addr, exc.reason)
            headers = (("accept", ACCEPT),) if exc.status == 415 else ()
            # The Warning tells the SRC's administrator why (e.g. SRTP keying we do not support).
            self.final(txn, exc.status, headers=(*headers, warning_header(exc.reason)), detail=exc.reason)
            return
        txn.last_response = self.respond(req, addr, 100)
        # The core stores and shows the offer: its text is made safe there (wiretext); the dialog
        # below keeps the raw Call-ID, which ACK, BYE and re-INVITEs must match byte for byte.
        call_offer = safe_offer(build_call_offer(req, addr, offer, self.policy))
        try:
            decision = await self._listener.on_call_offered(call_offer)
        except Exception:
            _logger.exception("listener.on_call_offered failed for %s", call_offer.call_id)
            if not txn.final:
                self.final(txn, 500)
            return
        if isinstance(decision, CallRejected):
            if not txn.final:
                self.final(txn, decision.status, reason=decision.reason, headers=decision.headers)
            return
        if txn.cancelled:
            await self._withdraw(call_offer, decision, "cancelled before answer")
            return
        voice_path = decision.voice_path
        if self._voice_dir is not None and not voice_path.is_absolute():
            voice_path = self._voice_dir / voice_path
        plan = plan_media(
            [_stream_tuple(s.audio) for s in offer.accepted_streams],
            decision.agent_streams,
            latching=self._latching,
            peer_host=host,
        )
        try:
            media = await self._media_factory(self._rtp_host, self._rtp_port_range, voice_path, plan)
        except Exception as exc:
            self._log.warning("media", "cannot open RTP for %s: %r", call_offer.call_id, exc)
            if not txn.final:
                self.final(txn, 503, reason="No Media Port")
            await self._withdraw(call_offer, decision, "no media port")
            return
        if txn.cancelled:
            await media.close(time.time())
            await self._withdraw(call_offer, decision, "cancelled before answer")
            return
        local_tag = new_tag()
        call = Call(
            call_id=req.call_id or "",
            local_tag=local_tag,
            remote_tag=req.from_.tag if req.from_ else None,
            invite=req,
            source=addr,
            interaction_id=decision.interaction_id,
            voice_path=voice_path,
            media=media,
            plan=plan,
            siprec=offer.siprec,
            remote_cseq=req.cseq.number if req.cseq else 0,
        )
        call.answer_sdp = offer.answer(self._advertised_host, media.ports)  # our offer if delayed
        call.note_invite(call.remote_cseq)
        self._dialogs[(call.call_id, local_tag)] = call
        if offer.delayed:
            self._awaiting_answer.add((call.call_id, local_tag))
        self._by_call_id.setdefault(call.call_id, []).append(call)
        self._per_source[host] += 1
        call.final_response = self.response_bytes(
            req, 200, to_tag=local_tag, headers=self.contact(addr, call.siprec), body=call.answer_sdp
        )
        # Sample 0 is read just before the 200 OK leaves: a peer that gets the CPU first can have
        # its first RTP packet here before this task reads the clock again, and building the
        # message in between (a garbage collection, say) would make the file long.
        now = time.time()
        self._send(call.final_response, addr)
        self._txns.finish(txn, call.final_response)
        self._stats.calls_started += 1
        if offer.deferred:
            call.media_state = MediaState.PAUSED  # answered, but nothing flows until a re-INVITE
        else:
            self.start_media(call, now)
        call.retransmit_task = asyncio.create_task(
            self._retransmit_2xx(call, call.final_response, lambda: call.state != "answering")
        )

    def _authorised(self, txn: ServerTransaction) -> bool:
        """Digest authentication (RFC 3261 §22): a challenge (401) for an INVITE without
        credentials or with a stale nonce, which is not a refusal; 403 for wrong ones."""
        assert self._digest is not None
        req = txn.request
        now = time.time()
        outcome = self._digest.check(req.method, req.lines("authorization"), now)
        if outcome.verdict is Verdict.OK:
            return True
        if outcome.verdict is Verdict.FAILED:
            self._log.warning(
                "auth-failed",
                "digest authentication of %s from %s failed: %s",
                safe_text(outcome.username, 64),
                txn.source[0],
                outcome.why,
            )
            self.final(txn, 403, reason="Forbidden", why="auth-failed")
            return False
        self._stats.auth_challenges += 1
        stale = outcome.verdict is Verdict.STALE
        self.final(txn, 401, reason="Unauthorized", headers=self._digest.challenges(now, stale=stale), why="")
        return False

    def start_media(self, call: Call, at: float) -> None:
        call.answered_at = call.active_since = at
        call.media_started = True
        call.media_state = MediaState.ACTIVE
        call.media.start(at)

    async def _withdraw(self, offer: CallOffer, accepted: CallAccepted, reason: str) -> None:
        try:
            await self._listener.on_offer_withdrawn(offer, accepted, reason)
        except Exception:
            _logger.exception("listener.on_offer_withdrawn failed for %s", offer.call_id)

    def on_response(self, resp: SipResponse) -> None:
        self._bye.on_response(resp)

    async def on_update(self, req: SipRequest, addr: tuple[str, int]) -> None:
        txn = ServerTransaction(req, addr)
        self._txns.add(transaction_key(req), txn)
        await self.midcall.on_offer(req, addr, txn)

    def on_cancel(self, req: SipRequest, addr: tuple[str, int]) -> None:
        txn = self._txns.get(transaction_key(req, "INVITE"))
        if txn is None:
            self.respond(req, addr, 481)
            return
        self.respond(req, addr, 200)
        if not txn.final:
            txn.cancelled = True
            self.final(txn, 487)

    # ---- BYE ---------------------------------------------------------------------------------
    async def on_bye(self, req: SipRequest, addr: tuple[str, int], arrived: float | None = None) -> None:
        ended_at = arrived or time.time()
        call = self.find_dialog(req, lenient=True)
        txn = ServerTransaction(req, addr)
        self._txns.add(transaction_key(req), txn)
        if call is None and req.call_id and await self._stray_bye(display_text(req.call_id)):
            self.final(txn, 200)  # a call a server stop interrupted: its hang-up is answered
            return
        if call is None or call.state not in ("answering", "answered"):
            self.final(txn, 481)
            return
        self.final(txn, 200)
        await self.end_call(call, ended_at, "bye", send_bye=False)

    async def _stray_bye(self, call_id: str) -> bool:
        """Whether the listener knows ``call_id`` as a call interrupted by a restart (optional
        listener method ``on_stray_bye``; without it every unknown dialog gets 481)."""
        check = getattr(self._listener, "on_stray_bye", None)
        if check is None:
            return False
        try:
            return bool(await check(call_id))
        except Exception:
            _logger.exception("listener.on_stray_bye failed for %s", call_id)
            return False

    async def end_call(self, call: Call, ended_at: float, reason: str, *, send_bye: bool) -> None:
        """Finalise the WAV (padded to ``ended_at``) and tell the listener; idempotent, and a
        second caller (shutdown while a BYE is being handled) returns once the call has ended."""
        if call.state in ("ending", "ended"):
            await call.ended_event.wait()
            return
        call.state = "ending"
        call.end_reason = reason
        try:
            await self._end(call, ended_at, reason, send_bye)
        finally:
            call.ended_event.set()  # also when cancelled: nobody waits for an end that never comes

    async def _end(self, call: Call, ended_at: float, reason: str, send_bye: bool) -> None:
        self._stop_retransmit(call)
        self._awaiting_answer.discard((call.call_id, call.local_tag))
        if send_bye:
            self._bye.send(call, self.local_port, wait=reason != "shutdown")
        try:
            await call.media.close(ended_at)
        except Exception:
            _logger.exception("closing RTP session of %s failed", display_text(call.call_id))
        call.state = "ended"
        if self._dialogs.pop((call.call_id, call.local_tag), None) is not None:
            siblings = self._by_call_id.get(call.call_id, [])
            if call in siblings:
                siblings.remove(call)
            if not siblings:
                self._by_call_id.pop(call.call_id, None)
            host = call.source[0]
            self._per_source[host] -= 1
            if self._per_source[host] <= 0:
                del self._per_source[host]
        self._stats.calls_ended[reason] += 1
        try:
            await self._listener.on_call_ended(call, ended_at, reason)
        except Exception:
            _logger.exception("listener.on_call_ended failed for %s", display_text(call.call_id))

    async def end_all(self, reason: str) -> None:
        for task in list(self._error_timers):
            task.cancel()
        ended_at = time.time()
        calls = list(self._dialogs.values())
        await asyncio.gather(*(self.end_call(c, ended_at, reason, send_bye=True) for c in calls))


def _stream_tuple(stream: AudioStream) -> StreamSpec:
    remote = None if stream.deferred or stream.remote_host is None else (stream.remote_host, stream.port)
    return (
        stream.index,
        stream.codec or "",
        stream.payload_type if stream.payload_type is not None else -1,
        stream.telephone_event,
        remote,
        # Comfort noise may have a dynamic type (``a=rtpmap:19 CN/8000``): the session must know
        # it as CN, or a sender's silence would count as undecodable audio.
        stream.decodable + tuple((pt, name) for pt, name in stream.codecs if name == "CN"),
        (stream.crypto.suite, stream.crypto.key) if stream.crypto is not None else None,
    )
