"""Digest authentication proven by two independent clients: SIPp's ``[authentication]`` and
baresip (libre) each answer the server's 401 (MD5, qop=auth) and the call is recorded; the
challenge is counted, not stored as a missed call. baresip with a wrong password is refused
(403) and that refusal is stored as a missed call."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import run_server, wait_until
from tests.e2e.peers import run_baresip, write_tone_wav
from tests.e2e.sipp_media import dominant_hz, read_wav, rms_db, write_tone
from tests.e2e.sipp_tools import recorder, run_sipp, sipp_call_id

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TONE_HZ = 440
REALM, USER, PASSWORD = "tandem-test", "sbc1", "tandem-test-secret"  # as in tests/sipp/plain_auth_call.xml
AUTH = {
    "TANDEM_SERVER_SIP_DIGEST_REALM": REALM,
    "TANDEM_SERVER_SIP_DIGEST_USERS": json.dumps({USER: PASSWORD}),
}


def test_sipp_authenticates_and_the_call_is_recorded(tmp_path: Path) -> None:
    with recorder(tmp_path / "server", **AUTH) as rec:
        work = tmp_path / "sipp"
        work.mkdir()
        write_tone(work / "stream1.ul", TONE_HZ, 20)
        result = run_sipp("plain_auth_call.xml", rec.server.sip_port, work, service=rec.dn, duration_ms=2000)
        result.check()
        challenge = result.received(401, "INVITE")
        assert len(challenge) == 1, result.describe()
        offered = challenge[0].header("WWW-Authenticate") or ""
        assert f'realm="{REALM}"' in offered and "algorithm=MD5" in offered and 'qop="auth"' in offered
        answered = result.sent("INVITE")[1].header("Authorization") or ""
        assert answered.startswith("Digest") and "qop=auth" in answered and "nc=00000001" in answered

        inter = rec.interaction(sipp_call_id(result) or "")
        voice = read_wav(rec.voice(inter, tmp_path / "voice.wav"))
        middle = voice.channel(0, 0.5, 1.5)
        assert rms_db(middle) > -20 and abs(dominant_hz(middle, 8000) - TONE_HZ) < 5

        stats = rec.admin.get("/api/admin/sip/stats").json()["sip"]
        assert stats["auth_challenges"] == 1 and stats["refused"] == {}, stats
        assert rec.admin.get("/api/admin/missed-calls").json()["items"] == []


def _baresip_call(server: Any, tmp_path: Path, password: str) -> dict[str, Any]:
    """One call from a baresip account that authenticates as USER; returns how it ended."""
    tmp_path.mkdir()
    tone = tmp_path / "tone.wav"
    write_tone_wav(tone, 1100.0, seconds=30)
    with run_baresip(tmp_path, tone, "Bob Baresip", "+15550777") as phone:
        # A second account, made at run time, carries the credentials (run_baresip's has none).
        phone.command("uanew", f'"SBC" <sip:{USER}@127.0.0.1>;auth_pass={password};regint=0')
        phone.command("uafind", f"sip:{USER}@127.0.0.1")
        phone.command("dial", f"sip:1001@127.0.0.1:{server.sip_port}")
        event = phone.wait_for(
            lambda m: m.get("event") is True and m.get("type") in ("CALL_ESTABLISHED", "CALL_CLOSED"), 15
        )
        if event["type"] == "CALL_ESTABLISHED":
            time.sleep(2.0)
            phone.command("hangup")
            phone.event("CALL_CLOSED", 10)
        return event


def test_baresip_authenticates_and_a_wrong_password_is_a_missed_call(tmp_path: Path) -> None:
    with run_server(tmp_path / "server", (), TANDEM_SERVER_SCREEN_PERCENTAGE="0", **AUTH) as server:
        server.token("agent1", client="desktop", dn="1001")
        good = _baresip_call(server, tmp_path / "good", PASSWORD)
        assert good["type"] == "CALL_ESTABLISHED", good
        bad = _baresip_call(server, tmp_path / "bad", "not-the-password")
        assert bad["type"] == "CALL_CLOSED", bad
        with server.client("admin") as admin:

            def stored() -> list[dict[str, Any]] | None:
                items = admin.get("/api/interactions").json()
                return items if items and "voice" in items[0]["media"] else None

            (inter,) = wait_until(stored, 20, "the authenticated call's voice file")
            assert inter["call_id"] == good["id"]

            def missed() -> list[dict[str, Any]]:
                return list(admin.get("/api/admin/missed-calls").json()["items"])

            (row,) = wait_until(missed, 20, "the refused call in missed calls")
            assert (row["reason"], row["status"], row["call_id"]) == ("auth-failed", 403, bad["id"]), row
            stats = admin.get("/api/admin/sip/stats").json()["sip"]
            assert stats["refused"] == {"auth-failed": 1} and stats["auth_challenges"] >= 2, stats
