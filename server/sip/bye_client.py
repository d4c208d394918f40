"""The recorder as a UAC: the BYE it sends when it ends a call itself (RTP timeout, no ACK,
shutdown), resent on the RFC 3261 schedule until a response with its branch arrives."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from typing import Any

from server.sip.builders import build_request, new_branch
from server.sip.dialog import Call
from server.sip.headers import parse_name_addr
from server.sip.message import SipResponse
from server.sip.stats import SipStats
from server.sip.transactions import retransmit_intervals
from server.sip.transport import StreamPeer

BYE_ATTEMPTS = 7  # resends before giving up (T1 doubling to T2: about 20 s)


class ByeClient:
    def __init__(
        self,
        *,
        send: Callable[[bytes, tuple[str, int]], None],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        stats: SipStats,
        advertised_host: str,
    ) -> None:
        self._send = send
        self._spawn = spawn
        self._stats = stats
        self._advertised_host = advertised_host
        self._waiters: dict[str, asyncio.Event] = {}

    def send(self, call: Call, local_port: int, *, wait: bool) -> None:
        """BYE to the peer's Contact (else its From), over the transport the call came on;
        ``wait``: resend until answered."""
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
        sent_by = (
            f"{peer.transport} {self._advertised_host}:{peer.local_port}"
            if isinstance(peer, StreamPeer)
            else f"UDP {self._advertised_host}:{local_port}"
        )
        bye = build_request(
            "BYE",
            uri,
            via=f"SIP/2.0/{sent_by};branch={branch};rport",
            from_=f"{inv.get('to')};tag={call.local_tag}",
            to=inv.get("from") or "",
            call_id=call.call_id,
            cseq=call.local_cseq,
            headers=tuple(("route", r) for r in inv.get_all("record-route")),
        ).to_bytes()
        self._send(bye, call.source)
        if wait:
            self._spawn(self._resend(bye, call.source, branch))

    async def _resend(self, data: bytes, addr: tuple[str, int], branch: str) -> None:
        event = self._waiters[branch] = asyncio.Event()
        try:
            for interval, _ in itertools.islice(retransmit_intervals(), BYE_ATTEMPTS):
                try:
                    await asyncio.wait_for(event.wait(), interval)
                    return
                except TimeoutError:
                    self._send(data, addr)
        finally:
            self._waiters.pop(branch, None)

    def on_response(self, resp: SipResponse) -> None:
        """A response to one of our BYEs ends its resending; any other response is stray."""
        vias = resp.vias
        event = self._waiters.get(vias[0].branch or "") if vias else None
        if event is None:
            self._stats.dropped += 1
            return
        event.set()
