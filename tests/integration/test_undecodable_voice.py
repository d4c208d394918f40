"""Issue 11 item 3: a stream whose packets cannot be decoded is a visible failure, never a silent
file with SIP success. The SRC negotiates PCMU, then sends only G.729 (PT 18): after
``UNDECODABLE_SECONDS`` the interaction's voice is FAILED with the reason ``voice undecodable``,
the agent sees it on the call, and an audit record names the payload type. The stats cross an RTP
worker process, as in production."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.integration.fault_server import call, login_agent, row, running_server, wait_for
from tests.integration.siprec_peer import SrcPeer, tone


def test_only_undecodable_packets_fail_the_voice_visibly(tmp_path: Path) -> None:
    settings = {
        "database_url": f"sqlite:///{tmp_path / 'tandem.db'}",
        "storage_dir": tmp_path / "storage",
        "rtp_workers": 1,
    }
    with running_server(tmp_path / "data", **settings) as (client, app):
        headers = {"Authorization": f"Bearer {login_agent(client)}"}
        peer = SrcPeer(app.state.ctx.sip_port)
        stop = threading.Event()
        try:
            dialog = call(peer)
            port = dialog.ports[0][0]

            def send() -> None:
                while not stop.is_set():
                    peer.stream({port: (tone(440, 0.2), 18)})  # G.729's payload type: never answered

            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            info = wait_for(
                lambda: (
                    (i := client.get("/api/agent/call", headers=headers).json())
                    and i["voice"] == "failed"
                    and i
                ),
                20,
                "voice FAILED for undecodable audio (was: 'recording' with a silent file)",
            )
            assert info["phase"] == "active", "the dialog is kept until the caller hangs up"
            iid = info["interaction_id"]
            db = tmp_path / "tandem.db"
            stored = wait_for(
                lambda: (
                    (r := row(db, "SELECT voice_state, end_reason FROM interactions WHERE id = ?", iid))
                    and r[0] == "failed"
                    and r
                ),
                10,
                "the failure stored",
            )
            assert stored == ("failed", "voice undecodable")
            audit = wait_for(
                lambda: row(
                    db,
                    "SELECT outcome, detail FROM audit_log"
                    " WHERE action = 'recording.failed' AND target_id = ?",
                    iid,
                ),
                10,
                "the audit record",
            )
            assert audit[0] == "failed" and "payload type 18" in audit[1]
            stop.set()
            sender.join(10)
            assert peer.bye(dialog).status == 200
        finally:
            stop.set()
            peer.close()
