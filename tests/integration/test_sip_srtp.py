"""SRTP offers through the real SIP engine on both event loops: an SDES-keyed call is answered
RTP/SAVP and its SRTP packets are recorded as the tone they carry (the real RtpSession's WAV); a
refused one is a 488 with a Warning saying why, and a stored refusal (missed recording)."""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import wave
from pathlib import Path

import numpy as np
import pylibsrtp
import pytest
from pylibsrtp import Policy

from server.rtp.packet import RtpPacket
from server.sip.service import SipService
from server.voice.g711 import ulaw_decode, ulaw_encode
from tests.integration.sip_fakes import FakeListener
from tests.integration.test_sip_tolerance import RawUac, _Refusals, _run, _wait_for
from tests.loops import LOOPS

pytestmark = pytest.mark.timeout(90)

DTLS_SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 41000 UDP/TLS/RTP/SAVP 0\r\na=setup:actpass\r\n"
    b"a=fingerprint:SHA-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB\r\n"
)


@pytest.mark.parametrize("loop", LOOPS)
def test_dtls_srtp_offer_is_refused_488_with_a_warning_and_stored_as_missed(
    loop: str, tmp_path: Path
) -> None:
    refusals = _Refusals()

    async def body(service: SipService, listener: FakeListener, uac: RawUac) -> None:
        uac.send(uac.request("INVITE", 1, body=DTLS_SDP))
        refused = await uac.response("INVITE", 488)
        warning = refused.get("warning") or ""
        assert warning.startswith('399 tandem "') and "DTLS-SRTP" in warning, warning
        assert not listener.offered  # never offered to the core, never answered as plain RTP

    _run(loop, tmp_path, body, refusals)
    assert [(r.status, r.reason) for r in refusals.seen] == [(488, "unacceptable-offer")]
    assert "DTLS-SRTP" in refusals.seen[0].detail


KEY = bytes(range(7, 37))
SAVP_SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 41000 RTP/SAVP 0\r\na=sendrecv\r\n"
    b"a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(KEY) + b"|2^31\r\n"
)


@pytest.mark.parametrize("loop", LOOPS)
def test_sdes_srtp_call_is_answered_savp_and_recorded_as_its_tone(loop: str, tmp_path: Path) -> None:
    t = np.arange(8000) / 8000
    pcm = np.round(6000 * np.sin(2 * np.pi * 440 * t + 1.0)).astype(np.int16)  # no leading zero

    async def body(service: SipService, listener: FakeListener, uac: RawUac) -> None:
        ok = await uac.invite(body=SAVP_SDP)
        answer = ok.body.decode()
        media = re.search(r"m=audio (\d+) RTP/SAVP 0", answer)
        assert media is not None, answer
        assert len(re.findall(r"a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:\S+", answer)) == 1
        uac.send(uac.request("ACK", 1))
        await _wait_for(lambda: listener.answered, "the call answered")
        sender = pylibsrtp.Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(50):
                packet = RtpPacket(0, i, 160 * i, 0x1234, ulaw_encode(pcm[160 * i : 160 * (i + 1)]), False)
                sock.sendto(sender.protect(packet.serialize()), ("127.0.0.1", int(media.group(1))))
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        uac.send(uac.request("BYE", 2))
        assert (await uac.response("BYE")).status == 200
        await _wait_for(lambda: listener.ended, "the call to end")

    _, listener = _run(loop, tmp_path, body)
    call = listener.ended[0][0]
    with wave.open(str(call.voice_path), "rb") as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    expected = ulaw_decode(ulaw_encode(pcm))
    start = int(np.flatnonzero(data)[0])
    # Sample-exact wherever packets landed; a few may be late on a loaded machine, never noise.
    got = data[start : start + len(expected)]
    matching = np.count_nonzero(got == expected[: len(got)])
    assert matching > 0.9 * len(expected), (matching, len(expected))


@pytest.mark.parametrize("loop", LOOPS)
def test_a_reinvite_with_a_new_key_is_refused_and_the_same_key_accepted(loop: str, tmp_path: Path) -> None:
    """RFC 4568 §7.1.4 rekeying is not supported: refused 488 with a Warning, the call goes on
    (RFC 3261 §14.2: the old session stays); a hold/refresh re-offer with the same key is fine."""

    async def body(service: SipService, listener: FakeListener, uac: RawUac) -> None:
        await uac.invite(body=SAVP_SDP)
        uac.send(uac.request("ACK", 1))
        await _wait_for(lambda: listener.answered, "the call answered")
        same = SAVP_SDP.replace(b"1 1 IN", b"1 2 IN")
        assert (await uac.reinvite(2, same)).status == 200
        uac.send(uac.request("ACK", 2))
        rekey = same.replace(base64.b64encode(KEY), base64.b64encode(bytes(30))).replace(b"1 2 IN", b"1 3 IN")
        refused = await uac.reinvite(3, rekey)
        assert refused.status == 488 and "rekeying" in (refused.get("warning") or ""), refused
        uac.send(uac.request("ACK", 3))
        uac.send(uac.request("BYE", 4))
        assert (await uac.response("BYE")).status == 200
        await _wait_for(lambda: listener.ended, "the call to end")

    _run(loop, tmp_path, body)
