"""The agent PC package end to end: ``installers/build`` makes the one-folder bundles and the .deb;
it is installed with ``apt-get`` into a fresh minimal Debian root (debootstrap: no Python there),
with the server URL and a one-time enrolment code preseeded through debconf; the bundled recorder,
started with its XDG autostart command as an ordinary user, enrols against a real server on the
host and its heartbeat shows up in the fleet. Then bad input (each a clear message, dpkg state
clean); a recorder enrolled as a device of the PC that the bundled desktop pairs with at login,
which then records a SIPp call under that agent, and the supervisor plays it; the signed
self-update; a real upgrade to a newer version (the package repacked) that keeps the admin's config
and conffile edits, another during a call that leaves the running version's files and ``current``
alone until the call is over, and a purge that leaves nothing.

Slow (a build and a chroot install: minutes) and needs root: CI runs it as its own step,
``tests/installers/run`` (TANDEM_INSTALLER_TEST=1 scripts/test runs it too). The tests share one
installed root and run in file order; the purge is last.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from server.services.releases import ReleaseRepository, init_keys
from tests.e2e.harness import ROOT, ServerProcess, run_server, stop_process, wait_until
from tests.e2e.screen_call import _speech_wav, bare_xvfb
from tests.installers import call_checks
from tests.installers.debroot import DebRoot, fresh_root, repack, why_not_possible
from tests.ports import free_port

pytestmark = [
    pytest.mark.installers,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(why_not_possible() is not None, reason=why_not_possible() or ""),
    # Minutes long: only when asked for (tests/installers/run sets TANDEM_INSTALLER_DEB).
    pytest.mark.skipif(
        not (os.environ.get("TANDEM_INSTALLER_DEB") or os.environ.get("TANDEM_INSTALLER_BUILD") == "1"),
        reason="runs as its own step: tests/installers/run (or TANDEM_INSTALLER_TEST=1 scripts/test)",
    ),
]

DESKTOP = "/usr/bin/tandem-agent"  # -> /opt/tandem/current/tandem-agent/tandem-agent
CONF = "/etc/tandem/agent.toml"
TOKEN_FILE = "/etc/tandem/enroll-token"  # a device token (tet_...) debconf was given: 0600 root


def _cli_env(server: ServerProcess, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_SERVER_")}
    env.update({"TANDEM_SERVER_DATA_DIR": str(server.data_dir), "PYTHONPATH": str(ROOT), **extra})
    return env


def enrolment_code(server: ServerProcess, username: str, **extra: str) -> dict[str, Any]:
    """What IT does: ``tandem-server enroll-recorder --username AGENT``."""
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", "enroll-recorder", "--username", username, "--json"],
        env=_cli_env(server, **extra),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


@pytest.fixture(scope="module")
def deb() -> Path:
    """The package: TANDEM_INSTALLER_DEB if set (a CI step that built it already), else built now."""
    given = os.environ.get("TANDEM_INSTALLER_DEB")
    if given:
        return Path(given)
    started = time.monotonic()
    subprocess.run([str(ROOT / "installers" / "build")], cwd=ROOT, check=True, capture_output=True)
    print(f"installers/build: {time.monotonic() - started:.0f} s")
    debs = sorted((ROOT / "build" / "installers" / "dist").glob("tandem-agent_*.deb"), key=os.path.getmtime)
    assert debs, "installers/build made no .deb"
    return debs[-1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data, keys = tmp_path_factory.mktemp("server"), tmp_path_factory.mktemp("release-keys")
    init_keys(keys)  # the deployment's release keys and TUF repository (tandem-server releases ...)
    ReleaseRepository(data / "releases").create(keys)
    # After-call work ends by the limit: nobody presses Done on the bundled desktop.
    with run_server(
        data,
        [("agent2", "agent", "Blue")],
        TANDEM_SERVER_ACW_LIMIT_SECONDS="5",
        TANDEM_SERVER_RELEASE_KEYS_DIR=str(keys),
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def installed(
    deb: Path, server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DebRoot]:
    code = enrolment_code(server, "agent1")["code"]
    with fresh_root(tmp_path_factory.mktemp("chroot")) as root:
        # What IT pushes to 500 PCs: two preseeded answers, then a non-interactive apt-get install.
        root.run(
            ["debconf-set-selections"],
            input=(
                f"tandem-agent tandem/serverurl string {server.url}\n"
                f"tandem-agent tandem/enrolltoken password {code}\n"
            ),
        )
        target = root.path("/tmp") / deb.name
        os.link(deb, target) if deb.stat().st_dev == target.parent.stat().st_dev else _copy(deb, target)
        started = time.monotonic()
        root.run(["apt-get", "install", "-y", "-q", f"/tmp/{deb.name}"], timeout=1200)
        print(f"apt-get install in the fresh root: {time.monotonic() - started:.0f} s")
        target.unlink()
        for user in ("agent1", "agent2"):
            root.run(["useradd", "--create-home", user])
        yield root


def _copy(src: Path, dst: Path) -> None:
    subprocess.run(["cp", str(src), str(dst)], check=True)


def _autostart_command(root: DebRoot) -> list[str]:
    """The command every graphical session starts (the XDG autostart entry's Exec line)."""
    text = root.path("/etc/xdg/autostart/tandem-recorder.desktop").read_text()
    match = re.search(r"^Exec=(.+)$", text, re.MULTILINE)
    assert match, text
    return match.group(1).split()


def _unit_exec(root: DebRoot, unit: str) -> list[str]:
    """A systemd unit's ExecStart command (no systemd runs in a chroot: the tests start it by hand)."""
    match = re.search(r"^ExecStart=(.+)$", root.path(f"/lib/systemd/system/{unit}").read_text(), re.MULTILINE)
    assert match, unit
    return match.group(1).split()


def _recorder_env(user: str, **extra: str) -> dict[str, str]:
    # No desktop keyring in a chroot: the administrator's opt-in plaintext token file.
    return {"TANDEM_RECORDER_KEYRING_FILE": f"/home/{user}/.local/state/tandem/token", **extra}


def _run_to_exit(root: DebRoot, user: str, **env: str) -> subprocess.CompletedProcess[str]:
    return root.run(
        _autostart_command(root), user=user, env=_recorder_env(user, **env), check=False, timeout=120
    )


def _fleet_entry(server: ServerProcess, agent: str) -> dict[str, Any] | None:
    with server.client("admin") as admin:
        r = admin.get("/api/admin/fleet")
        r.raise_for_status()
        for entry in r.json()["recorders"]:
            if entry.get("agent") == agent and entry.get("last_seen"):
                return dict(entry)
    return None


def test_preseeded_install_enrols_and_reports_without_python(
    installed: DebRoot, server: ServerProcess, tmp_path: Path
) -> None:
    root = installed
    status = root.run(["dpkg-query", "-W", "-f=${Status} ${Version}", "tandem-agent"]).stdout
    assert status.startswith("install ok installed"), status
    assert root.dpkg_clean() == ""
    # The bundle runs on this root's libc alone: no Python interpreter anywhere in it.
    assert root.run(["sh", "-c", "command -v python3 || ls /usr/bin/python3*"], check=False).returncode != 0
    conf = root.path(CONF).read_text()
    assert f'server_url = "{server.url}"' in conf
    assert re.search(r'^enroll_token = "\S+"$', conf, re.MULTILINE)
    assert oct(root.path(CONF).stat().st_mode & 0o777) == "0o644"  # every user's recorder reads it
    # debconf forgot the one-time code once it was in the file.
    shown = root.run(["debconf-show", "tandem-agent"]).stdout
    assert "tandem/serverurl: " + server.url in shown and "enrolltoken: \n" not in shown.replace("*", "")

    log = tmp_path / "recorder.log"
    started = time.monotonic()
    proc = root.popen(_autostart_command(root), user="agent1", env=_recorder_env("agent1"), log=log)
    try:
        wait_until(
            lambda: "event channel connected" in log.read_text() or proc.poll() is not None,
            120,
            "the recorder's ready line",
        )
        text = log.read_text()
        assert proc.poll() is None, f"recorder exited {proc.returncode}:\n{text}"
        print(f"bundled recorder in the chroot, process start -> ready: {time.monotonic() - started:.2f} s")
        assert f"enrolment token from {CONF}" in text and "enrolled: this recorder uploads to" in text, text
        entry = wait_until(lambda: _fleet_entry(server, "agent1"), 90, "agent1's recorder in the fleet")
        assert entry["version"] == root.path("/opt/tandem/current/VERSION").read_text().strip(), entry
    finally:
        stop_process(proc)
    # The enrolment code is spent: the server's answer to a second use says so.
    with httpx.Client() as client:
        code = re.search(r'^enroll_token = "(\S+)"$', conf, re.MULTILINE).group(1)  # type: ignore[union-attr]
        again = client.post(f"{server.url}/api/recorders/enroll", json={"code": code})
    assert again.status_code == 401 and again.json()["error"] == "enrolment_code_used"


def test_versions_layout_launchers_through_current_and_the_update_timer(installed: DebRoot) -> None:
    root = installed
    version = root.run(["dpkg-query", "-W", "-f=${Version}", "tandem-agent"]).stdout
    assert os.readlink(root.path("/opt/tandem/current")) == f"versions/{version}"
    assert root.path(f"/opt/tandem/versions/{version}/tandem-recorder/tandem-recorder").is_file()
    for program in ("tandem-agent", "tandem-recorder"):
        assert os.readlink(root.path(f"/usr/bin/{program}")) == f"/opt/tandem/current/{program}/{program}"
    assert _autostart_command(root)[0] == "/opt/tandem/current/tandem-recorder/tandem-recorder"
    # the update check runs as root from a system timer, enabled at install (no systemd runs in a chroot)
    assert root.path("/etc/systemd/system/timers.target.wants/tandem-update.timer").is_symlink()
    unit = root.path("/lib/systemd/system/tandem-update.service").read_text()
    assert "ExecStart=/opt/tandem/current/tandem-recorder/tandem-recorder update-check" in unit
    assert root.path("/usr/lib/tmpfiles.d/tandem.conf").is_file()
    # the device broker (root, holds the PC's device credential): its socket enabled at install
    assert root.path("/etc/systemd/system/sockets.target.wants/tandem-device.socket").is_symlink()
    assert (
        "ListenStream=/run/tandem/device.sock"
        in root.path("/lib/systemd/system/tandem-device.socket").read_text()
    )
    assert _unit_exec(root, "tandem-device.service")[1] == "device-broker"
    assert root.path("/run/tandem/activity").stat().st_mode & 0o7777 == 0o1777


def test_bad_input_is_named_in_the_log_and_dpkg_stays_clean(
    installed: DebRoot, server: ServerProcess
) -> None:
    root = installed
    # agent2's recorder on the same PC: the machine file's code was spent by agent1's.
    used = _run_to_exit(root, "agent2")
    assert used.returncode == 2
    assert "enrolment refused (HTTP 401): this enrolment code was already used; ask IT for a new one" in (
        used.stderr
    )
    # An expired code (issued with a 1-second lifetime).
    issued = enrolment_code(server, "agent2", TANDEM_SERVER_RECORDER_ENROLMENT_TTL_HOURS="0.0003")
    wait_until(lambda: time.time() > issued["expires_at"] + 0.5, 30, "the code to expire")
    expired_conf = root.path("/etc/tandem/expired.toml")
    expired_conf.write_text(f'server_url = "{server.url}"\nenroll_token = "{issued["code"]}"\n')
    expired = _run_to_exit(root, "agent2", TANDEM_AGENT_CONFIG="/etc/tandem/expired.toml")
    expired_conf.unlink()
    assert expired.returncode == 2
    assert "this enrolment code has expired; ask IT for a new one" in expired.stderr
    # A server URL where no server listens.
    wrong = f"http://127.0.0.1:{free_port()}"
    unreachable = _run_to_exit(root, "agent2", TANDEM_RECORDER_SERVER=wrong)
    assert unreachable.returncode == 2 and f"tandem-recorder: cannot reach {wrong}" in unreachable.stderr
    # A misspelt key in the user's config file.
    user_conf = root.path("/home/agent2/.config/tandem/agent.toml")
    user_conf.parent.mkdir(parents=True)
    user_conf.write_text('sever_url = "http://elsewhere"\n')
    unknown = _run_to_exit(root, "agent2")
    user_conf.unlink()
    assert unknown.returncode == 2
    assert "/home/agent2/.config/tandem/agent.toml: unknown key 'sever_url' (known keys: server_url" in (
        unknown.stderr
    )
    # None of it touched the package.
    assert root.dpkg_clean() == ""
    assert root.run(["dpkg-query", "-W", "-f=${Status}", "tandem-agent"]).stdout == "install ok installed"


def _session_dir(root: DebRoot, user: str) -> str:
    """The user's XDG_RUNTIME_DIR (logind makes it at a real login; here by hand): 0700, his own.
    The recorder's pairing socket lives in it, and the desktop finds the socket through it."""
    inside = f"/run/user-{user}"
    runtime = root.path(inside)
    runtime.mkdir(mode=0o700, exist_ok=True)
    uid = int(root.run(["id", "-u", user]).stdout)
    os.chown(runtime, uid, uid)
    return inside


def test_device_recorder_pairs_with_the_bundled_desktop_and_records_a_sipp_call(
    installed: DebRoot, server: ServerProcess, tmp_path: Path
) -> None:
    """The acceptance line's stretch, the way many PCs are deployed: one multi-use enrolment token
    (tet_...) preseeded through debconf, which postinst keeps in a root-only file (not in the
    agent.toml every user reads). In the Debian root, on an Xvfb screen (the host's, its socket
    bound in), the PC's device broker runs as root (tandem-device.service's command, started by
    hand: no systemd in a chroot) and user agent2's bundled recorder uses it, recording nobody
    until the bundled desktop, started as the same user, logs agent2 in on DN 1002 and hands it a
    pairing ticket over the same-user Unix socket ($XDG_RUNTIME_DIR/tandem-recorder.sock,
    SO_PEERCRED). The broker enrols the PC then (the credential in a root-only file, none in
    agent2's keyring) and pairs it. The server holds the pairing both vouched for (the device
    credential and agent2's desktop login) and the fleet shows the pairing's recorder. A SIPp call to 1002 is
    recorded under agent2, its screen uploaded with the pairing's token, after-call work ends by
    the server's limit (nobody presses Done) and the supervisor's audited download of the muxed
    file decodes. Without the pairing the device records nobody: the pairing wait fails."""
    for tool in ("sipp", "sox", "Xvfb"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/system-packages test)")
    create = ["devices", "token-create", "--scope", "team:Blue", "--max-uses", "5", "--hours", "1", "--json"]
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", *create],
        env=_cli_env(server),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    token = json.loads(out.stdout)["token"]
    root = installed
    # IT preseeds the device token (dpkg-reconfigure: the package is installed): postinst puts it
    # into the root-only token file, not into agent.toml, which every user can read.
    root.run(["debconf-set-selections"], input=f"tandem-agent tandem/enrolltoken password {token}\n")
    root.run(["dpkg-reconfigure", "-f", "noninteractive", "tandem-agent"], timeout=300)
    token_file = root.path(TOKEN_FILE)
    assert token_file.read_text().strip() == token
    assert (token_file.stat().st_mode & 0o7777, token_file.stat().st_uid) == (0o600, 0)
    conf = root.path(CONF).read_text()
    assert token not in conf and not re.search(r'^\s*enroll_token\s*=\s*"tet_', conf, re.MULTILINE), conf
    assert root.run(["cat", TOKEN_FILE], user="agent2", check=False).returncode
    root.path("/etc/tandem/device.toml").write_text(f'server_url = "{server.url}"\n')
    with server.client("admin") as admin:
        assert admin.put("/api/admin/sampling", json={"percentage": 100, "team_overrides": {}}).is_success
    _speech_wav(tmp_path / "speech.wav")
    rec_log, desk_log = tmp_path / "recorder.log", tmp_path / "desktop.log"
    broker_log, broker = tmp_path / "broker.log", None
    desktop = [DESKTOP, "--server", server.url, "--user", "agent2", "--dn", "1002", "--auto-login"]
    procs: list[subprocess.Popen[bytes]] = []

    def alive() -> bool:
        """True, or an AssertionError naming the bundle that exited (fail now, not at the deadline)."""
        for proc, log in zip(procs, (rec_log, desk_log), strict=False):
            assert proc.poll() is None, f"{log.stem} exited {proc.returncode}"
        return True

    def paired() -> call_checks.Pairing | None:
        alive()
        said = desk_log.read_text()
        # the desktop logs in even when the pairing fails (best effort): fail at once, not at the deadline
        assert "recorder not paired" not in said and "refused the pairing" not in said, "pairing failed"
        return call_checks.open_pairing(server, "agent2")

    with bare_xvfb(1024, 768) as display:
        root.bind(Path("/tmp/.X11-unix"), "/tmp/.X11-unix")
        session = {"DISPLAY": display, "XDG_RUNTIME_DIR": _session_dir(root, "agent2")}
        try:
            machine = {"TANDEM_AGENT_CONFIG": "/etc/tandem/device.toml"}
            broker = root.popen(
                _unit_exec(root, "tandem-device.service"), user="root", env=machine, log=broker_log
            )
            wait_until(
                lambda: broker.poll() is None and root.path("/run/tandem/device.sock").exists(),
                60,
                "the broker",
            )
            env = _recorder_env("agent2", **machine, **session)
            procs.append(root.popen(_autostart_command(root), user="agent2", env=env, log=rec_log))
            wait_until(
                lambda: alive() and "held by the PC's device broker" in rec_log.read_text(), 60, "device mode"
            )
            with server.client("admin") as admin:
                devices = admin.get("/api/admin/devices").json()["devices"]
            assert [d for d in devices if d["scope"] == "team:Blue"] == [], devices  # enrolled at need
            password = server.creds["agent2"]["password"]
            env = {**session, "TANDEM_AGENT_PASSWORD": password}
            procs.append(root.popen(desktop, user="agent2", env=env, log=desk_log))
            pairing = wait_until(paired, 120, "the bundled desktop's login to pair the device recorder")
            # both vouched: the device's credential, and a ticket from agent2's live desktop login
            assert pairing.agent_login_client == "desktop" and not pairing.agent_login_revoked, pairing
            with server.client("admin") as admin:
                devices = admin.get("/api/admin/devices").json()["devices"]
            mine = [d for d in devices if d["id"] == pairing.device_id]
            assert [(d["state"], d["agent"]) for d in mine] == [("paired", "agent2")], devices
            assert [
                u for u, o, _ in call_checks.audit_rows(server, "device.pair", str(pairing.device_id))
            ] == ["agent2"]
            credential = root.path("/var/lib/tandem/device-credential")
            assert (credential.stat().st_mode & 0o7777, credential.stat().st_uid) == (0o600, 0)
            assert root.run(
                ["cat", "/var/lib/tandem/device-credential"], user="agent2", check=False
            ).returncode
            assert "device:" not in root.path("/home/agent2/.local/state/tandem/token").read_text()
            with server.client("supervisor") as sup:
                wait_until(
                    lambda: (
                        alive()
                        and any(
                            a["dn"] == "1002" and {"desktop", "recorder"} <= set(a["connected"])
                            for a in sup.get("/api/agents").json()
                        )
                    ),
                    120,
                    "agent2's desktop and the paired recorder connected on 1002",
                )
            # the fleet page's "agent2" row is the device's recorder, reporting with the pairing's token
            entry = wait_until(lambda: _fleet_entry(server, "agent2"), 90, "agent2's recorder in the fleet")
            assert entry["token_id"] == pairing.recorder_token_id, entry
            assert entry["os_user"] == "agent2", entry  # the pairing's OS account, from the broker
            called_at = time.time()
            call_checks.sipp_call(server, tmp_path, "1002", seconds=6)
            iid = call_checks.latest_interaction(server, "1002", called_at)
            sup_token = server.token("supervisor")
            muxed = wait_until(
                lambda: call_checks.muxed(server, iid, sup_token), 300, "the call's muxed screen + voice file"
            )
        except AssertionError as exc:
            logs = f"recorder log:\n{rec_log.read_text()[-3000:]}\n"
            if broker_log.exists():
                logs += f"broker log:\n{broker_log.read_text()[-3000:]}\n"
            if desk_log.exists():
                logs += f"desktop log:\n{desk_log.read_text()[-3000:]}"
            raise AssertionError(f"{exc}\n{logs}") from None
        finally:
            for proc in procs:
                stop_process(proc)
            if broker is not None:
                stop_process(broker)
            root.path("/etc/tandem/device.toml").unlink()
    assert "pair for agent2 (uid " in broker_log.read_text(), broker_log.read_text()[-3000:]
    assert "readable by every user" not in broker_log.read_text()  # the token came from its 0600 file
    for log in (rec_log, desk_log):  # every backend keyring's entry points name is in the bundle
        assert "Error initializing plugin" not in log.read_text(), log.read_text()[-3000:]
    # recorded under agent2, by the device, because of the pairing
    assert call_checks.recorded_by(server, iid) == ("agent2", {pairing.recorder_token_id})
    reads = call_checks.audit_rows(server, "recording.read", iid)
    assert any(
        u == "supervisor" and o == "allowed" and d.startswith("muxed bytes 0-") for u, o, d in reads
    ), reads
    path = tmp_path / "muxed.mp4"
    path.write_bytes(muxed)
    with av.open(str(path)) as container:
        assert container.streams.video and container.streams.audio
        assert sum(1 for _ in container.decode(video=0)) >= 5


UPDATE_VERSION = "0.1.1"  # newer than the package's 0.1.0+g<commit>


def test_update_check_installs_a_signed_release_self_tested_as_nobody(
    installed: DebRoot, server: ServerProcess, deb: Path, tmp_path: Path
) -> None:
    """The real updater in the bundle, as root in the Debian root, against the real server's TUF
    repository: the package's own bundles published again as release 0.1.1 (the release archive
    installers/build makes beside the .deb). agent1's bundled recorder, running and idle, moves to
    it by re-executing itself."""
    root = installed
    package = root.run(["dpkg-query", "-W", "-f=${Version}", "tandem-agent"]).stdout
    archive = deb.parent / f"tandem-agent-{package}.tar.gz"
    update = ["/opt/tandem/current/tandem-recorder/tandem-recorder", "update-check"]
    # no trusted root distributed by IT yet: nothing is installed, and the state says why
    off = root.run(update, check=False)
    assert "update check: off: no trusted release root at /etc/tandem/update-root.json" in off.stdout, off
    assert json.loads(root.path("/opt/tandem/update-state.json").read_text())["state"] == "off"

    with server.client("admin") as admin:
        root_json = admin.get("/api/releases/tuf/metadata/1.root.json").content
        with open(archive, "rb") as body:
            r = admin.put(
                f"/api/admin/releases/{UPDATE_VERSION}",
                params={"rollout_percent": 100},
                content=body.read(),
                timeout=300,
            )
        assert r.status_code in (200, 201), r.text
    root.path("/etc/tandem/update-root.json").write_bytes(root_json)  # what IT distributes
    # agent1's recorder runs the package's bundle meanwhile, idle: it says so for the updater
    uid = root.run(["id", "-u", "agent1"]).stdout.strip()
    record_path = root.path(f"/run/tandem/activity/{uid}.json")
    record_path.unlink(missing_ok=True)
    log = tmp_path / "recorder.log"
    proc = root.popen(_autostart_command(root), user="agent1", env=_recorder_env("agent1"), log=log)

    def record() -> dict[str, Any] | None:
        assert proc.poll() is None, f"recorder exited {proc.returncode}:\n{log.read_text()}"
        try:
            return dict(json.loads(record_path.read_text()))
        except (OSError, ValueError):
            return None

    try:
        first = wait_until(
            lambda: (r := record()) and r["state"] == "idle" and r, 120, "agent1's recorder idle"
        )
        assert first["version"] == package and first["pid"] == proc.pid
        started = time.monotonic()
        done = root.run(update, check=False, timeout=900)
        took = time.monotonic() - started
        print(f"update-check in the Debian root (download, verify, unpack, self-test): {took:.0f} s")
        # the same process re-executed itself into the new bundle, and says so to the server
        wait_until(lambda: (r := record()) and r["version"] == UPDATE_VERSION, 120, "the recorder on 0.1.1")
        assert record()["pid"] == proc.pid  # type: ignore[index]
        entry = wait_until(
            lambda: (e := _fleet_entry(server, "agent1")) and e["version"] == UPDATE_VERSION and e,
            90,
            "agent1's recorder on 0.1.1 in the fleet",
        )
        assert entry["update_state"] == "applied", entry
        assert "restarting into it" in log.read_text()
    finally:
        stop_process(proc)
    # The run that switched waits for the re-executed recorder's health (the post-switch rollback
    # rule) and says its verdict; the self-test's user (nobody, not root) is checked in
    # tests/integration/test_update_updater_process.py: this output no longer carries its line.
    uid1 = root.run(["id", "-u", "agent1"]).stdout.strip()
    verdict = f"{UPDATE_VERSION} confirmed: {UPDATE_VERSION} healthy on every running recorder ({uid1})"
    assert done.stdout.strip() == f"update check: applied: {verdict}", done
    assert os.readlink(root.path("/opt/tandem/current")) == f"versions/{UPDATE_VERSION}"
    installed_dir = root.path(f"/opt/tandem/versions/{UPDATE_VERSION}/tandem-recorder")
    assert installed_dir.stat().st_uid == 0 and not installed_dir.stat().st_mode & 0o022
    assert root.path(f"/opt/tandem/versions/{package}").is_dir()  # the package's own stays
    assert json.loads(root.path("/opt/tandem/update-state.json").read_text())["current"] == UPDATE_VERSION
    again = root.run(update, check=False)
    assert f"update check: up_to_date: {UPDATE_VERSION} is the newest release" in again.stdout, again


UPGRADE_VERSION = "0.1.2"  # the package again, newer than the package and the self-update's 0.1.1
IN_CALL_VERSION = "0.1.3"  # and again, installed while a recorder is in a call
AUTOSTART = "/etc/xdg/autostart/tandem-recorder.desktop"  # the package's conffile
UPDATE_CHECK = ["/opt/tandem/current/tandem-recorder/tandem-recorder", "update-check"]


def _files(tree: Path) -> dict[str, tuple[int, int]]:
    """Every file of a version directory: its inode and size (the same file, whole)."""
    return {
        str(p.relative_to(tree)): (p.stat().st_ino, p.stat().st_size) for p in tree.rglob("*") if p.is_file()
    }


def _deleted_mappings(pid: int) -> list[str]:
    """Files the process has mapped (its bundle's libraries) that no longer exist under their name."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return sorted(
        {line.split(None, 5)[5] for line in maps if line.endswith(" (deleted)") and "/opt/tandem/" in line}
    )


def _activity(root: DebRoot, user: str) -> dict[str, Any] | None:
    uid = root.run(["id", "-u", user]).stdout.strip()
    try:
        return dict(json.loads(root.path(f"/run/tandem/activity/{uid}.json").read_text()))
    except (OSError, ValueError):
        return None


def _say_in_a_call(root: DebRoot, user: str, pid: int, version: str) -> None:
    """``user``'s recorder's activity record as the recorder writes it while in a call: its own file
    (owned by the user, named by his uid), a live process of his (pid), renamed into place."""
    uid = int(root.run(["id", "-u", user]).stdout)
    wait_until(lambda: Path(f"/proc/{pid}").stat().st_uid == uid, 30, f"{user}'s process")
    record = {
        "pid": pid,
        "version": version,
        "state": "call",
        "detail": "waiting: a call or its after-call work is in progress",
        "updated_at": time.time(),
        "healthy": True,
    }
    path = root.path(f"/run/tandem/activity/{uid}.json")
    tmp = path.with_name(f".{uid}.json.{pid}.tmp")
    tmp.write_text(json.dumps(record))
    os.chown(tmp, uid, uid)
    os.replace(tmp, path)


def _upgrade_during_a_call(
    root: DebRoot, deb: Path, proc: subprocess.Popen[bytes], log: Path, tmp_path: Path
) -> None:
    """Issue 15 item 5, "updates never break a recording", for apt: agent1's bundled recorder runs
    0.1.2 (idle) and agent2's is in a call when IT pushes 0.1.3. dpkg replaces the package's files,
    but the staged versions/0.1.2/ every running recorder loads from stays whole (no library of
    agent1's recorder is deleted under it), and ``current`` stays on 0.1.2; the timer's update check
    says "waiting" during the call, and once it is over switches to 0.1.3 and confirms it by the
    recorder's health (agent1's recorder re-executes into it). Before the staging, dpkg deleted
    versions/0.1.2/ and postinst switched at once."""

    def alive() -> bool:
        assert proc.poll() is None, f"recorder exited {proc.returncode}:\n{log.read_text()[-3000:]}"
        return True

    uid1 = root.run(["id", "-u", "agent1"]).stdout.strip()
    # the apt upgrade's own switch (nobody busy: at once) is provisional too; confirmed by agent1's health
    wait_until(
        lambda: alive() and (r := _activity(root, "agent1")) and r["healthy"] and r, 60, "agent1 healthy"
    )
    first = root.run(UPDATE_CHECK, check=False)
    assert first.stdout.strip() == (
        f"update check: applied: {UPGRADE_VERSION} confirmed: {UPGRADE_VERSION} healthy on every running "
        f"recorder ({uid1})"
    ), first
    running = root.path(f"/opt/tandem/versions/{UPGRADE_VERSION}")
    before = _files(running)
    caller = root.popen(["sleep", "600"], user="agent2", env={}, log=tmp_path / "agent2.log")
    uid2 = root.run(["id", "-u", "agent2"]).stdout.strip()
    try:
        _say_in_a_call(root, "agent2", caller.pid, UPGRADE_VERSION)
        new_deb = repack(deb, IN_CALL_VERSION, root.path("/tmp"))
        options = ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
        root.run(["apt-get", "install", "-y", "-q", *options, f"/tmp/{new_deb.name}"], input="", timeout=600)
        new_deb.unlink()
        status = root.run(["dpkg-query", "-W", "-f=${Status} ${Version}", "tandem-agent"]).stdout
        assert status == f"install ok installed {IN_CALL_VERSION}" and root.dpkg_clean() == ""
        assert os.readlink(root.path("/opt/tandem/current")) == f"versions/{UPGRADE_VERSION}"
        assert _files(running) == before  # every file the running recorders may still load
        assert alive() and _deleted_mappings(proc.pid) == []
        assert root.path("/opt/tandem/package-pending").read_text().strip() == IN_CALL_VERSION
        assert root.path(f"/opt/tandem/versions/{IN_CALL_VERSION}/tandem-recorder/tandem-recorder").is_file()
        state = json.loads(root.path("/opt/tandem/update-state.json").read_text())
        assert (state["state"], state["current"]) == ("waiting", UPGRADE_VERSION), state
        during = root.run(UPDATE_CHECK, check=False)  # the timer's run, the call still on
        assert during.stdout.startswith(f"update check: waiting: package {IN_CALL_VERSION} installed"), during
        assert f"({uid2}: call)" in during.stdout, during
        assert os.readlink(root.path("/opt/tandem/current")) == f"versions/{UPGRADE_VERSION}"
    finally:
        stop_process(caller)  # the call is over and agent2 logs out: his recorder's record goes
        root.path(f"/run/tandem/activity/{uid2}.json").unlink(missing_ok=True)
    after = root.run(UPDATE_CHECK, check=False, timeout=900)
    assert after.stdout.strip() == (
        f"update check: applied: {IN_CALL_VERSION} confirmed: {IN_CALL_VERSION} healthy on every running "
        f"recorder ({uid1})"
    ), after
    assert os.readlink(root.path("/opt/tandem/current")) == f"versions/{IN_CALL_VERSION}"
    assert not root.path("/opt/tandem/package-pending").exists()
    now_on = _activity(root, "agent1")
    assert now_on is not None and (now_on["version"], now_on["pid"]) == (IN_CALL_VERSION, proc.pid), now_on
    # the cleanup after the switch (layout.versions_to_remove): 0.1.2 stays (agent1's recorder ran it
    # at the switch) and so does one older version for a rollback, the self-updater's 0.1.1
    names = sorted(p.name for p in root.path("/opt/tandem/versions").iterdir())
    assert names == [UPDATE_VERSION, UPGRADE_VERSION, IN_CALL_VERSION], names


def test_upgrade_to_a_new_version_keeps_the_config_and_purge_removes_everything(
    installed: DebRoot, server: ServerProcess, deb: Path, tmp_path: Path
) -> None:
    """A real upgrade, as IT pushes it: the package repacked as 0.1.2 (same bundles, the control
    file's version bumped, its autostart conffile changed) installed over the running one with
    ``apt-get install`` and ``--force-confold``, stdin closed. The admin's edits -- agent.toml
    (kept by postinst, not a conffile) and the autostart entry (a conffile the package changed too)
    -- stay; ``current`` moves to the new version; agent1's recorder runs it."""
    root = installed
    old = root.run(["dpkg-query", "-W", "-f=${Version}", "tandem-agent"]).stdout
    conf = root.path(CONF)
    edited = re.sub(r"^enroll_token = .*\n", "", conf.read_text(), flags=re.MULTILINE)
    edited += "# IT: 2 fps on this floor\nfps = 2\n"
    conf.write_text(edited)  # the admin's edit: the spent code removed, a comment and a key added
    device_token = root.path(TOKEN_FILE).read_text()  # the device test's, preseeded
    autostart = root.path(AUTOSTART)
    entry = autostart.read_text() + "# IT: checked\n"
    autostart.write_text(entry)
    started = time.monotonic()
    new_deb = repack(deb, UPGRADE_VERSION, root.path("/tmp"))
    repacked = time.monotonic() - started
    options = ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
    # stdin closed: a conffile question or a debconf prompt would fail the upgrade, not hang it
    done = root.run(
        ["apt-get", "install", "-y", "-q", *options, f"/tmp/{new_deb.name}"], input="", timeout=600
    )
    new_deb.unlink()
    took = time.monotonic() - started - repacked
    print(f"upgrade {old} -> {UPGRADE_VERSION}: repack {repacked:.0f} s, apt-get install {took:.0f} s")
    assert "(Y/I/N/O/D/Z)" not in done.stdout + done.stderr, done.stdout
    status = root.run(["dpkg-query", "-W", "-f=${Status} ${Version}", "tandem-agent"]).stdout
    assert status == f"install ok installed {UPGRADE_VERSION}", status
    assert root.dpkg_clean() == ""
    assert conf.read_text() == edited
    assert root.path(TOKEN_FILE).read_text() == device_token  # kept, still root-only
    assert root.path(TOKEN_FILE).stat().st_mode & 0o7777 == 0o600
    assert autostart.read_text() == entry  # --force-confold: the admin's conffile kept ...
    assert (
        root.path(AUTOSTART + ".dpkg-dist").read_text().endswith(f"# shipped with {UPGRADE_VERSION}\n")
    )  # ... the package's beside it
    # versions/: the new one staged and current (nothing ran: switched at once); the old package's
    # staged version went by the updater's cleanup (not current, not running, not the one before:
    # the self-updater's 0.1.1 is kept for a rollback)
    assert os.readlink(root.path("/opt/tandem/current")) == f"versions/{UPGRADE_VERSION}"
    assert root.path(f"/opt/tandem/versions/{UPGRADE_VERSION}/tandem-recorder/tandem-recorder").is_file()
    assert root.path(f"/opt/tandem/versions/{UPGRADE_VERSION}/VERSION").read_text().strip() == UPGRADE_VERSION
    assert root.path("/opt/tandem/package/VERSION").read_text().strip() == UPGRADE_VERSION  # dpkg's payload
    assert (
        root.path(f"/opt/tandem/versions/{UPGRADE_VERSION}/.staged-from-package").read_text() == "hard links"
    )
    # the recorder still runs, the new version, with its credential from before the upgrade
    log = tmp_path / "recorder.log"
    proc = root.popen(_autostart_command(root), user="agent1", env=_recorder_env("agent1"), log=log)

    def on_new_version() -> bool:
        assert proc.poll() is None, f"recorder exited {proc.returncode}:\n{log.read_text()}"
        entry = _fleet_entry(server, "agent1")
        return entry is not None and entry["version"] == UPGRADE_VERSION

    try:
        wait_until(on_new_version, 120, f"agent1's recorder on {UPGRADE_VERSION} in the fleet")
        started = time.monotonic()
        _upgrade_during_a_call(root, deb, proc, log, tmp_path)
        print(f"upgrade during a call, then the switch once idle: {time.monotonic() - started:.0f} s")
    finally:
        stop_process(proc)

    root.run(["apt-get", "purge", "-y", "-q", "tandem-agent"])
    for gone in (
        "/opt/tandem",
        "/run/tandem",
        "/var/lib/tandem",
        "/etc/systemd/system/timers.target.wants/tandem-update.timer",
        "/lib/systemd/system/tandem-update.timer",
        "/etc/systemd/system/sockets.target.wants/tandem-device.socket",
        "/lib/systemd/system/tandem-device.socket",
        TOKEN_FILE,
        "/etc/tandem",
        AUTOSTART,
        AUTOSTART + ".dpkg-dist",
        "/usr/bin/tandem-recorder",
    ):
        assert not root.path(gone).exists() and not root.path(gone).is_symlink(), gone
    assert root.run(["debconf-show", "tandem-agent"], check=False).stdout.strip() == ""
    listed = root.run(["dpkg-query", "-W", "-f=${Status}", "tandem-agent"], check=False)
    assert listed.returncode != 0 or "not-installed" in listed.stdout
    assert root.dpkg_clean() == ""
