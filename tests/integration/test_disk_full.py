"""Item 11: the disk fills up. Before it is full (below ``min_free_bytes``) new calls are refused
with SIP 503 + Retry-After, ``/healthz`` answers 503 ``degraded`` with the readings, and admins
find a ``server.disk_low`` audit record; once space is back calls are accepted again. A call whose
voice write hits ENOSPC leaves ``recording``: voice FAILED, end reason ``disk full``, its file
finalised with what was written, the dialog kept until the caller's BYE.

The real full disk is a small tmpfs mounted as the data directory (root only: skipped with the
reason otherwise); the same ENOSPC is also injected at the writer, which runs anywhere.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import threading
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.errors import WavWriterError
from server.voice.wav_writer import WavWriter
from tests.integration.fault_server import (
    call,
    login_agent,
    plain_offer,
    row,
    running_server,
    streaming,
    wait_for,
)
from tests.integration.siprec_peer import SrcPeer

MIB = 1024**2


@contextlib.contextmanager
def tmpfs(path: Path, options: str = "size=8m") -> Iterator[Path]:
    path.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs for a real full disk ({done.stderr.strip()}); "
            "the ENOSPC-injection test covers the writer path"
        )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path, leave: int = 0) -> Path:
    """Write a ballast file until the disk has about ``leave`` bytes free (0: until ENOSPC)."""
    ballast = directory / "ballast"
    with open(ballast, "wb") as out:
        block = b"\xa5" * (64 * 1024)
        try:
            while True:
                st = os.statvfs(directory)
                free = st.f_bavail * st.f_frsize
                if leave and free - len(block) < leave:
                    break
                out.write(block)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return ballast


def invite(peer: SrcPeer) -> Any:
    return peer.invite(plain_offer(peer.rtp.getsockname()[1]), dn="1001", siprec=False).responses[-1]


def settings_for(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """The database and finished recordings elsewhere: only the live voice files fill the disk."""
    return {
        "database_url": f"sqlite:///{tmp_path / 'tandem.db'}",
        "storage_dir": tmp_path / "storage",
        "min_free_percent": 0,
        "disk_check_seconds": 0.2,
        **extra,
    }


def test_low_disk_refuses_new_calls_reports_and_recovers(tmp_path: Path) -> None:
    settings = {"min_free_bytes": 4 * MIB}
    with (
        tmpfs(tmp_path / "data") as mounted,
        running_server(mounted, **settings_for(tmp_path, **settings)) as (
            client,
            app,
        ),
    ):
        login_agent(client)
        peer = SrcPeer(app.state.ctx.sip_port)
        try:
            assert client.get("/healthz").status_code == 200
            ballast = fill(mounted, leave=2 * MIB)  # below the 4 MiB threshold, far from full
            health = wait_for(lambda: (r := client.get("/healthz")).status_code == 503 and r, 10, "degraded")
            body = health.json()
            assert body["status"] == "degraded" and body["disk"]["ok"] is False
            assert str(mounted) in body["disk"]["problem"]
            refused = invite(peer)
            assert refused.status == 503 and int(refused.get("retry-after") or 0) > 0
            audit = wait_for(
                lambda: row(
                    tmp_path / "tandem.db",
                    "SELECT outcome, detail FROM audit_log WHERE action = 'server.disk_low'",
                ),
                10,
                "the disk-low audit record",
            )
            assert audit[0] == "failed" and str(mounted) in audit[1]
            ballast.unlink()
            wait_for(lambda: client.get("/healthz").status_code == 200, 10, "healthy again")
            accepted = invite(peer)
            assert accepted.status == 200
        finally:
            peer.close()


def assert_disk_full_call(
    client: Any, app: Any, tmp_path: Path, peer: SrcPeer, fill_disk: Any, *, really_full: bool
) -> None:
    token = login_agent(client)
    headers = {"Authorization": f"Bearer {token}"}
    dialog = call(peer)
    with streaming(peer, dialog):
        wait_for(
            lambda: (client.get("/api/agent/call", headers=headers).json() or {}).get("voice") == "recording",
            10,
            "recording",
        )
        info = client.get("/api/agent/call", headers=headers).json()
        iid = info["interaction_id"]
        voice = app.state.ctx.settings.live_dir / iid / "voice.wav"
        wait_for(lambda: voice.exists() and voice.stat().st_size > 8000, 10, "audio in the live file")
        fill_disk()
        info = wait_for(
            lambda: (
                (i := client.get("/api/agent/call", headers=headers).json()) and i["voice"] == "failed" and i
            ),
            15,
            "voice FAILED on a full disk",
        )
        assert info["phase"] == "active", "the dialog is kept until the caller hangs up"
        db = tmp_path / "tandem.db"
        stored = wait_for(
            lambda: (
                (r := row(db, "SELECT voice_state, end_reason, state FROM interactions WHERE id = ?", iid))
                and r[0] == "failed"
                and r
            ),
            10,
            "the failure stored",
        )
        assert stored == ("failed", "disk full", "active")
        # Finalised (the failure closed it) with what was written before the disk was full.
        with wave.open(str(voice), "rb") as wav:
            assert wav.getnframes() >= wav.getframerate() // 2
        if really_full:  # (an injected ENOSPC is forgotten at the next check, which sees space)
            health = client.get("/healthz")
            assert health.status_code == 503 and health.json()["status"] == "degraded"
    assert peer.bye(dialog).status == 200
    final = wait_for(
        lambda: (
            (r := row(db, "SELECT state, end_reason, voice_state FROM interactions WHERE id = ?", iid))
            and r[0] in ("acw", "done")
            and r
        ),
        10,
        "the call's end",
    )
    assert final[1:] == ("disk full", "failed")


def test_a_real_full_disk_fails_the_call_cleanly(tmp_path: Path) -> None:
    with (
        tmpfs(tmp_path / "data") as mounted,
        running_server(mounted, **settings_for(tmp_path, min_free_bytes=0, rtp_workers=1)) as (client, app),
    ):
        peer = SrcPeer(app.state.ctx.sip_port)
        try:
            assert_disk_full_call(client, app, tmp_path, peer, lambda: fill(mounted), really_full=True)
        finally:
            peer.close()


def test_enospc_injected_at_the_writer_fails_the_call_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = threading.Event()
    original = WavWriter.write

    def write(self: WavWriter, samples: Any) -> None:
        if full.is_set():
            raise WavWriterError(
                f"cannot write voice file {self.path}: [Errno 28] {os.strerror(errno.ENOSPC)}"
            )
        original(self, samples)

    monkeypatch.setattr(WavWriter, "write", write)
    data = tmp_path / "data"
    # In-process media (rtp_workers=0): the patched writer is the one that records.
    with running_server(data, **settings_for(tmp_path, min_free_bytes=0, rtp_workers=0)) as (client, app):
        peer = SrcPeer(app.state.ctx.sip_port)
        try:
            assert_disk_full_call(client, app, tmp_path, peer, full.set, really_full=False)
        finally:
            peer.close()


def test_no_inode_left_refuses_calls_with_503_not_500(tmp_path: Path) -> None:
    # The periodic check is slowed to once an hour: the call's own directory meets the full disk.
    settings = settings_for(tmp_path, min_free_bytes=0, disk_check_seconds=3600)
    with (
        tmpfs(tmp_path / "data", "size=8m,nr_inodes=64") as mounted,
        running_server(mounted, **settings) as (
            client,
            app,
        ),
    ):
        login_agent(client)
        peer = SrcPeer(app.state.ctx.sip_port)
        try:
            assert client.get("/healthz").status_code == 200
            (mounted / "fill").mkdir()
            with pytest.raises(OSError) as exhausted:  # bytes to spare, but no inode left
                for n in range(10_000):
                    (mounted / "fill" / str(n)).touch()
            assert exhausted.value.errno == errno.ENOSPC
            refused = invite(peer)
            assert (refused.status, refused.reason) == (503, "Recorder Disk Full")
            assert int(refused.get("retry-after") or 0) > 0
            health = client.get("/healthz")
            assert health.status_code == 503 and "disk full" in health.json()["disk"]["problem"]
            # The guard's own reading sees the missing inodes too, whatever the byte threshold.
            status = app.state.ctx.coordinator.disk.check()
            assert not status.ok and "no free inodes" in status.problem
        finally:
            peer.close()
