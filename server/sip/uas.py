"""INVITE dialogs of the recording UAS (RFC 3261 §13, §15, §17.2): offer (plain SDP or SIPREC,
RFC 7866) → listener → media → 200 OK (retransmitted until ACK), ACK, BYE in both directions,
CANCEL. In-dialog offers (re-INVITE, UPDATE) and INFO live in ``server.sip.midcall``.
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
from server.errors import SipError, SiprecError
from server.ratelog import RateLimitedLog
from server.sip.builders import ALLOW, build_response, new_tag, reason_for
from server.sip.bye_client import ByeClient
from server.sip.dialog import Call, MediaFactory, MediaState
from server.sip.digest import DigestAuth, Verdict
from server.sip.listener import CallAccepted, CallListener, CallOffer, CallRejected
from server.sip.message import SipRequest, SipResponse
from server.sip.midcall import MidCall, apply_ack_answer
from server.sip.recording_request import RequestPolicy, recorded_dn
from server.sip.recording_request import call_offer as build_call_offer
from server.sip.refusals import MAX_DETAIL, Refusal, RefusalSink, reason_code, safe_text
from server.sip.sdp import AudioStream
from server.sip.siprec import ACCEPT, parse_offer
from server.sip.stats import SipStats
from server.sip.transactions import (
    ServerTransaction,
    TransactionTable,
    retransmit_intervals,
    transaction_key,
)
from server.sip.transport import StreamPeer
from server.sip.wiretext import display_text, log_text, safe_offer

_logger = logging.getLogger(__name__)
Send = Callable[[bytes, tuple[str, int]], None]
Spawn = Callable[[Coroutine[Any, Any, None]], None]
MAX_ERROR_RETRANSMITS = 4096  # INVITE error responses being resent until ACK (Timer G)


class CallManager:
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

    # ---- responses ---------------------------------------------------------------------------
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
    ) -> bytes:
        """Build, count and send a response. A final error to an initial INVITE is a refused
        call: logged, counted by reason (``why``, else from the status) and reported to the
        refusal sink; ``why=""`` marks one that is not (a digest challenge)."""
        data = self.response_bytes(req, status, reason=reason, headers=headers, to_tag=to_tag, body=body)
        self._send(data, addr)
        if status >= 300 and req.method == "INVITE" and why != "":
            try:
                initial = (to := req.to) is None or to.tag is None
            except (SipError, ValueError):  # a To that does not parse: no dialog it could be in
                initial = True
            if initial:
                self.note_refusal(req, addr, status, reason, why)
        return data

    def note_refusal(
        self, req: SipRequest, addr: tuple[str, int], status: int, reason: str | None, why: str | None
    ) -> None:
        """Every refused INVITE leaves a trace: a counter, a log line (rate-limited per reason)
        and a report to the sink (which stores it as a missed recording). Never raises."""
        phrase = reason or reason_for(status)
        code = why or reason_code(status, reason)
        self._stats.refused[code] += 1
        call_id = display_text(req.call_id or "", 128)
        self._log.warning(
            f"refused:{code}",
            "refused INVITE %s from %s:%s: %d %s",
            call_id,
            addr[0],
            addr[1],
            status,
            phrase,
        )
        if self._refusals is None:
            return
        try:
            require = " ".join(req.get_all("require")).lower()
            try:
                dn = recorded_dn(req, self.policy)
            except Exception:  # a header the refusal was about may not parse: keep the rest
                dn = ""
            refusal = Refusal(
                at=time.time(),
                call_id=call_id,
                source=safe_text(f"{addr[0]}:{addr[1]}", 64),
                source_host=safe_text(addr[0], 64),
                from_uri=display_text(req.get("from") or ""),
                to_uri=display_text(req.get("to") or ""),
                request_uri=display_text(req.uri.raw),
                dn=display_text(dn, 64),
                reason=code,
                status=status,
                kind="siprec" if "siprec" in require else "plain",
                detail=safe_text(phrase, MAX_DETAIL),
            )
            self._refusals.refused(refusal)
        except Exception:
            _logger.exception("recording the refusal of %s failed", call_id)

    def response_bytes(
        self,
        req: SipRequest,
        status: int,
        *,
        reason: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        to_tag: str | None = None,
        body: bytes = b"",
    ) -> bytes:
        """A response built and counted, not sent (``respond`` sends it)."""
        tag = to_tag or (None if status == 100 else new_tag())
        data = build_response(req, status, reason, to_tag=tag, headers=headers, body=body).to_bytes()
        self._stats.responses[status] += 1
        return data

    def final(
        self,
        txn: ServerTransaction,
        status: int,
        *,
        reason: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        why: str | None = None,
    ) -> None:
        data = self.respond(txn.request, txn.source, status, reason=reason, headers=headers, why=why)
        self._txns.finish(txn, data)
        if txn.request.method == "INVITE" and status >= 300 and not isinstance(txn.source, StreamPeer):
            # Bounded apart from request handling, so a flood of refused INVITEs cannot starve it.
            if len(self._error_timers) < MAX_ERROR_RETRANSMITS:
                task = asyncio.create_task(self._retransmit_error(txn, data))
                self._error_timers.add(task)
                task.add_done_callback(self._error_timers.discard)

    async def _retransmit_error(self, txn: ServerTransaction, data: bytes) -> None:
        """RFC 3261 §17.2.1 over UDP: resend a final error to INVITE (Timer G) until its ACK,
        giving up after 64*T1 (Timer H)."""
        for interval, last in retransmit_intervals():
            await asyncio.sleep(interval)
            if txn.acked or last:
                return
            self._stats.retransmissions += 1
            self._send(data, txn.source)

    def finish(self, txn: ServerTransaction, data: bytes) -> None:
        self._txns.finish(txn, data)

    def resend_if_retransmission(self, req: SipRequest, addr: tuple[str, int]) -> bool:
        txn = self._txns.get(transaction_key(req))
        if txn is None:
            return False
        if txn.last_response:
            self._send(txn.last_response, addr)
        return True

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

    def tolerate(self, kind: str, msg: str, *args: object) -> None:
        """A deviation from RFC 3261 accepted instead of failing the call: counted by kind,
        logged at most once per kind per interval, header text made printable."""
        self._stats.tolerated[kind] += 1
        self._log.warning(f"tolerated:{kind}", msg, *(log_text(a) for a in args))

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
            self.final(txn, exc.status, headers=headers)
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

    def contact(self, addr: tuple[str, int], siprec: bool) -> tuple[tuple[str, str], ...]:
        # A call that came over TCP/TLS must be reached (ACK, BYE) over that transport again.
        if isinstance(addr, StreamPeer):
            uri = f"sip:{self._advertised_host}:{addr.local_port};transport={addr.transport.lower()}"
        else:
            uri = f"sip:{self._advertised_host}:{self.local_port}"
        # RFC 7866 §6.1.2: a recording server marks its Contact with +sip.srs.
        contact = f"<{uri}>;+sip.srs" if siprec else f"<{uri}>"
        return (("contact", contact), ("allow", ALLOW))

    async def _retransmit_2xx(self, call: Call, data: bytes, acked: Callable[[], bool]) -> None:
        """RFC 3261 §13.3.1.4: resend a 2xx to (re-)INVITE, T1 doubling to T2, until its ACK;
        with no ACK after 64*T1 the session ends with BYE."""
        for interval, last in retransmit_intervals():
            await asyncio.sleep(interval)
            if acked() or call.state not in ("answering", "answered"):
                return
            if last:
                break
            self._stats.retransmissions += 1
            self._send(data, call.source)
        self._log.warning("no-ack", "no ACK for call %s; ending it", display_text(call.call_id))
        await self.end_call(call, time.time(), "no ACK", send_bye=True)

    def retransmit_reinvite_2xx(self, call: Call, data: bytes, cseq: int) -> None:
        self._stop_retransmit(call)
        call.reinvite_response, call.reinvite_cseq = data, cseq
        call.retransmit_task = asyncio.create_task(
            self._retransmit_2xx(call, data, lambda: call.reinvite_cseq != cseq)
        )

    async def on_ack(self, req: SipRequest) -> None:
        """Never answered. Acknowledges our pending 2xx; an ACK whose CSeq number names none of
        the dialog's INVITEs (or whose CSeq method is INVITE) is taken for the pending one."""
        txn = self._txns.get(transaction_key(req))
        if txn is not None:
            txn.acked = True  # ends Timer G for an error response (the ACK shares its branch)
            status = txn.final_status
            if status is not None and status >= 300:
                return  # ACK of an error response: absorbed by its transaction
        call = self.find_dialog(req, lenient=True)
        if call is None:
            return  # stray, or for a dialog already ended
        cseq = req.cseq.number if req.cseq else None
        if req.cseq is not None and req.cseq.method != "ACK":
            self.tolerate(
                "ack-cseq-method", "ACK in dialog %s with CSeq method %s", call.call_id, req.cseq.method
            )
        pending = call.reinvite_cseq
        if pending is None and call.state != "answering":
            return  # a retransmitted ACK
        expected = pending if pending is not None else call.invite_cseqs[0]
        if cseq != expected:
            if cseq in call.invite_cseqs:
                return  # a late or repeated ACK of an earlier INVITE of this dialog
            self.tolerate(
                "ack-cseq-mismatch",
                "ACK with CSeq %s matched to the pending 2xx (CSeq %s) of dialog %s",
                cseq,
                expected,
                call.call_id,
            )
        if call.state == "answering" and (call.call_id, call.local_tag) in self._awaiting_answer:
            self._awaiting_answer.discard((call.call_id, call.local_tag))
            apply_ack_answer(self, call, req)
        await self.acknowledged(call)

    async def acknowledged(self, call: Call) -> None:
        """Our pending 2xx (to the INVITE or to a re-INVITE) is acknowledged: stop resending it."""
        self._stop_retransmit(call)
        if call.reinvite_cseq is not None:
            call.reinvite_cseq = None
            return
        if call.state != "answering":
            return
        call.state = "answered"
        if call.media_started:
            await self.notify_answered(call)

    async def notify_answered(self, call: Call) -> None:
        try:
            await self._listener.on_call_answered(call)
        except Exception:
            _logger.exception("listener.on_call_answered failed for %s", display_text(call.call_id))

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

    def _stop_retransmit(self, call: Call) -> None:
        task = call.retransmit_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        call.retransmit_task = None


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
    )
