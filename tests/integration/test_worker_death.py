"""Item 10: an RTP worker killed mid-call. The agent is told at once (voice FAILED on his channel
and in ``GET /api/agent/call``), the interaction stores ``voice_state=failed`` and the true end
reason ``rtp worker died`` — not "rtp timeout" a minute later — and the audio written before the
death is kept as the call's voice file once the caller hangs up."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from tests.integration.fault_server import (
    AGENT,
    call,
    login_agent,
    row,
    running_server,
    supervisor_headers,
    wait_for,
)
from tests.integration.siprec_peer import SrcPeer, tone

RTP_TIMEOUT = 60.0  # what the call was left to before: the test waits far less


def test_a_killed_worker_fails_the_voice_at_once_with_the_true_reason(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(data, rtp_workers=1, rtp_timeout_seconds=RTP_TIMEOUT) as (client, app):
        ctx = app.state.ctx
        token = login_agent(client)
        (agent_id,) = row(data / "tandem.db", "SELECT id FROM users WHERE username = ?", AGENT)
        channel = ctx.hub.subscribe(agent_id, "test")
        peer = SrcPeer(ctx.sip_port)
        try:
            dialog = call(peer)
            port = dialog.ports[0][0]
            stop = threading.Event()

            def send() -> None:  # a tone until the end of the test: the peer does not know
                while not stop.is_set():
                    peer.stream({port: (tone(440, 0.5), 0)})

            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            try:
                headers = {"Authorization": f"Bearer {token}"}
                wait_for(
                    lambda: (
                        (client.get("/api/agent/call", headers=headers).json() or {}).get("voice")
                        == "recording"
                    ),
                    10,
                    "the call to be recording",
                )
                iid = client.get("/api/agent/call", headers=headers).json()["interaction_id"]
                live_voice = app.state.ctx.settings.live_dir / iid / "voice.wav"
                wait_for(  # 1.6 s of 8 kHz 16-bit audio in the file before the death
                    lambda: live_voice.exists() and live_voice.stat().st_size >= 44 + 16000 * 1.6,
                    20,
                    "audio in the live file",
                )
                (pid,) = app.state.worker_pool.pids
                os.kill(pid, signal.SIGKILL)
                killed = time.monotonic()

                info = wait_for(
                    lambda: (
                        (i := client.get("/api/agent/call", headers=headers).json())
                        and i["voice"] == "failed"
                        and i
                    ),
                    15,  # far below the 60 s RTP timeout the call was left to before
                    "the agent's call to show voice FAILED",
                )
                assert time.monotonic() - killed < RTP_TIMEOUT / 2
                assert info["phase"] == "active", "the call itself goes on"
                events: list[tuple[str, object]] = []

                def failed_event() -> bool:
                    while not channel.queue.empty():
                        envelope = channel.queue.get_nowait()
                        if envelope is not None:
                            events.append((envelope.type, envelope.data.get("voice")))
                    return ("call.updated", "failed") in events

                wait_for(failed_event, 5, "voice FAILED published on the agent's channel")
                iid = info["interaction_id"]
                db = data / "tandem.db"
                stored = wait_for(  # the agent may see it a moment before the row is written
                    lambda: (
                        (
                            r := row(
                                db,
                                "SELECT voice_state, end_reason, state FROM interactions WHERE id = ?",
                                iid,
                            )
                        )
                        and r[0] == "failed"
                        and r
                    ),
                    10,
                    "voice_state failed stored",
                )
                assert stored == ("failed", "rtp worker died", "active")
                seen = client.get(f"/api/interactions/{iid}", headers=supervisor_headers(client)).json()
                assert (seen["voice_state"], seen["end_reason"]) == ("failed", "rtp worker died"), seen
                failed = wait_for(
                    lambda: row(
                        db,
                        "SELECT outcome, detail FROM audit_log"
                        " WHERE action = 'recording.failed' AND target_id = ?",
                        iid,
                    ),
                    10,
                    "the failure's audit record",
                )
                assert failed[0] == "failed" and "rtp worker died" in failed[1]
            finally:
                stop.set()
                sender.join(10)
            assert peer.bye(dialog).status == 200
            # After the BYE: the call ends as usual, the failure stays its stored reason, and the
            # voice written before the death is kept.
            stored = wait_for(
                lambda: row(
                    db,
                    "SELECT i.state, i.end_reason, i.voice_state, m.duration FROM interactions i "
                    "JOIN media_files m ON m.interaction_id = i.id AND m.kind = 'voice' WHERE i.id = ?",
                    iid,
                ),
                30,
                "the voice file stored",
            )
            assert stored[0] in ("acw", "done") and stored[1:3] == ("rtp worker died", "failed")
            assert stored[3] is not None and stored[3] >= 1.0, stored
        finally:
            peer.close()
            ctx.hub.unsubscribe(channel)
