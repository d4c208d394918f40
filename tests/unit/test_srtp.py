"""SRTP receive (server.rtp.srtp) and SDES keys (server.sip.sdes): libsrtp's own reference packets
(srtp_validate in libsrtp's test/srtp_driver.c, RFC 3711 AES-CM with HMAC-SHA1-80) unprotected
byte-exact; a recorded SRTP stream is the tone it carries; a wrong key is a visible failure
(``media_error``), never a file of noise or a silent one; RFC 4568 a=crypto lines read and
answered; a re-offer with a new key refused."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pylibsrtp
import pytest
from pylibsrtp import Policy

from server.callmedia.plan import StreamPlan
from server.calls.voice_faults import UNDECODABLE, end_reason
from server.rtp.srtp import SrtpInbound
from server.rtp.stats import RtpStats
from server.sip.sdes import SdesKey, answer_line, choose_crypto, parse_crypto, redact
from server.sip.sdp import audio_streams, build_multistream_answer, parse_sdp
from server.voice.g711 import ulaw_decode, ulaw_encode
from tests.unit.test_rtp_session_receive import T0, Clock, open_session, read_wav, rtp, run, tone

# libsrtp srtp_validate(): master key || salt, one RTP and one RTCP packet, SSRC 0xcafebabe.
KEY = bytes.fromhex("e1f97a0d3e018be0d64fa32c06de41390ec675ad498afeebb6960b3aabe6")
RTP_PLAIN = bytes.fromhex("800f1234decafbadcafebabe") + b"\xab" * 16
SRTP_80 = bytes.fromhex("800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb")
RTCP_PLAIN = bytes.fromhex("81c8000bcafebabe") + b"\xab" * 16
SRTCP_80 = bytes.fromhex("81c8000bcafebabe7128035be487b9bdbef89041f977a5a880000001993e08cd54d6c1230798")


def test_libsrtp_reference_packets_unprotect_byte_exact() -> None:
    stats = RtpStats()
    inbound = SrtpInbound("AES_CM_128_HMAC_SHA1_80", KEY, stats, lambda: 0.0)
    assert inbound.rtp(SRTP_80) == RTP_PLAIN
    assert inbound.rtcp(SRTCP_80) == RTCP_PLAIN
    # ... and the sender side of the same library makes exactly those bytes.
    sender = pylibsrtp.Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    assert sender.protect(RTP_PLAIN) == SRTP_80
    assert inbound.rtp(SRTP_80) == "replay" and stats.dropped_duplicate == 1
    tampered = SRTP_80[:-1] + bytes([SRTP_80[-1] ^ 1])
    fresh = SrtpInbound("AES_CM_128_HMAC_SHA1_80", KEY, stats, lambda: 0.0)
    assert fresh.rtp(tampered) == "auth" and stats.srtp_auth_failed == 1
    assert fresh.rtp(b"\x80\x00") == "malformed"


def _sender(suite: str, key: bytes) -> pylibsrtp.Session:
    profiles = {
        "AES_CM_128_HMAC_SHA1_80": Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
        "AES_CM_128_HMAC_SHA1_32": Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
        "AEAD_AES_128_GCM": Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
        "AEAD_AES_256_GCM": Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
    }
    return pylibsrtp.Session(
        Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profiles[suite])
    )


@pytest.mark.parametrize(
    ("suite", "size"),
    [("AES_CM_128_HMAC_SHA1_80", 30), ("AES_CM_128_HMAC_SHA1_32", 30), ("AEAD_AES_256_GCM", 44)],
)
def test_an_srtp_stream_is_recorded_as_the_tone_it_carries(tmp_path: Path, suite: str, size: int) -> None:
    """Through RtpSession: 2 s of 1 kHz μ-law, SRTP-protected, in the file sample for sample
    (the fast path runs on the unprotected packets)."""
    key = bytes(range(size))
    pcm = tone(1000, 2.0)
    sender = _sender(suite, key)

    async def body(clock: Clock, path: Path) -> RtpStats:
        session = await open_session(clock, path / "v.wav", srtp=(suite, key))
        session.start(T0)
        for i in range(100):
            packet = sender.protect(rtp(0, i, ulaw_encode(pcm[160 * i : 160 * (i + 1)])))
            clock.now = T0 + 0.1 + i * 0.02
            session._on_srtp(packet, ("127.0.0.1", 30000), False)
        await session.close(T0 + 2.5)
        return session.stats

    stats = run(tmp_path, body)
    _, _, data = read_wav(tmp_path / "v.wav")
    start = round(0.1 * 8000)
    assert np.array_equal(data[start : start + 16000, 0], ulaw_decode(ulaw_encode(pcm)))
    assert stats.srtp_auth_failed == 0 and stats.media_error is None and stats.written == 100


def test_a_wrong_key_is_a_visible_failure_not_a_file_of_noise(tmp_path: Path) -> None:
    pcm = tone(1000, 3.0)
    sender = _sender("AES_CM_128_HMAC_SHA1_80", bytes(30))

    async def body(clock: Clock, path: Path) -> RtpStats:
        session = await open_session(
            clock, path / "v.wav", srtp=("AES_CM_128_HMAC_SHA1_80", bytes(range(30)))
        )
        session.start(T0)
        for i in range(150):
            packet = sender.protect(rtp(0, i, ulaw_encode(pcm[160 * i : 160 * (i + 1)])))
            clock.now = T0 + 0.1 + i * 0.02
            session._on_srtp(packet, ("127.0.0.1", 30000), False)
        await session.close(T0 + 3.5)
        return session.stats

    stats = run(tmp_path, body)
    _, _, data = read_wav(tmp_path / "v.wav")
    assert not data.any()  # nothing decoded from ciphertext
    assert stats.written == 0 and stats.srtp_auth_failed == 150
    assert stats.media_error is not None and "SRTP authentication failed" in stats.media_error
    # The interaction's voice then fails as undecodable (server.calls.voice_failure), not as a
    # disk or write problem.
    assert end_reason(stats.media_error) == UNDECODABLE


def test_plain_rtp_on_an_srtp_stream_fails_authentication_visibly(tmp_path: Path) -> None:
    """A sender that was told SRTP but sends plain RTP: not recorded as if it were fine."""

    async def body(clock: Clock, path: Path) -> RtpStats:
        session = await open_session(clock, path / "v.wav", srtp=("AES_CM_128_HMAC_SHA1_80", KEY))
        session.start(T0)
        for i in range(120):
            clock.now = T0 + 0.1 + i * 0.02
            session._on_srtp(rtp(0, i, b"\xff" * 160), ("127.0.0.1", 30000), False)
        await session.close(T0 + 3.0)
        return session.stats

    stats = run(tmp_path, body)
    assert stats.written == 0 and stats.media_error is not None


# ---- RFC 4568 a=crypto lines ------------------------------------------------------------------------
def test_rfc4568_crypto_lines() -> None:
    key = parse_crypto("1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20")
    assert isinstance(key, SdesKey) and (key.tag, key.suite, len(key.key)) == (
        1,
        "AES_CM_128_HMAC_SHA1_80",
        30,
    )
    assert "WVNf" not in repr(key) and key.key.hex() not in repr(key)
    # RFC 4568 §8.2's lines carry an MKI; the second also has two keys and F8.
    assert parse_crypto(
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4"
    ) == ("MKI is not supported")
    assert "F8_128" in str(
        parse_crypto("2 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm")
    )
    assert "session parameter UNENCRYPTED_SRTP" in str(
        parse_crypto(
            "1 AES_CM_128_HMAC_SHA1_32 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz UNENCRYPTED_SRTP"
        )
    )
    assert "instead of 30" in str(parse_crypto("1 AES_CM_128_HMAC_SHA1_80 inline:QUJD"))
    assert isinstance(
        parse_crypto("7 AES_CM_128_HMAC_SHA1_32 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz WSH=64"),
        SdesKey,
    )
    chosen = choose_crypto(["1 F8_128_HMAC_SHA1_80 inline:x", "2 AES_CM_128_HMAC_SHA1_32 inline:" + "A" * 40])
    assert isinstance(chosen, SdesKey) and chosen.tag == 2


def test_answer_is_rtp_savp_with_one_fresh_key_of_ours_under_the_offers_tag() -> None:
    offered = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
    sdp = parse_sdp(
        (
            "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n"
            "m=audio 49170 RTP/SAVP 0 8\r\n"
            f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{offered}|2^20|1:4\r\n"
            f"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{offered}|2^20\r\n"
        ).encode()
    )
    (stream,) = audio_streams(sdp)
    assert stream.accepted and stream.crypto is not None and stream.crypto.tag == 2
    answers = [build_multistream_answer(sdp, [stream], "192.0.2.1", {0: 40000}).decode() for _ in range(2)]
    for answer in answers:
        assert "m=audio 40000 RTP/SAVP 0 8\r\n" in answer
        (line,) = re.findall(r"a=crypto:.*", answer)
        tag, suite, inline = line.strip().split(" ")
        assert (tag, suite) == ("a=crypto:2", "AES_CM_128_HMAC_SHA1_32")
        ours = inline.removeprefix("inline:")
        assert len(base64.b64decode(ours)) == 30 and ours != offered
    assert answers[0] != answers[1]  # a fresh key each time
    assert redact(answers[0]).count("inline:[redacted]") == 1 and "inline:" + offered not in answers[0]
    assert re.fullmatch(
        r"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:[A-Za-z0-9+/]{40}", answer_line(stream.crypto)
    )


def test_a_reoffer_with_a_new_key_is_refused_and_the_same_key_is_not() -> None:
    from server.callmedia.plan import MediaPlan
    from server.sip.midcall import srtp_change
    from server.sip.siprec import parse_offer

    def offer(key: str, proto: str = "RTP/SAVP") -> bytes:
        return (
            "v=0\r\no=- 1 2 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n"
            f"m=audio 49170 {proto} 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n"
        ).encode()

    first = base64.b64encode(bytes(30)).decode()
    plan = MediaPlan(
        (StreamPlan(0, "PCMU", 0, None, None, None, ((0, "PCMU"),), ("AES_CM_128_HMAC_SHA1_80", bytes(30))),),
        8000,
    )
    assert srtp_change(parse_offer("application/sdp", offer(first), None, None), plan) is None
    rekey = parse_offer("application/sdp", offer(base64.b64encode(bytes(range(30))).decode()), None, None)
    assert "rekeying is not supported" in str(srtp_change(rekey, plan))
    plain = parse_offer("application/sdp", offer(first, "RTP/AVP"), None, None)
    assert "between RTP and SRTP" in str(srtp_change(plain, plan))
    assert "bytes(30)" not in repr(plan) and "srtp" not in repr(plan)


def test_the_key_crosses_to_an_rtp_worker_in_its_open_command() -> None:
    """The plan goes to the worker process pickled (server.rtp.workers.protocol): the SRTP key
    must arrive, through the unpickler's class allow-list."""
    from server.callmedia.plan import MediaPlan
    from server.rtp.workers.protocol import COMMANDS, Open, decode_payload, encode_frame

    stream = StreamPlan(0, "PCMU", 0, None, None, None, ((0, "PCMU"),), ("AEAD_AES_128_GCM", bytes(28)))
    sent = Open(1, "127.0.0.1", (40000, 40010), "/tmp/v.wav", MediaPlan((stream,), 8000))
    received = decode_payload(encode_frame(sent)[4:], COMMANDS)
    assert received.plan.streams[0].srtp == ("AEAD_AES_128_GCM", bytes(28))
