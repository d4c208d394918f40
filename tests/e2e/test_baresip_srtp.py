"""Acceptance (issue 11, SRTP): baresip, a peer we did not write, calls an agent's DN with
SDES-SRTP mandatory (its ``srtp`` module, ``;mediaenc=srtp-mand``: RTP/SAVP with a=crypto).
Tandem answers RTP/SAVP with its own key, unprotects every packet with libsrtp, and the stored
voice file holds baresip's tone for the whole call, exactly as for the plain call
(test_baresip_call). Before SRTP support the call was answered RTP/AVP and the ciphertext would
have been stored as noise."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import run_server
from tests.e2e.peers import run_baresip, write_tone_wav
from tests.e2e.test_baresip_call import (
    AGENT,
    CALLER_USER,
    DISPLAY_NAME,
    DN,
    TONE_HZ,
    assert_tone_recorded,
    hold_call,
)

pytestmark = pytest.mark.e2e


def test_baresip_srtp_call_is_recorded(tmp_path: Path) -> None:
    tone = tmp_path / "tone.wav"
    write_tone_wav(tone, TONE_HZ, seconds=30)
    with run_server(tmp_path / "server", TANDEM_SERVER_SCREEN_PERCENTAGE="0") as server:
        server.token(AGENT, client="desktop", dn=DN)
        with run_baresip(tmp_path, tone, DISPLAY_NAME, CALLER_USER, mediaenc="srtp-mand") as phone:
            established, held = hold_call(phone, f"sip:{DN}@127.0.0.1:{server.sip_port}")
            log = phone.log()
        assert_tone_recorded(server, established, held)
    # baresip really encrypted: it says so, with the suite it agreed on from our answer.
    assert "SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)" in log, log
