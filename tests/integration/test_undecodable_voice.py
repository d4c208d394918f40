"""Issue 11 item 3: a stream whose packets cannot be decoded is a visible failure, never a silent
file with SIP success. The SRC negotiates PCMU, then sends only G.729 (PT 18): after
``UNDECODABLE_SECONDS`` the interaction's voice is FAILED with the reason ``voice undecodable``,
the agent sees it on the call, and an audit record names the payload type. The stats cross an RTP
worker process, as in production."""

from __future__ import annotations

from pathlib import Path

from tests.integration.fault_server import call
from tests.integration.siprec_peer import tone
from tests.integration.undecodable_world import voice_world


def test_only_undecodable_packets_fail_the_voice_visibly(tmp_path: Path) -> None:
    with voice_world(tmp_path) as world:
        dialog = call(world.peer)
        port = dialog.ports[0][0]
        # G.729's payload type: never answered
        world.keep_sending(lambda _n: world.peer.stream({port: (tone(440, 0.2), 18)}))
        info, audit = world.wait_voice_failed(
            "voice FAILED for undecodable audio (was: 'recording' with a silent file)"
        )
        assert info["phase"] == "active", "the dialog is kept until the caller hangs up"
        assert audit[0] == "failed" and "payload type 18" in audit[1]
        world.hang_up(dialog)
