"""INVITE dialogs of the recording UAS (RFC 3261 §13, §15, §17.2): offer → listener → media →
200 OK (retransmitted until ACK), ACK, BYE in both directions, CANCEL, re-INVITE.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.sip.builders import ALLOW, build_request, build_response, new_branch, new_tag
from server.sip.dialog import Call, MediaFactory
from server.sip.errors import SdpError
from server.sip.headers import parse_name_addr
from server.sip.listener import CallListener, CallOffer, CallRejected
from server.sip.message import SipRequest, SipResponse
from server.sip.ratelog import RateLimitedLog
from server.sip.sdp import build_answer, choose_audio, parse_sdp
from server.sip.transactions import T1, T2, ServerTransaction, TransactionTable, transaction_key
from server.sip.transport import StreamPeer

if TYPE_CHECKING:
    from server.sip.service import SipStats

_logger = logging.getLogger(__name__)
Send = Callable[[bytes, tuple[str, int]], None]
Spawn = Callable[[Coroutine[Any, Any, None]], None]
BYE_ATTEMPTS = 7  # T1 doubling: gives up after ~32 s like Timer F


class CallManager:
    def __init__(
        self, listener: CallListener, *, send: Send, stats: SipStats, log: RateLimitedLog,
        advertised_host: str, rtp_host: str, rtp_port_range: tuple[int, int],
        voice_dir: Path | None, media_factory: MediaFactory, spawn: Spawn,
    ) -> None:
        self._listener = listener
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
        self._bye_waiters: dict[str, asyncio.Event] = {}

    @property
    def active(self) -> int:
        return len(self._dialogs)

    def live_calls(self) -> list[Call]:
        return [c for c in self._dialogs.values() if c.state in ("answering", "answered")]

    # ---- responses ---------------------------------------------------------------------------
    def respond(self, req: SipRequest, addr: tuple[str, int], status: int, *, reason: str | None = None,
                headers: tuple[tuple[str, str], ...] = (), to_tag: str | None = None,
                body: bytes = b"") -> bytes:
        tag = to_tag or (None if status == 100 else new_tag())
        data = build_response(req, status, reason, to_tag=tag, headers=headers, body=body).to_bytes()
        self._stats.responses[status] += 1
        self._send(data, addr)
        return data

    def _final(self, txn: ServerTransaction, status: int, *, reason: str | None = None,
               headers: tuple[tuple[str, str], ...] = ()) -> None:
        data = self.respond(txn.request, txn.source, status, reason=reason, headers=headers)
        self._txns.finish(txn, data)

    def resend_if_retransmission(self, req: SipRequest, addr: tuple[str, int]) -> bool:
        txn = self._txns.get(transaction_key(req))
        if txn is None:
            return False
        if txn.last_response:
            self._send(txn.last_response, addr)
        return True

    def find_dialog(self, req: SipRequest) -> Call | None:
        to = req.to
        if to is None or to.tag is None or req.call_id is None:
            return None
        return self._dialogs.get((req.call_id, to.tag))

    # ---- INVITE ------------------------------------------------------------------------------
    async def on_invite(self, req: SipRequest, addr: tuple[str, int], in_dialog: bool) -> None:
        txn = ServerTransaction(req, addr)
        self._txns.add(transaction_key(req), txn)
        if in_dialog:
            call = self.find_dialog(req)
            if call is None or call.state not in ("answering", "answered"):
                self._final(txn, 481)
                return
            # Foundation: a re-INVITE gets the same answer; media does not move.
            data = self.respond(req, addr, 200, headers=self._contact(addr), body=call.answer_sdp)
            self._txns.finish(txn, data)
            return
        if req.body and req.content_type != "application/sdp":
            self._final(txn, 415, headers=(("accept", "application/sdp"),))
            return
        if not req.body:
            self._final(txn, 488, reason="Offer Required")
            return
        try:
            offer = parse_sdp(req.body)
            choice = choose_audio(offer)
        except SdpError as exc:
            self._log.warning("sdp", "unacceptable SDP from %s: %s", addr, exc)
            self._final(txn, 488)
            return
        txn.last_response = self.respond(req, addr, 100)
        from_, to = req.from_, req.to
        call_id = req.call_id or ""
        call_offer = CallOffer(
            call_id=call_id, dn=req.uri.user or "",
            caller=_party(from_.display, from_.uri.user or from_.uri.raw) if from_ else "",
            callee=(to.uri.user or to.uri.raw) if to else "", source=addr, codec=choice.codec,
        )
        try:
            decision = await self._listener.on_call_offered(call_offer)
        except Exception:
            _logger.exception("listener.on_call_offered failed for %s", call_id)
            if not txn.final:
                self._final(txn, 500)
            return
        if txn.cancelled:
            return
        if isinstance(decision, CallRejected):
            self._final(txn, decision.status, reason=decision.reason)
            return
        voice_path = decision.voice_path
        if self._voice_dir is not None and not voice_path.is_absolute():
            voice_path = self._voice_dir / voice_path
        try:
            media = await self._media_factory(self._rtp_host, self._rtp_port_range, voice_path, choice.codec)
        except Exception:
            _logger.exception("cannot open RTP session for %s", call_id)
            if not txn.final:
                self._final(txn, 503, reason="No Media Port")
            return
        if txn.cancelled:
            await media.close(time.time())
            return
        local_tag = new_tag()
        call = Call(call_id=call_id, local_tag=local_tag, remote_tag=from_.tag if from_ else None,
                    invite=req, source=addr, interaction_id=decision.interaction_id,
                    voice_path=voice_path, media=media)
        call.answer_sdp = build_answer(offer, choice, self._advertised_host, media.port)
        self._dialogs[(call_id, local_tag)] = call
        call.final_response = self.respond(req, addr, 200, to_tag=local_tag, headers=self._contact(addr),
                                           body=call.answer_sdp)
        self._txns.finish(txn, call.final_response)
        call.answered_at = time.time()
        media.start(call.answered_at)
        self._stats.calls_started += 1
        call.retransmit_task = asyncio.create_task(self._retransmit_200(call))

    def _contact(self, addr: tuple[str, int]) -> tuple[tuple[str, str], ...]:
        # A call that came over TCP/TLS must be reached (ACK, BYE) over that transport again.
        if isinstance(addr, StreamPeer):
            uri = f"sip:{self._advertised_host}:{addr.local_port};transport={addr.transport.lower()}"
        else:
            uri = f"sip:{self._advertised_host}:{self.local_port}"
        return (("contact", f"<{uri}>"), ("allow", ALLOW))

    async def _retransmit_200(self, call: Call) -> None:
        """RFC 3261 §13.3.1.4: resend the 2xx (T1 doubling to T2) until ACK; BYE after 64*T1."""
        interval = T1
        deadline = time.monotonic() + 64 * T1
        while call.state == "answering":
            await asyncio.sleep(interval)
            if call.state != "answering":
                return
            if time.monotonic() >= deadline:
                self._log.warning("no-ack", "no ACK for call %s; ending it", call.call_id)
                await self.end_call(call, time.time(), "no ACK", send_bye=True)
                return
            self._send(call.final_response, call.source)
            interval = min(interval * 2, T2)

    async def on_ack(self, req: SipRequest) -> None:
        call = self.find_dialog(req)
        if call is None or call.state != "answering":
            return  # ACK of an error response, or a retransmitted ACK
        call.state = "answered"
        self._stop_retransmit(call)
        try:
            await self._listener.on_call_answered(call)
        except Exception:
            _logger.exception("listener.on_call_answered failed for %s", call.call_id)

    def on_cancel(self, req: SipRequest, addr: tuple[str, int]) -> None:
        txn = self._txns.get(transaction_key(req, "INVITE"))
        if txn is None:
            self.respond(req, addr, 481)
            return
        self.respond(req, addr, 200)
        if not txn.final:
            txn.cancelled = True
            self._final(txn, 487)

    # ---- BYE ---------------------------------------------------------------------------------
    async def on_bye(self, req: SipRequest, addr: tuple[str, int]) -> None:
        ended_at = time.time()
        call = self.find_dialog(req)
        txn = ServerTransaction(req, addr)
        self._txns.add(transaction_key(req), txn)
        if call is None or call.state not in ("answering", "answered"):
            self._final(txn, 481)
            return
        self._final(txn, 200)
        await self.end_call(call, ended_at, "bye", send_bye=False)

    async def end_call(self, call: Call, ended_at: float, reason: str, *, send_bye: bool) -> None:
        """Finalise the WAV (padded to ``ended_at``) and tell the listener; idempotent."""
        if call.state in ("ending", "ended"):
            return
        call.state = "ending"
        call.end_reason = reason
        self._stop_retransmit(call)
        if send_bye:
            self._send_bye(call, wait=reason != "shutdown")
        try:
            await call.media.close(ended_at)
        except Exception:
            _logger.exception("closing RTP session of %s failed", call.call_id)
        call.state = "ended"
        self._dialogs.pop((call.call_id, call.local_tag), None)
        self._stats.calls_ended[reason] += 1
        try:
            await self._listener.on_call_ended(call, ended_at, reason)
        except Exception:
            _logger.exception("listener.on_call_ended failed for %s", call.call_id)

    async def end_all(self, reason: str) -> None:
        ended_at = time.time()
        calls = list(self._dialogs.values())
        await asyncio.gather(*(self.end_call(c, ended_at, reason, send_bye=True) for c in calls))

    def _stop_retransmit(self, call: Call) -> None:
        task = call.retransmit_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        call.retransmit_task = None

    def _send_bye(self, call: Call, *, wait: bool) -> None:
        inv = call.invite
        contacts = inv.get_all("contact")
        target = inv.from_
        try:
            uri = parse_name_addr(contacts[0]).uri.raw if contacts else (target.uri.raw if target else "")
        except ValueError:
            uri = target.uri.raw if target else ""
        branch = new_branch()
        call.local_cseq += 1
        peer = call.source
        sent_by = (f"{peer.transport} {self._advertised_host}:{peer.local_port}"
                   if isinstance(peer, StreamPeer) else f"UDP {self._advertised_host}:{self.local_port}")
        bye = build_request(
            "BYE", uri, via=f"SIP/2.0/{sent_by};branch={branch};rport",
            from_=f"{inv.get('to')};tag={call.local_tag}", to=inv.get("from") or "",
            call_id=call.call_id, cseq=call.local_cseq,
            headers=tuple(("route", r) for r in inv.get_all("record-route")),
        ).to_bytes()
        self._send(bye, call.source)
        if wait:
            self._spawn(self._retransmit_bye(bye, call.source, branch))

    async def _retransmit_bye(self, data: bytes, addr: tuple[str, int], branch: str) -> None:
        event = self._bye_waiters[branch] = asyncio.Event()
        try:
            interval = T1
            for _ in range(BYE_ATTEMPTS):
                try:
                    await asyncio.wait_for(event.wait(), interval)
                    return
                except TimeoutError:
                    self._send(data, addr)
                    interval = min(interval * 2, T2)
        finally:
            self._bye_waiters.pop(branch, None)

    def on_response(self, resp: SipResponse) -> None:
        vias = resp.vias
        event = self._bye_waiters.get(vias[0].branch or "") if vias else None
        if event is None:
            self._stats.dropped += 1
            return
        event.set()


def _party(display: str | None, number: str) -> str:
    """What an agent and a supervisor want to read: the name and the number, when both are known."""
    if display and number and display != number:
        return f"{display} <{number}>"
    return display or number
