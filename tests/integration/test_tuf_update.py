"""Auto-update end to end (issue 15 item 5): a real TUF repository made by the server's release
service (python-tuf's metadata API, Ed25519 keys), served over HTTP; the recorder's client
refreshes it, downloads and verifies release 2, and installs it beside release 1 only when no call
is in progress. A tampered bundle, stale (expired) or replayed metadata are refused and release 1
stays current; a release that does not report healthy is rolled back.

The "bundles" are tiny: a directory with an executable script that writes the health file (the
real PyInstaller bundle is built by installers/build)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import http.server
import io
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select

from recorder_service.controller import Mode
from recorder_service.updater.activity import CallWatch, activity_of
from recorder_service.updater.apply import (
    apply_release,
    current_version,
    failed_versions,
    switch_current,
    unpack,
)
from recorder_service.updater.cycle import CheckResult, check_and_apply
from recorder_service.updater.policy import Activity, UpdateSettings
from recorder_service.updater.runner import UpdateRunner, report_health
from recorder_service.updater.tuf_client import ReleaseClient, UpdateRefused
from server.api.app import create_app
from server.cli import main as cli_main
from server.services.releases import ReleaseError, ReleaseRepository, init_keys
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user
from tandem_protocol.events import CallInfo, Envelope, EventType, Phase, ScreenState, VoiceState

IDLE = Activity("idle", in_call=False, pending_segments=0, uploading=False)
IN_CALL = Activity("capturing", in_call=True, pending_segments=0, uploading=False)
ENTRY = ["tandem-recorder/run"]


def make_bundle(tmp: Path, version: str, *, healthy: bool = True) -> Path:
    """A release archive: ``tandem-recorder/run`` reports healthy (then keeps running, as the
    recorder does) or exits 3 without a report."""
    if healthy:
        report = f'{{"version": "{version}", "healthy": true}}'
        script = f"#!/bin/sh\nprintf '%s' '{report}' > \"$TANDEM_UPDATE_HEALTH_FILE\"\nexec sleep 300\n"
    else:
        script = "#!/bin/sh\necho 'cannot start: missing library' >&2\nexit 3\n"
    archive = tmp / f"bundle-{version}{'' if healthy else '-broken'}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data, mode in [
            ("tandem-recorder/run", script.encode(), 0o755),
            ("tandem-recorder/VERSION", f"{version}\n".encode(), 0o644),
        ]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return archive


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        logging.getLogger("static-http").debug(format, *args)


@dataclass
class World:
    tmp: Path
    keys: Path
    repo: ReleaseRepository
    url: str
    install: Path

    def client(self) -> ReleaseClient:
        return ReleaseClient(self.tmp / "client-cache", self.url, self.repo.root_json())


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    keys = tmp_path / "keys"
    init_keys(keys)
    repo = ReleaseRepository(tmp_path / "releases")
    repo.create(keys)
    repo.add_release(keys, "0.1.0", make_bundle(tmp_path, "0.1.0"), 100)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(repo.root_dir))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    install = tmp_path / "opt-tandem"
    unpack(install, "0.1.0", make_bundle(tmp_path, "0.1.0"))  # release 1, as the package installed it
    switch_current(install, "0.1.0")
    try:
        yield World(tmp_path, keys, repo, f"http://127.0.0.1:{server.server_address[1]}", install)
    finally:
        server.shutdown()
        server.server_close()


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        process.wait(timeout=30)


def test_release_2_is_offered_verified_and_applied_only_after_the_call_ends(world: World) -> None:
    world.repo.add_release(world.keys, "0.2.0", make_bundle(world.tmp, "0.2.0"), 100)
    client = world.client()
    activity = [IN_CALL]

    def check() -> object:
        return check_and_apply(
            client, root=world.install, current=current_version(world.install) or "", device_id="pc-1",
            settings=UpdateSettings(), activity=lambda: activity[0], entry=ENTRY, health_timeout=60,
        )  # fmt: skip

    during = check()
    assert during.state == "waiting", during  # type: ignore[attr-defined]
    assert "call or its after-call work" in during.reason or "capturing" in during.reason  # type: ignore[attr-defined]
    assert current_version(world.install) == "0.1.0"
    activity[0] = IDLE  # the call and its ACW ended, the spool is empty
    result = check_and_apply(
        client, root=world.install, current="0.1.0", device_id="pc-1", settings=UpdateSettings(),
        activity=lambda: IDLE, entry=ENTRY, health_timeout=60,
    )  # fmt: skip
    try:
        assert result.state == "applied", result.reason
        assert current_version(world.install) == "0.2.0"
        assert (world.install / "current" / "tandem-recorder" / "VERSION").read_text() == "0.2.0\n"
        assert (world.install / "versions" / "0.1.0").is_dir()  # release 1 kept for a rollback
        assert result.applied is not None and result.applied.process is not None
        assert result.applied.process.poll() is None  # release 2 runs
    finally:
        _stop(result.applied.process if result.applied else None)
    again = check_and_apply(
        client, root=world.install, current="0.2.0", device_id="pc-1", settings=UpdateSettings(),
        activity=lambda: IDLE, entry=ENTRY,
    )  # fmt: skip
    assert again.state == "up_to_date"


def test_staged_rollout_and_policy_off_leave_release_1(world: World) -> None:
    world.repo.add_release(world.keys, "0.2.0", make_bundle(world.tmp, "0.2.0"), 0)  # offered to nobody yet
    client = world.client()
    offers = client.offers()
    assert {(o.version, o.rollout_percent) for o in offers} == {("0.1.0", 100), ("0.2.0", 0)}
    kw = dict(root=world.install, current="0.1.0", device_id="pc-1", activity=lambda: IDLE, entry=ENTRY)
    assert check_and_apply(client, settings=UpdateSettings(), **kw).state == "up_to_date"  # type: ignore[arg-type]
    off = check_and_apply(client, settings=UpdateSettings(enabled=False, source="HKLM"), **kw)  # type: ignore[arg-type]
    assert off.state == "off" and "HKLM" in off.reason
    assert current_version(world.install) == "0.1.0"


def test_tampered_bundle_is_refused_and_release_1_stays(world: World) -> None:
    release = world.repo.add_release(world.keys, "0.2.0", make_bundle(world.tmp, "0.2.0"), 100)
    stored = world.repo.targets_dir / f"{release.sha256}.{release.target}"
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same length, one byte changed
    stored.write_bytes(bytes(data))
    client = world.client()
    with pytest.raises(UpdateRefused, match="LengthOrHashMismatch"):
        client.download("0.2.0")
    assert not list(client.download_dir.glob("*.tar.gz"))  # nothing unverified left to install
    result = check_and_apply(
        client, root=world.install, current="0.1.0", device_id="pc-1", settings=UpdateSettings(),
        activity=lambda: IDLE, entry=ENTRY,
    )  # fmt: skip
    assert result.state == "refused" and "0.1.0 keeps running" in result.reason
    assert current_version(world.install) == "0.1.0"
    assert not (world.install / "versions" / "0.2.0").exists()


def test_expired_timestamp_is_refused(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    init_keys(keys)
    repo = ReleaseRepository(tmp_path / "releases")
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    repo.create(keys, now=two_days_ago)  # the timestamp (1 day) has expired; the root (1 year) has not
    repo.add_release(keys, "0.2.0", make_bundle(tmp_path, "0.2.0"), 100, now=two_days_ago)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(repo.root_dir))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = ReleaseClient(
            tmp_path / "cache", f"http://127.0.0.1:{server.server_address[1]}", repo.root_json()
        )
        with pytest.raises(UpdateRefused, match="ExpiredMetadataError"):
            client.offers()
        repo.refresh_timestamp(keys)  # the server's daily re-signing makes it fresh again
        assert [o.version for o in client.offers()] == ["0.2.0"]
    finally:
        server.shutdown()
        server.server_close()


def test_replayed_older_metadata_is_refused(world: World) -> None:
    old_timestamp = (world.repo.metadata_dir / "timestamp.json").read_bytes()
    world.repo.add_release(world.keys, "0.2.0", make_bundle(world.tmp, "0.2.0"), 100)
    client = world.client()
    assert "0.2.0" in {o.version for o in client.offers()}
    # a mirror or man in the middle serves yesterday's (validly signed) repository to hide 0.2.0
    (world.repo.metadata_dir / "timestamp.json").write_bytes(old_timestamp)
    with pytest.raises(UpdateRefused, match="BadVersionNumberError"):
        client.offers()


def test_release_that_fails_its_health_check_is_rolled_back(world: World) -> None:
    broken = make_bundle(world.tmp, "0.2.0", healthy=False)
    applied = apply_release(world.install, "0.2.0", broken, ENTRY, health_timeout=60)
    assert not applied.healthy
    assert "exited with code 3" in applied.reason and "rolled back to 0.1.0" in applied.reason
    assert current_version(world.install) == "0.1.0"
    assert failed_versions(world.install) == {"0.2.0"}
    # and the cycle does not try the failed version again
    world.repo.add_release(world.keys, "0.2.0", broken, 100)
    result = check_and_apply(
        world.client(), root=world.install, current="0.1.0", device_id="pc-1", settings=UpdateSettings(),
        activity=lambda: IDLE, entry=ENTRY,
    )  # fmt: skip
    assert result.state == "up_to_date"


def test_release_that_never_reports_is_rolled_back_at_the_deadline(world: World) -> None:
    silent = world.tmp / "silent.tar.gz"
    with tarfile.open(silent, "w:gz") as tar:
        data = b"#!/bin/sh\nexec sleep 300\n"
        info = tarfile.TarInfo("tandem-recorder/run")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    ticks = iter(range(0, 10_000, 10))  # a fake clock: 10 s per poll, so the deadline passes at once
    applied = apply_release(
        world.install, "0.3.0", silent, ENTRY, health_timeout=30, clock=lambda: float(next(ticks))
    )
    assert not applied.healthy and "did not report healthy within 30 s" in applied.reason
    assert current_version(world.install) == "0.1.0"


def test_release_errors_are_clear(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    init_keys(keys)
    assert {p.name for p in keys.iterdir()} == {"root.pem", "targets.pem", "snapshot.pem", "timestamp.pem"}
    assert all(os.stat(p).st_mode & 0o077 == 0 for p in keys.iterdir())
    with pytest.raises(ReleaseError, match="refusing to replace a signing key"):
        init_keys(keys)
    repo = ReleaseRepository(tmp_path / "releases")
    repo.create(keys)
    bundle = make_bundle(tmp_path, "0.2.0")
    repo.add_release(keys, "0.2.0", bundle, 10)
    repo.add_release(keys, "0.2.0", bundle, 50)  # widening the rollout re-signs, same bytes
    assert [(r.version, r.rollout_percent) for r in repo.releases()] == [("0.2.0", 50)]
    with pytest.raises(ReleaseError, match="already published with other bytes"):
        repo.add_release(keys, "0.2.0", make_bundle(tmp_path, "0.2.0", healthy=False), 50)
    with pytest.raises(ReleaseError, match=r"rollout percentage must be 0\.\.100"):
        repo.add_release(keys, "0.3.0", bundle, 101)
    with pytest.raises(ReleaseError, match="not a release version"):
        repo.add_release(keys, "../0.3.0", bundle, 10)
    shutil.rmtree(keys)
    with pytest.raises(ReleaseError, match="no targets signing key"):
        repo.add_release(keys, "0.3.0", bundle, 10)


# -- through the real server: the admin publishes over the API, the recorder updates from it --------
class LiveServer:
    def __init__(self, app: FastAPI) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def test_admin_publishes_through_the_server_and_the_recorder_updates_from_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, keys = tmp_path / "data", tmp_path / "admin-keys"
    assert cli_main(["--data-dir", str(data), "releases", "init-keys", str(keys)]) == 0
    assert cli_main(["--data-dir", str(data), "releases", "init-repo", "--keys", str(keys)]) == 0
    assert cli_main(["--data-dir", str(data), "releases", "init-keys", str(keys)]) == 1
    assert "refusing to replace a signing key" in capsys.readouterr().err
    app = create_app(load_settings(None, data_dir=data, sip_enabled=False, release_keys_dir=keys))
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "sup", PASSWORD, "supervisor")
    install = tmp_path / "opt-tandem"
    unpack(install, "0.1.0", make_bundle(tmp_path, "0.1.0"))
    switch_current(install, "0.1.0")
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        admin, sup = bearer(http, "admin"), bearer(http, "sup")
        bundle = make_bundle(tmp_path, "0.2.0").read_bytes()
        refused = http.put(
            "/api/admin/releases/0.2.0", params={"rollout_percent": 100}, content=bundle, headers=sup
        )
        assert refused.status_code == 403, refused.text
        r = http.put(
            "/api/admin/releases/0.2.0", params={"rollout_percent": 0}, content=bundle, headers=admin
        )
        assert r.status_code == 200, r.text
        bad = http.put(
            "/api/admin/releases/0.2.0", params={"rollout_percent": 0}, content=b"other bytes", headers=admin
        )
        assert bad.status_code == 422 and "already published with other bytes" in bad.text
        assert http.get("/api/releases/tuf/metadata/..%2Fkeys").status_code == 404

        root = http.get("/api/releases/tuf/metadata/1.root.json").content  # shipped with the package
        client = ReleaseClient(tmp_path / "cache", f"{url}/api/releases/tuf", root)
        kw: dict[str, Any] = dict(
            root=install, current="0.1.0", device_id="pc-1", settings=UpdateSettings(), entry=ENTRY
        )
        assert check_and_apply(client, activity=lambda: IDLE, **kw).state == "up_to_date"  # offered to 0 %
        r = http.patch("/api/admin/releases/0.2.0", json={"rollout_percent": 100}, headers=admin)
        assert r.status_code == 200 and r.json()["rollout_percent"] == 100, r.text
        assert check_and_apply(client, activity=lambda: IN_CALL, **kw).state == "waiting"
        assert current_version(install) == "0.1.0"
        result = check_and_apply(client, activity=lambda: IDLE, **kw)
        try:
            assert result.state == "applied", result.reason
            assert current_version(install) == "0.2.0"
        finally:
            _stop(result.applied.process if result.applied else None)
        listed = http.get("/api/admin/releases", headers=admin).json()["releases"]
        assert [(x["version"], x["rollout_percent"]) for x in listed] == [("0.2.0", 100)]
        wide = http.patch("/api/admin/releases/0.2.0", json={"rollout_percent": 101}, headers=admin)
        assert wide.status_code == 422 and "0..100" in wide.text
    bundle3 = make_bundle(tmp_path, "0.3.0")
    argv = [
        "--data-dir",
        str(data),
        "releases",
        "add",
        "--version",
        "0.3.0",
        "--bundle",
        str(bundle3),
        "--keys",
        str(keys),
    ]
    assert cli_main([*argv, "--percent", "5"]) == 0
    assert cli_main(["--data-dir", str(data), "releases", "list"]) == 0
    assert "0.3.0\t5%" in capsys.readouterr().out
    with session_scope(app.state.ctx.sessions) as s:
        rows = s.scalars(
            select(models.AuditRecord).where(models.AuditRecord.action == "release.publish")
        ).all()
        outcomes = sorted((row.username, row.outcome) for row in rows)
    assert outcomes == [
        ("admin", "allowed"),
        ("admin", "allowed"),
        ("admin", "denied"),
        ("admin", "denied"),
        ("cli", "allowed"),
        ("sup", "denied"),
    ]


PASSWORD = "correct-horse-battery"


def bearer(http: httpx.Client, user: str) -> dict[str, str]:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


# -- inside the running recorder --------------------------------------------------------------------
def test_the_runner_waits_for_the_call_to_end_then_hands_over(world: World) -> None:
    world.repo.add_release(world.keys, "0.2.0", make_bundle(world.tmp, "0.2.0"), 100)
    calls = CallWatch()
    calls.observe(Envelope(EventType.CALL_STARTED, _call("i1", Phase.ACTIVE)))
    controller = SimpleNamespace(mode=Mode.IDLE)  # not sampled: no capture, but a call all the same
    uploader = SimpleNamespace(stats=lambda: SimpleNamespace(state="idle", pending_segments=0, current=None))
    handed_over: list[CheckResult] = []
    runner = UpdateRunner(
        world.client(), root=world.install, current="0.1.0", device_id="pc-1", settings=UpdateSettings,
        activity=lambda: activity_of(controller, uploader, calls), entry=ENTRY, on_applied=handed_over.append,
        interval=0.05, health_timeout=60,
    )  # fmt: skip
    checks: list[str] = []
    check = runner.check

    def counted() -> CheckResult:
        result = check()
        checks.append(result.state)
        return result

    runner.check = counted  # type: ignore[method-assign]

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        deadline = time.monotonic() + 60
        while checks.count("waiting") < 3:  # several checks during the call: each one waits
            assert time.monotonic() < deadline and not task.done(), checks
            await asyncio.sleep(0.02)
        assert current_version(world.install) == "0.1.0"
        calls.observe(Envelope(EventType.CALL_ENDED, _call("i1", Phase.ACW)))
        await asyncio.sleep(0.2)
        assert current_version(world.install) == "0.1.0" and not handed_over  # still in ACW
        calls.observe(Envelope(EventType.ACW_ENDED, _call("i1", Phase.DONE)))
        await asyncio.wait_for(task, timeout=120)  # returns after the hand-over

    asyncio.run(scenario())
    try:
        assert [r.state for r in handed_over] == ["applied"]
        assert current_version(world.install) == "0.2.0"
        assert set(checks) == {"waiting", "applied"}
    finally:
        _stop(handed_over[0].applied.process if handed_over and handed_over[0].applied else None)


def test_report_health_is_what_the_updater_waits_for(world: World) -> None:
    """The real recorder's side of the contract: ``report_health`` in the new version's process."""
    repo_root = Path(__file__).resolve().parents[2]
    script = (
        f"#!/bin/sh\nPYTHONPATH={repo_root} exec {sys.executable} -c "
        '"import time; from recorder_service.updater.runner import report_health as r; '
        "r('0.3.0'); time.sleep(300)\"\n"
    )
    archive = world.tmp / "py.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("tandem-recorder/run")
        info.size, info.mode = len(script.encode()), 0o755
        tar.addfile(info, io.BytesIO(script.encode()))
    applied = apply_release(world.install, "0.3.0", archive, ENTRY, health_timeout=120)
    try:
        assert applied.healthy, applied.reason
        assert current_version(world.install) == "0.3.0"
    finally:
        _stop(applied.process)
    assert report_health("0.3.0", env={}) is False  # started by hand, not by an updater: nothing to do


def _call(iid: str, phase: Phase) -> dict[str, object]:
    info = CallInfo(
        iid, "c-" + iid, "1001", "+15551234", "1001", phase, VoiceState.RECORDING, ScreenState.OFF, False, 1.0
    )
    return dataclasses.asdict(info)
