"""Item 12, with real server processes: one server per data directory (a second one exits at once
and touches nothing), a graceful restart drains the calls in progress, and after kill -9 the
interrupted call ends at its last audio and the caller's late BYE is answered."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import ROOT, ServerProcess, run_server, server_env, tandem_server, wait_until
from tests.integration.fault_server import call, plain_offer, streaming
from tests.integration.siprec_peer import Dialog, SrcPeer
from tests.ports import claim_block, server_ports

pytestmark = pytest.mark.e2e
DN = "1001"


def query(data: Path, sql: str, *args: Any) -> Any:
    with contextlib.closing(sqlite3.connect(data / "tandem.db", timeout=30)) as conn:
        return conn.execute(sql, args).fetchone()


def interaction(data: Path, call_id: str) -> Any:
    return query(
        data,
        "SELECT id, state, end_reason, answered_at, ended_at FROM interactions WHERE call_id = ?",
        call_id,
    )


def agent_call(server: ServerProcess) -> tuple[SrcPeer, Dialog]:
    server.token("agent1", client="desktop", dn=DN)
    peer = SrcPeer(server.sip_port)
    return peer, call(peer)


def test_a_second_server_on_the_same_data_dir_exits_and_touches_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with run_server(data) as first:
        peer, dialog = agent_call(first)
        try:
            with streaming(peer, dialog):
                row = wait_until(lambda: interaction(data, dialog.call_id), 10, "the interaction")
                wait_until(lambda: interaction(data, dialog.call_id)[1] == "active", 10, "an active call")
                voice = data / "live" / row[0] / "voice.wav"
                assert voice.exists()
                block = claim_block()
                try:
                    env = server_env(data, server_ports(block))
                    second = subprocess.Popen(
                        tandem_server("run"),
                        env=env,
                        cwd=ROOT,
                        stderr=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                    )
                    try:
                        _, err = second.communicate(timeout=60)
                    finally:
                        if second.poll() is None:
                            second.kill()
                            second.wait()
                finally:
                    block.release()
                assert second.returncode == 1, err.decode(errors="replace")
                expected = f"data directory {data.resolve()} is in use by server pid {first.proc.pid}"
                assert expected in err.decode(), err.decode()
                # The first server's call is untouched: still active, its audio still being written.
                assert interaction(data, dialog.call_id)[1] == "active"
                size = voice.stat().st_size
                wait_until(lambda: voice.stat().st_size > size, 10, "the live voice file to grow")
            assert peer.bye(dialog).status == 200
            ended = wait_until(
                lambda: (r := interaction(data, dialog.call_id)) and r[1] in ("acw", "done") and r, 10, "end"
            )
            assert ended[2] == "bye"
        finally:
            peer.close()


def invite_status(server: ServerProcess) -> tuple[int, str | None]:
    """The final status (and Retry-After) of a new INVITE for the agent's DN."""
    peer = SrcPeer(server.sip_port)
    try:
        final = peer.invite(plain_offer(peer.rtp.getsockname()[1]), dn=DN, siprec=False).responses[-1]
        return final.status, final.get("retry-after")
    finally:
        peer.close()


def test_sigterm_drains_calls_in_progress_and_refuses_new_ones(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with run_server(data, TANDEM_SERVER_DRAIN_SECONDS="120") as server:
        peer, dialog = agent_call(server)
        try:
            with streaming(peer, dialog):
                wait_until(lambda: interaction(data, dialog.call_id)[1] == "active", 10, "an active call")
                server.proc.send_signal(signal.SIGTERM)
                # New calls are refused with 503 + Retry-After while the running one goes on.
                _status, retry_after = wait_until(
                    lambda: (s := invite_status(server))[0] == 503 and s, 20, "a 503 to a new INVITE"
                )
                assert retry_after is not None and int(retry_after) > 0
                health = httpx.get(f"{server.url}/healthz", timeout=5)
                assert health.status_code == 503 and health.json()["status"] == "draining"
                assert server.proc.poll() is None, "the server must wait for the call in progress"
                assert interaction(data, dialog.call_id)[1] == "active"
            assert peer.bye(dialog).status == 200
            # The last call ended: the server exits by itself, long before the 120 s drain limit.
            server.proc.wait(timeout=60)
        finally:
            peer.close()
        row = interaction(data, dialog.call_id)
        assert row[1] in ("acw", "done") and row[2] == "bye", row


def test_after_kill_9_the_end_is_the_last_audio_and_a_late_bye_is_answered(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with run_server(data) as server:
        peer, dialog = agent_call(server)
        with streaming(peer, dialog):
            wait_until(lambda: interaction(data, dialog.call_id)[1] == "active", 10, "an active call")
            time.sleep(2.0)  # audio in the file
            server.proc.send_signal(signal.SIGKILL)
            killed = time.time()
            server.proc.wait(10)
    try:
        with run_server(data) as again:  # the restart takes seconds: the old end was its time
            row = wait_until(
                lambda: (r := interaction(data, dialog.call_id)) and r[1] == "interrupted" and r,
                30,
                "the call marked interrupted",
            )
            _, _, reason, answered_at, ended_at = row
            assert reason == "server stopped mid-call"
            assert answered_at + 1.5 < ended_at <= killed + 0.75, (answered_at, ended_at, killed)
            # The caller hangs up after the restart: answered, and the stored end stays put.
            peer.server = ("127.0.0.1", again.sip_port)
            assert peer.bye(dialog).status == 200
            assert interaction(data, dialog.call_id)[4] == ended_at
            # A BYE for a dialog nobody knows still gets 481.
            stranger = Dialog("no-such-call", "x", f"<sip:{DN}@127.0.0.1>;tag=y", 1, {}, b"", "", 200)
            assert peer.bye(stranger).status == 481
    finally:
        peer.close()
