"""Response building and sending of the recording UAS (RFC 3261 §8.2.6, §17.2): build, count and
send a response, record a refused INVITE (counter, log line, refusal sink), resend a final error
to an INVITE over UDP until its ACK (Timer G), answer a retransmitted request from its
transaction, and the Contact/Allow a dialog-creating response carries.

A mixin of ``server.sip.uas.CallManager`` (it works on the manager's transaction table and
counters): separate because building and accounting for responses is one concern that INVITE,
ACK, BYE and in-dialog handling all use, and apart from them it reads and tests on its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from server.errors import SipError
from server.ratelog import RateLimitedLog
from server.sip.builders import ALLOW, build_response, new_tag, reason_for
from server.sip.message import SipRequest
from server.sip.recording_request import RequestPolicy, recorded_dn
from server.sip.refusals import MAX_DETAIL, Refusal, RefusalSink, reason_code, safe_text
from server.sip.stats import SipStats
from server.sip.transactions import ServerTransaction, TransactionTable, retransmit_intervals, transaction_key
from server.sip.transport import StreamPeer
from server.sip.wiretext import display_text, log_text

_logger = logging.getLogger("server.sip.uas")
Send = Callable[[bytes, tuple[str, int]], None]
MAX_ERROR_RETRANSMITS = 4096  # INVITE error responses being resent until ACK (Timer G)


class Responses:
    """Response building, refusal accounting and error retransmission (see the module text)."""

    # Set by CallManager.__init__.
    _send: Send
    _stats: SipStats
    _log: RateLimitedLog
    _refusals: RefusalSink | None
    _advertised_host: str
    _txns: TransactionTable
    _error_timers: set[asyncio.Task[None]]
    policy: RequestPolicy
    local_port: int

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
        detail: str | None = None,
    ) -> bytes:
        """Build, count and send a response. A final error to an initial INVITE is a refused
        call: logged, counted by reason (``why``, else from the status) and reported to the
        refusal sink; ``why=""`` marks one that is not (a digest challenge). ``detail`` says
        why, for the stored refusal (default: the reason phrase)."""
        data = self.response_bytes(req, status, reason=reason, headers=headers, to_tag=to_tag, body=body)
        self._send(data, addr)
        if status >= 300 and req.method == "INVITE" and why != "":
            try:
                initial = (to := req.to) is None or to.tag is None
            except (SipError, ValueError):  # a To that does not parse: no dialog it could be in
                initial = True
            if initial:
                self.note_refusal(req, addr, status, reason, why, detail)
        return data

    def note_refusal(
        self,
        req: SipRequest,
        addr: tuple[str, int],
        status: int,
        reason: str | None,
        why: str | None,
        detail: str | None = None,
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
                detail=safe_text(f"{phrase}: {detail}" if detail else phrase, MAX_DETAIL),
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
        detail: str | None = None,
    ) -> None:
        data = self.respond(
            txn.request, txn.source, status, reason=reason, headers=headers, why=why, detail=detail
        )
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

    def tolerate(self, kind: str, msg: str, *args: object) -> None:
        """A deviation from RFC 3261 accepted instead of failing the call: counted by kind,
        logged at most once per kind per interval, header text made printable."""
        self._stats.tolerated[kind] += 1
        self._log.warning(f"tolerated:{kind}", msg, *(log_text(a) for a in args))

    def contact(self, addr: tuple[str, int], siprec: bool) -> tuple[tuple[str, str], ...]:
        # A call that came over TCP/TLS must be reached (ACK, BYE) over that transport again.
        if isinstance(addr, StreamPeer):
            uri = f"sip:{self._advertised_host}:{addr.local_port};transport={addr.transport.lower()}"
        else:
            uri = f"sip:{self._advertised_host}:{self.local_port}"
        # RFC 7866 §6.1.2: a recording server marks its Contact with +sip.srs.
        contact = f"<{uri}>;+sip.srs" if siprec else f"<{uri}>"
        return (("contact", contact), ("allow", ALLOW))
