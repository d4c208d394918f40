"""SDP offer parsing, codec choice and the recvonly answer."""

from __future__ import annotations

import pytest

from server.errors import SdpError
from server.sip.sdp import build_answer, choose_audio, parse_sdp

OFFER = (
    "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 8 0 101\r\nc=IN IP4 10.0.0.9\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=sendonly\r\nm=video 40002 RTP/AVP 31\r\n"
)


def test_offer_order_and_media_level_connection() -> None:
    sdp = parse_sdp(OFFER.encode())
    choice = choose_audio(sdp)
    assert (choice.codec, choice.payload_type) == ("PCMA", 8)
    assert (choice.remote_host, choice.remote_port) == ("10.0.0.9", 40000)
    assert choice.direction == "sendonly"


def test_rtpmap_dynamic_and_session_connection() -> None:
    body = OFFER.replace("8 0 101", "96 0").replace("c=IN IP4 10.0.0.9\r\n", "")
    body = body.replace("a=rtpmap:101 telephone-event/8000", "a=rtpmap:96 opus/48000/2")
    choice = choose_audio(parse_sdp(body.encode()))
    assert choice.codec == "PCMU" and choice.remote_host == "10.0.0.1"


def test_no_common_codec() -> None:
    with pytest.raises(SdpError, match="no common codec"):
        choose_audio(parse_sdp(OFFER.replace("8 0 101", "18 101").encode()))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"hello",
        b"v=0\r\nm=audio x RTP/AVP 0\r\n",
        b"v=0\r\nbogus\r\n",
        b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 0 RTP/AVP 0\r\n",
        b"\xff\xfe",
    ],
)
def test_bad_offers(body: bytes) -> None:
    with pytest.raises(SdpError):
        choose_audio(parse_sdp(body))


def test_answer_is_recvonly_with_refused_video() -> None:
    sdp = parse_sdp(OFFER.encode())
    answer = build_answer(sdp, choose_audio(sdp), "127.0.0.1", 30000).decode()
    assert "m=audio 30000 RTP/AVP 8\r\n" in answer
    assert "a=rtpmap:8 PCMA/8000\r\n" in answer and "a=recvonly\r\n" in answer
    assert "c=IN IP4 127.0.0.1\r\n" in answer and "m=video 0 RTP/AVP 31\r\n" in answer
    again = parse_sdp(answer.encode())
    assert again.media[0].direction == "recvonly" and again.media[1].port == 0
