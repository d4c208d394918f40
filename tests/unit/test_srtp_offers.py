"""SRTP offers (RFC 4568 SDES, RFC 5764 DTLS-SRTP): what is refused and how, never answered as
plain RTP/AVP (RFC 3264 §6: the answer's m= line keeps the offer's transport). The SDP texts are
RFC 4568's own examples (§8.2, one attribute per line as on the wire) and variants of them."""

from __future__ import annotations

import re

import pytest

from server.errors import SiprecError
from server.sip.refusals import warning_header
from server.sip.sdp import audio_streams, build_multistream_answer, parse_sdp
from server.sip.siprec import parse_offer

HEAD = (
    "v=0\r\no=sam 2890844526 2890842807 IN IP4 10.47.16.5\r\n"
    "s=SRTP Discussion\r\nc=IN IP4 168.2.17.12\r\nt=0 0\r\n"
)
# RFC 4568 §8.2: two crypto lines, both with an MKI (and the second one with two keys, F8).
RFC4568_OFFER = HEAD + (
    "m=audio 49170 RTP/SAVP 0\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "
    "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 FEC_ORDER=FEC_SRTP\r\n"
    "a=crypto:2 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;"
    "inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 FEC_ORDER=FEC_SRTP\r\n"
)
# RFC 5763 §6-style DTLS-SRTP offer: keys come from a DTLS handshake on the media path.
DTLS_OFFER = HEAD + (
    "m=audio 49170 UDP/TLS/RTP/SAVP 0\r\n"
    "a=fingerprint:SHA-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB\r\na=setup:actpass\r\n"
)
SAVP_NO_CRYPTO = HEAD + "m=audio 49170 RTP/SAVP 0\r\n"


def _offer(sdp: str) -> None:
    parse_offer("application/sdp", sdp.encode(), None, None)


@pytest.mark.parametrize(
    ("sdp", "why"),
    [
        (RFC4568_OFFER, "SRTP"),
        (DTLS_OFFER, "DTLS-SRTP"),
        (SAVP_NO_CRYPTO, "SRTP"),
        (HEAD + "m=audio 5 RTP/XYZ 0\r\n", "RTP/XYZ"),
    ],
)
def test_an_offer_we_cannot_decrypt_is_refused_488_not_answered_as_plain_rtp(sdp: str, why: str) -> None:
    with pytest.raises(SiprecError) as refused:
        _offer(sdp)
    assert refused.value.status == 488
    assert why in refused.value.reason


def test_a_siprec_offer_with_one_srtp_stream_records_the_other_and_refuses_that_one_with_port_0() -> None:
    """RFC 3264 §6: a stream the answerer cannot take gets port 0 with the offer's own transport;
    the call is refused as a whole (488) only when no stream at all can be recorded."""
    sdp = parse_sdp((RFC4568_OFFER + "a=label:1\r\nm=audio 49172 RTP/AVP 0\r\na=label:2\r\n").encode())
    first, second = audio_streams(sdp)
    assert not first.accepted and "SRTP" in (first.refusal or "")
    assert second.accepted
    answer = build_multistream_answer(sdp, [first, second], "192.0.2.1", {1: 40000}).decode()
    assert "m=audio 0 RTP/SAVP 0\r\n" in answer and "m=audio 40000 RTP/AVP 0\r\n" in answer
    assert "inline:" not in answer


def test_rtp_avpf_is_answered_in_its_own_protocol() -> None:
    sdp = parse_sdp((HEAD + "m=audio 49170 RTP/AVPF 8\r\n").encode())
    answer = build_multistream_answer(sdp, audio_streams(sdp), "192.0.2.1", {0: 40000}).decode()
    assert "m=audio 40000 RTP/AVPF 8" in answer


def test_warning_header_text_cannot_leave_its_quoted_string() -> None:
    name, value = warning_header('bad "suite"\\ \x01here')
    assert name == "warning"
    assert value == "399 tandem \"bad 'suite'/ ?here\""


def test_a_malformed_line_is_quoted_in_the_refusal_without_its_key() -> None:
    """The refusal's text goes to the log, the Warning header and the stored missed call."""
    key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
    with pytest.raises(SiprecError) as refused:
        _offer(HEAD + f"m=audio 49170 RTP/SAVP 0\r\ninline:{key}|2^20\r\n")
    assert "inline:[redacted]" in refused.value.reason and key[:10] not in refused.value.reason


def test_no_key_in_the_repr_of_a_parsed_offer() -> None:
    key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
    offer = parse_offer(
        "application/sdp",
        (HEAD + f"m=audio 49170 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n").encode(),
        None,
        None,
    )
    assert offer.streams[0].audio.crypto is not None
    assert key[:12] not in repr(offer)


def test_cisco_siprec_offer_with_srtp_streams_is_answered_savp_per_stream() -> None:
    """The captured CUBE offer (shared test data) as CUBE sends it with SRTP towards the SRS:
    each labelled stream RTP/SAVP with its own key; each is answered RTP/SAVP with a crypto line
    of ours, labels kept (before: answered plain RTP/AVP)."""
    from tests.unit.test_siprec_offers import load, offer_of

    plain = load("cisco-siprec-offer.txt")
    keys = iter(["WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz", "MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm"])
    body = re.sub(
        rb"RTP/AVP 0 101(\r?\n)",
        lambda m: (
            b"RTP/SAVP 0 101"
            + m.group(1)
            + b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"
            + next(keys).encode()
            + m.group(1)
        ),
        plain.body,
    )
    plain.body = body
    offer = offer_of(plain)
    assert [s.audio.accepted for s in offer.streams] == [True, True]
    assert [s.audio.crypto.key != b"" for s in offer.streams if s.audio.crypto] == [True, True]
    answer = offer.answer("192.0.2.1", {s.audio.index: 30000 + 2 * i for i, s in enumerate(offer.streams)})
    text = answer.decode()
    assert text.count("RTP/SAVP 0 101") == 2 and text.count("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:") == 2
    assert "WVNfX19zZW1j" not in text and "a=label:1" in text and "a=label:2" in text
