"""SRTP offers through the real SIP engine on both event loops: a refused one is a 488 with a
Warning saying why, and a stored refusal (missed recording) with that reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.sip.service import SipService
from tests.integration.sip_fakes import FakeListener
from tests.integration.test_sip_tolerance import RawUac, _Refusals, _run
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
