"""Issue 11 item 3 for SRTP: an SDES-keyed stream whose packets the offered key does not
authenticate (the SBC encrypts with another key, or sends plain RTP on an RTP/SAVP line) is a
visible failure, never a file of ciphertext decoded as noise nor a silent file with SIP success:
the interaction's voice is FAILED ``voice undecodable``, the agent sees it, an audit record says
SRTP. The stats cross an RTP worker process, as in production."""

from __future__ import annotations

import base64
import struct
import time
from pathlib import Path

import pylibsrtp
from pylibsrtp import Policy

from server.voice import g711
from tests.integration.fault_server import DN
from tests.integration.siprec_peer import tone
from tests.integration.undecodable_world import voice_world


def _savp_offer(rtp_port: int, key: bytes) -> bytes:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {rtp_port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n"
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(key).decode()}\r\n"
    ).encode()


def test_srtp_packets_the_offered_key_does_not_authenticate_fail_the_voice_visibly(tmp_path: Path) -> None:
    with voice_world(tmp_path) as world:
        peer = world.peer
        dialog = peer.invite(_savp_offer(peer.rtp.getsockname()[1], bytes(30)), dn=DN, siprec=False)
        assert dialog.status == 200, [(r.status, r.reason) for r in dialog.responses]
        answer = dialog.responses[-1].body.decode()
        assert "RTP/SAVP 0" in answer and "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" in answer
        port = dialog.ports[0][0]
        wrong = pylibsrtp.Session(Policy(key=bytes(range(30)), ssrc_type=Policy.SSRC_ANY_OUTBOUND))
        payload = g711.ulaw_encode(tone(440, 0.02))

        def send(n: int) -> None:
            header = struct.pack("!BBHII", 0x80, 0, n & 0xFFFF, (n * 160) & 0xFFFFFFFF, 0x4242)
            peer.rtp.sendto(wrong.protect(header + payload), ("127.0.0.1", port))
            time.sleep(0.02)

        world.keep_sending(send)
        _info, audit = world.wait_voice_failed("voice FAILED for SRTP that does not authenticate")
        assert audit[0] == "failed" and "SRTP authentication failed" in audit[1]
        assert "AAAAAAAA" not in audit[1]  # never the key (base64 of zero bytes)
        world.hang_up(dialog)
