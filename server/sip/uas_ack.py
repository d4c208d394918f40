"""ACK handling of the recording UAS (RFC 3261 §13.3.1.4, §17.1.1.3): the 2xx to an INVITE or a
re-INVITE resent until its ACK (ending the call with BYE when none comes), the ACK matched to the
pending 2xx with the deviations real UAs show tolerated, and the SDP answer a delayed-offer
dialog (INVITE without SDP) carries in its ACK applied.

A mixin of ``server.sip.uas.CallManager`` (it works on the manager's dialogs): separate because
the ACK/2xx handshake is its own small state machine, apart from the INVITE that starts a dialog
and the BYE that ends it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from server.ratelog import RateLimitedLog
from server.sip.dialog import Call
from server.sip.listener import CallListener
from server.sip.message import SipRequest
from server.sip.midcall import CallHost, apply_ack_answer
from server.sip.stats import SipStats
from server.sip.transactions import TransactionTable, retransmit_intervals, transaction_key
from server.sip.wiretext import display_text

_logger = logging.getLogger("server.sip.uas")
Send = Callable[[bytes, tuple[str, int]], None]


class Acks:
    """2xx retransmission and ACK matching (see the module text)."""

    # Set by CallManager.__init__.
    _send: Send
    _stats: SipStats
    _log: RateLimitedLog
    _listener: CallListener
    _txns: TransactionTable
    # Delayed-offer dialogs (INVITE without SDP) whose SDP answer is due in the ACK.
    _awaiting_answer: set[tuple[str, str]]

    if TYPE_CHECKING:  # CallManager's (and Responses'): declared for the type checker only

        def find_dialog(self, req: SipRequest, *, lenient: bool = False) -> Call | None: ...

        def tolerate(self, kind: str, msg: str, *args: object) -> None: ...

        async def end_call(self, call: Call, ended_at: float, reason: str, *, send_bye: bool) -> None: ...

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
            apply_ack_answer(cast(CallHost, self), call, req)  # self is the CallManager
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

    def _stop_retransmit(self, call: Call) -> None:
        task = call.retransmit_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        call.retransmit_task = None
