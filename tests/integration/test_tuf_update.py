"""Auto-update through the code that runs on each PC (issue 15 item 5): a real TUF repository made
by the server's release service (python-tuf's metadata API, Ed25519 keys), served over HTTP; the
PC's updater (``recorder_service.updater.system.check``, what ``tandem-recorder update-check``
runs) refreshes it, downloads and verifies release 2, self-tests it and points ``current`` at it
only when every recorder's activity record says idle. A tampered bundle, stale (expired) or
replayed metadata are refused and release 1 stays current; a release whose self-test fails or
hangs never becomes current and is not tried again.

The "bundles" are tiny: ``tandem-recorder/tandem-recorder`` is a shell script answering
``self-test`` (the real PyInstaller bundle is built by installers/build and updated in
tests/installers/test_deb_install.py; the real recorder from source in tests/e2e/test_auto_update.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import http.server
import io
import logging
import os
import shutil
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import select

from recorder_service.controller import Mode
from recorder_service.updater.activity import CallWatch, activity_of
from recorder_service.updater.activity_file import ActivityRecord, now, write_record
from recorder_service.updater.apply import current_version, failed_versions, switch_current, unpack
from recorder_service.updater.in_recorder import SelfUpdate, program_in
from recorder_service.updater.policy import UpdateSettings
from recorder_service.updater.system import CheckResult, UpdaterConfig, check
from recorder_service.updater.tuf_client import ReleaseClient, UpdateRefused
from server.api.app import create_app
from server.cli import main as cli_main
from server.services.releases import ReleaseError, ReleaseRepository, init_keys
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user
from tandem_protocol.events import CallInfo, Envelope, EventType, Phase, ScreenState, VoiceState
from tests.integration.live_server import LiveServer

ME = os.getuid()


@pytest.fixture(autouse=True)
def _self_test_as_us(monkeypatch: pytest.MonkeyPatch) -> None:
    """The self-test as the test's own user (pytest's tmp_path is root's 0700 one: nobody could
    not enter it); tests/integration/test_update_updater_process.py shows the switch to nobody."""
    monkeypatch.setenv("TANDEM_SELF_TEST_USER", "-")


def make_bundle(tmp: Path, version: str, *, healthy: bool = True, hangs: bool = False) -> Path:
    """A release archive whose ``tandem-recorder/tandem-recorder self-test`` passes, fails (exit 3,
    as a bundle missing a library) or never finishes."""
    if hangs:
        script = "#!/bin/sh\nexec sleep 300\n"
    elif healthy:
        script = f"#!/bin/sh\necho 'healthy: tandem-recorder {version}'\n"
    else:
        script = "#!/bin/sh\necho 'FAIL import av: missing library' >&2\nexit 3\n"
    suffix = "-hangs" if hangs else "" if healthy else "-broken"
    archive = tmp / f"bundle-{version}{suffix}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data, mode in [
            ("tandem-recorder/tandem-recorder", script.encode(), 0o755),
            ("tandem-recorder/VERSION", f"{version}\n".encode(), 0o644),
        ]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return archive


def config(
    install: Path, activity: Path, *, settings: UpdateSettings | None = None, url: str = "http://tandem.test"
) -> UpdaterConfig:
    """The updater's configuration as load_updater_config makes it from the PC's files."""
    activity.mkdir(exist_ok=True)
    return UpdaterConfig(
        root=install,
        server_url=url,
        trusted_root=b"{}",  # the client is passed in with the real root
        trust_problem="",
        settings=settings or UpdateSettings(),
        activity_dir=activity,
        cache_dir=install.parent / "update-cache",
        device_id="pc-1",
    )


def recorder_says(activity: Path, state: str, version: str = "0.1.0", *, healthy: bool = False) -> None:
    """This user's recorder's activity record (its pid: this live process)."""
    write_record(activity, ActivityRecord(os.getpid(), version, state, "", now(), healthy), f"{ME}.json")


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


def test_release_2_is_offered_verified_and_applied_only_after_the_call_ends(world: World) -> None:
    world.repo.add_release(world.keys, "0.2.0", make_bundle(world.tmp, "0.2.0"), 100)
    client = world.client()
    cfg = config(world.install, world.tmp / "activity")
    recorder_says(cfg.activity_dir, "capturing")
    during = check(cfg, client=client)
    assert during.state == "waiting" and during.version == "0.2.0", during
    assert f"{ME}: capturing" in during.reason
    assert current_version(world.install) == "0.1.0"
    assert not (world.install / "versions" / "0.2.0").exists()  # not even downloaded during a call
    recorder_says(cfg.activity_dir, "acw")  # the call ended, its after-call work has not
    assert check(cfg, client=client).state == "waiting"
    recorder_says(cfg.activity_dir, "idle")  # ACW ended, the spool is empty
    result = check(cfg, client=client)
    assert result.state == "applied", result.reason
    assert "healthy: tandem-recorder 0.2.0" in result.reason  # the self-test ran before the switch
    assert current_version(world.install) == "0.2.0"
    assert (world.install / "current" / "tandem-recorder" / "VERSION").read_text() == "0.2.0\n"
    assert (world.install / "versions" / "0.1.0").is_dir()  # release 1 kept for a rollback
    pending = check(cfg, client=client)  # the recorder has not restarted into 0.2.0 yet
    assert pending.state == "applied" and "not yet confirmed" in pending.reason, pending
    recorder_says(cfg.activity_dir, "idle", "0.2.0", healthy=True)  # it did, and the server took it
    confirmed = check(cfg, client=client)
    assert confirmed.state == "applied" and "0.2.0 confirmed" in confirmed.reason, confirmed
    again = check(cfg, client=client)
    assert again.state == "up_to_date", again


def test_staged_rollout_and_policy_off_leave_release_1(world: World) -> None:
    world.repo.add_release(world.keys, "0.2.0", make_bundle(world.tmp, "0.2.0"), 0)  # offered to nobody yet
    client = world.client()
    offers = client.offers()
    assert {(o.version, o.rollout_percent) for o in offers} == {("0.1.0", 100), ("0.2.0", 0)}
    activity = world.tmp / "activity"
    assert check(config(world.install, activity), client=client).state == "up_to_date"
    off_cfg = config(world.install, activity, settings=UpdateSettings(enabled=False, source="HKLM"))
    off = check(off_cfg, client=client)
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
    result = check(config(world.install, world.tmp / "activity"), client=client)
    assert result.state == "refused" and "0.1.0 keeps running" in result.reason, result
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
    install = tmp_path / "opt-tandem"
    unpack(install, "0.1.0", make_bundle(tmp_path, "0.1.0"))
    switch_current(install, "0.1.0")
    try:
        client = ReleaseClient(
            tmp_path / "cache", f"http://127.0.0.1:{server.server_address[1]}", repo.root_json()
        )
        with pytest.raises(UpdateRefused, match="ExpiredMetadataError"):
            client.offers()
        stale = check(config(install, tmp_path / "activity"), client=client)
        assert stale.state == "refused" and "Expired" in stale.reason, stale
        assert "0.1.0 keeps running" in stale.reason and current_version(install) == "0.1.0"
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
    replayed = check(config(world.install, world.tmp / "activity"), client=client)
    assert replayed.state == "refused" and "BadVersionNumber" in replayed.reason, replayed
    assert current_version(world.install) == "0.1.0"


def test_release_that_fails_its_self_test_never_becomes_current(world: World) -> None:
    world.repo.add_release(world.keys, "0.2.0", make_bundle(world.tmp, "0.2.0", healthy=False), 100)
    client = world.client()
    cfg = config(world.install, world.tmp / "activity")
    result = check(cfg, client=client)
    assert result.state == "rolled_back", result
    assert "0.2.0 failed its self-test, 0.1.0 stays" in result.reason
    assert "exited with code 3" in result.reason and "FAIL import av" in result.reason
    assert current_version(world.install) == "0.1.0"
    assert failed_versions(world.install) == {"0.2.0"}
    assert not (world.install / "versions" / "0.2.0").exists()  # its files went
    # and the updater does not try the failed version again
    assert check(cfg, client=client).state == "up_to_date"


def test_release_whose_self_test_hangs_is_refused_at_the_deadline(world: World) -> None:
    world.repo.add_release(world.keys, "0.3.0", make_bundle(world.tmp, "0.3.0", hangs=True), 100)
    result = check(config(world.install, world.tmp / "activity"), client=world.client(), self_test_timeout=1)
    assert result.state == "rolled_back" and "did not finish within 1 s" in result.reason, result
    assert current_version(world.install) == "0.1.0" and failed_versions(world.install) == {"0.3.0"}


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
    with LiveServer(app, start_timeout=60) as url, httpx.Client(base_url=url, timeout=60) as http:
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
        # the updater as update-check makes it: its own client from the server URL and IT's root
        cfg = dataclasses.replace(config(install, tmp_path / "activity", url=url), trusted_root=root)
        recorder_says(cfg.activity_dir, "idle")
        assert check(cfg).state == "up_to_date"  # offered to 0 %
        r = http.patch("/api/admin/releases/0.2.0", json={"rollout_percent": 100}, headers=admin)
        assert r.status_code == 200 and r.json()["rollout_percent"] == 100, r.text
        recorder_says(cfg.activity_dir, "call")
        assert check(cfg).state == "waiting"
        assert current_version(install) == "0.1.0"
        recorder_says(cfg.activity_dir, "idle")
        result = check(cfg)
        assert result.state == "applied", result.reason
        assert current_version(install) == "0.2.0"
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


# -- inside the running recorder ---------------------------------------------------------------------
def test_the_recorder_holds_the_update_through_the_call_and_acw_then_moves_to_it(world: World) -> None:
    """The recorder's side (``in_recorder.SelfUpdate``, fed by the service's CallWatch) and the
    updater's, together: the record says call, then acw, and the updater waits; once it says
    idle the updater switches and the recorder stops to re-execute into the new ``current``."""
    world.repo.add_release(world.keys, "0.2.0", make_bundle(world.tmp, "0.2.0"), 100)
    cfg = config(world.install, world.tmp / "activity")
    calls = CallWatch()
    calls.observe(Envelope(EventType.CALL_STARTED, _call("i1", Phase.ACTIVE)))
    controller = SimpleNamespace(mode=Mode.IDLE)  # not sampled: no capture, but a call all the same
    uploader = SimpleNamespace(stats=lambda: SimpleNamespace(state="idle", pending_segments=0, current=None))
    hook = SelfUpdate(root=world.install, version="0.1.0", directory=cfg.activity_dir, interval=0.05, env={})
    client = world.client()
    results: list[CheckResult] = []

    async def recorder_record_says(state: str, task: asyncio.Task[None]) -> None:
        deadline = time.monotonic() + 60
        while f'"state": "{state}"' not in _record_text(cfg):
            assert time.monotonic() < deadline and not task.done(), (state, _record_text(cfg))
            await asyncio.sleep(0.02)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(
            hook.run(lambda: (activity_of(controller, uploader, calls), calls.in_acw), stop)
        )
        await recorder_record_says("call", task)
        results.append(await asyncio.to_thread(check, cfg, client=client))
        calls.observe(Envelope(EventType.CALL_ENDED, _call("i1", Phase.ACW)))
        await recorder_record_says("acw", task)
        results.append(await asyncio.to_thread(check, cfg, client=client))
        assert current_version(world.install) == "0.1.0" and not task.done()
        calls.observe(Envelope(EventType.ACW_ENDED, _call("i1", Phase.DONE)))
        await recorder_record_says("idle", task)
        results.append(await asyncio.to_thread(check, cfg, client=client))
        await asyncio.wait_for(task, timeout=60)  # the recorder stopped its service to re-execute
        assert stop.is_set()

    asyncio.run(scenario())
    assert [r.state for r in results] == ["waiting", "waiting", "applied"], results
    assert current_version(world.install) == "0.2.0"
    assert hook.exec_program == program_in(world.install)


def _record_text(cfg: UpdaterConfig) -> str:
    try:
        return (cfg.activity_dir / f"{ME}.json").read_text()
    except OSError:
        return ""


def _call(iid: str, phase: Phase) -> dict[str, object]:
    info = CallInfo(
        iid, "c-" + iid, "1001", "+15551234", "1001", phase, VoiceState.RECORDING, ScreenState.OFF, False, 1.0
    )
    return dataclasses.asdict(info)
