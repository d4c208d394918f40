"""A small recording client (SRC) for tests: sends an INVITE with a given body over UDP, ACKs,
streams G.711 tones to the answered ports, re-INVITEs and hangs up. Blocking sockets only, so
it runs beside a server whose event loop lives in another thread."""

from __future__ import annotations

import re
import secrets
import socket
import struct
import time
from dataclasses import dataclass, field

import numpy as np

from server.sip.message import SipResponse, parse_message
from server.sip.sdp import audio_streams, parse_sdp
from server.voice import g711

OFFERS_BOUNDARY = re.compile(rb"^--(\S+?)\s*$", re.MULTILINE)


def content_type_for(body: bytes) -> str:
    first = OFFERS_BOUNDARY.search(body)
    return f'multipart/mixed;boundary="{first.group(1).decode()}"' if first else "application/sdp"


def tone(freq: float, seconds: float, rate: int = 8000, level: float = 8000.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.int16)


@dataclass
class Dialog:
    call_id: str
    from_tag: str
    to_header: str
    cseq: int
    ports: dict[int, tuple[int, int]]  # answer m-line index -> (server RTP port, payload type)
    answer: bytes
    contact_header: str
    status: int
    responses: list[SipResponse] = field(default_factory=list)


class SrcPeer:
    def __init__(self, server_port: int, host: str = "127.0.0.1") -> None:
        self.server = (host, server_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(5.0)
        self.port = self.sock.getsockname()[1]
        self.feature = ";+sip.src"  # RFC 7866 §6.1: a recording client marks its Contact
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((host, 0))

    def close(self) -> None:
        self.sock.close()
        self.rtp.close()

    # -- SIP -----------------------------------------------------------------------------------
    def _request(
        self,
        method: str,
        uri: str,
        call_id: str,
        from_tag: str,
        to: str,
        cseq: int,
        extra: tuple[str, ...] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> bytes:
        branch = "z9hG4bK" + secrets.token_hex(8)
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport",
            f"From: <sip:src@127.0.0.1:{self.port}>;tag={from_tag}",
            f"To: {to}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method if method != 'ACK' else 'ACK'}",
            "Max-Forwards: 70",
            f"Contact: <sip:src@127.0.0.1:{self.port}>{self.feature}",
            *extra,
        ]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self.sock.sendto(data, self.server)
        return data

    def _final(self, call_id: str, method: str) -> list[SipResponse]:
        got: list[SipResponse] = []
        while True:
            data, _ = self.sock.recvfrom(65535)
            msg = parse_message(data)
            if not isinstance(msg, SipResponse) or msg.call_id != call_id:
                continue
            cseq = msg.cseq
            if cseq is None or cseq.method != method:
                continue
            got.append(msg)
            if msg.status >= 200:
                return got

    def invite(
        self,
        body: bytes,
        *,
        dn: str = "srs",
        extra: tuple[str, ...] = (),
        content_type: str | None = None,
        siprec: bool = True,
    ) -> Dialog:
        call_id = secrets.token_hex(8)
        from_tag = secrets.token_hex(4)
        uri = f"sip:{dn}@{self.server[0]}:{self.server[1]}"
        ctype = content_type or content_type_for(body)
        headers = (("Require: siprec",) if siprec else ()) + extra
        self.feature = ";+sip.src" if siprec else ""
        self._request("INVITE", uri, call_id, from_tag, f"<{uri}>", 1, headers, body, ctype)
        responses = self._final(call_id, "INVITE")
        final = responses[-1]
        dialog = Dialog(
            call_id,
            from_tag,
            final.get("to") or f"<{uri}>",
            1,
            {},
            final.body,
            final.get("contact") or "",
            final.status,
            responses,
        )
        if final.status == 200:
            dialog.ports = _ports(final.body)
            self.ack(dialog)
        return dialog

    def ack(self, dialog: Dialog) -> None:
        uri = _contact_uri(dialog.contact_header) or f"sip:srs@{self.server[0]}:{self.server[1]}"
        self._request("ACK", uri, dialog.call_id, dialog.from_tag, dialog.to_header, dialog.cseq)

    def reinvite(
        self, dialog: Dialog, body: bytes, content_type: str = "application/sdp", extra: tuple[str, ...] = ()
    ) -> SipResponse:
        dialog.cseq += 1
        uri = _contact_uri(dialog.contact_header) or f"sip:srs@{self.server[0]}:{self.server[1]}"
        self._request(
            "INVITE",
            uri,
            dialog.call_id,
            dialog.from_tag,
            dialog.to_header,
            dialog.cseq,
            extra,
            body,
            content_type,
        )
        final = self._final(dialog.call_id, "INVITE")[-1]
        if final.status == 200:
            self.ack(dialog)
        return final

    def update(self, dialog: Dialog, body: bytes, content_type: str) -> SipResponse:
        dialog.cseq += 1
        uri = _contact_uri(dialog.contact_header) or f"sip:srs@{self.server[0]}:{self.server[1]}"
        self._request(
            "UPDATE",
            uri,
            dialog.call_id,
            dialog.from_tag,
            dialog.to_header,
            dialog.cseq,
            (),
            body,
            content_type,
        )
        return self._final(dialog.call_id, "UPDATE")[-1]

    def bye(self, dialog: Dialog) -> SipResponse:
        dialog.cseq += 1
        uri = _contact_uri(dialog.contact_header) or f"sip:srs@{self.server[0]}:{self.server[1]}"
        self._request("BYE", uri, dialog.call_id, dialog.from_tag, dialog.to_header, dialog.cseq)
        return self._final(dialog.call_id, "BYE")[-1]

    # -- RTP -----------------------------------------------------------------------------------
    def stream(
        self, legs: dict[int, tuple[np.ndarray, int]], *, paced: bool = True, seq0: int = 0, ts0: int = 0
    ) -> None:
        """Send each leg's samples (port -> (pcm, payload type)) as 20 ms packets, interleaved."""
        ssrcs = {port: 0x1000 + i for i, port in enumerate(legs)}
        # 20 ms payloads per leg: G.711 160 samples → 160 octets; G.722 (PT 9) 320 samples → 160 octets
        payloads: dict[int, list[bytes]] = {}
        for port, (pcm, pt) in legs.items():
            if pt == 9:
                from server.voice import g722

                data = g722.encode(pcm)
            else:
                data = g711.ulaw_encode(pcm) if pt == 0 else g711.alaw_encode(pcm)
            payloads[port] = [data[i : i + 160] for i in range(0, len(data) - 159, 160)]
        count = max(len(p) for p in payloads.values())
        start = time.monotonic()
        for n in range(count):
            for port, (_, pt) in legs.items():
                if n >= len(payloads[port]):
                    continue
                payload = payloads[port][n]
                header = struct.pack(
                    "!BBHII", 0x80, pt, (seq0 + n) & 0xFFFF, (ts0 + n * 160) & 0xFFFFFFFF, ssrcs[port]
                )
                self.rtp.sendto(header + payload, (self.server[0], port))
            if paced:
                delay = start + (n + 1) * 0.02 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)


def _ports(sdp_body: bytes) -> dict[int, tuple[int, int]]:
    streams = audio_streams(parse_sdp(sdp_body), ("PCMU", "PCMA", "G722"))
    return {s.index: (s.port, s.payload_type or 0) for s in streams if s.port}


def _contact_uri(header: str) -> str | None:
    match = re.search(r"<([^>]+)>", header)
    return match.group(1) if match else None
