"""The shared setup of the undecodable-voice tests (tests/integration/test_undecodable_voice.py,
test_srtp_wrong_key_voice.py): a server with one RTP worker process and the agent logged in on the
desktop, a SIP peer that keeps sending what the server cannot decode, and the wait for the visible
failure — the agent's call shows voice FAILED, the interaction stores ``voice undecodable`` and an
audit record ``recording.failed`` says why."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.integration.fault_server import login_agent, row, running_server, wait_for
from tests.integration.siprec_peer import Dialog, SrcPeer


@dataclass
class VoiceWorld:
    client: TestClient
    app: Any
    headers: dict[str, str]  # the agent's desktop session
    peer: SrcPeer
    db: Path
    stop: threading.Event = field(default_factory=threading.Event)
    sender: threading.Thread | None = None

    def keep_sending(self, send: Callable[[int], None]) -> None:
        """Call ``send(n)`` for n = 0, 1, … on a thread of its own until the call is hung up."""

        def loop() -> None:
            n = 0
            while not self.stop.is_set():
                send(n)
                n += 1

        self.sender = threading.Thread(target=loop, daemon=True)
        self.sender.start()

    def wait_voice_failed(self, what: str) -> tuple[dict[str, Any], tuple[str, str]]:
        """The agent's call once its voice is FAILED (``what`` names the wait), after the failure
        is stored as ``voice undecodable``; and the audit record's (outcome, detail)."""
        info: dict[str, Any] = wait_for(
            lambda: (
                (i := self.client.get("/api/agent/call", headers=self.headers).json())
                and i["voice"] == "failed"
                and i
            ),
            20,
            what,
        )
        iid = info["interaction_id"]
        stored = wait_for(
            lambda: (
                (r := row(self.db, "SELECT voice_state, end_reason FROM interactions WHERE id = ?", iid))
                and r[0] == "failed"
                and r
            ),
            10,
            "the failure stored",
        )
        assert stored == ("failed", "voice undecodable")
        audit = wait_for(
            lambda: row(
                self.db,
                "SELECT outcome, detail FROM audit_log WHERE action = 'recording.failed' AND target_id = ?",
                iid,
            ),
            10,
            "the audit record",
        )
        return info, audit

    def hang_up(self, dialog: Dialog) -> None:
        """Stop sending, then BYE: the dialog was kept up through the failure."""
        self.stop.set()
        if self.sender is not None:
            self.sender.join(10)
        assert self.peer.bye(dialog).status == 200


@contextlib.contextmanager
def voice_world(tmp_path: Path) -> Iterator[VoiceWorld]:
    """A server whose calls' stats cross one RTP worker process, as in production."""
    settings = {
        "database_url": f"sqlite:///{tmp_path / 'tandem.db'}",
        "storage_dir": tmp_path / "storage",
        "rtp_workers": 1,
    }
    with running_server(tmp_path / "data", **settings) as (client, app):
        headers = {"Authorization": f"Bearer {login_agent(client)}"}
        world = VoiceWorld(client, app, headers, SrcPeer(app.state.ctx.sip_port), tmp_path / "tandem.db")
        try:
            yield world
        finally:
            world.stop.set()
            world.peer.close()
