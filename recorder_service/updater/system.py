"""``tandem-recorder update-check``: the PC's updater, one run per call (a timer repeats it).

Why a privileged updater apart from the recorders (as NICE's and Verint's system services): the
package installs one copy for the whole PC under ``/opt/tandem`` (root-owned, so no user can
plant code every user then runs), while a recorder runs as each logged-in user. A recorder
therefore cannot install anything, and no single recorder knows whether *another* user's
recorder is recording. So: a systemd timer (``tandem-update.timer``, every 15 min with a
randomised delay; on Windows a scheduled task as SYSTEM) runs this as root, and it

1. reads IT's policy (HKLM policy first on Windows, then the machine file; off wins; a pin);
2. refreshes the signed TUF metadata and picks this PC's release (``policy.choose_release``, the
   rollout bucket from the machine id);
3. asks every running recorder (``activity_file``): it goes on only if all are idle;
4. downloads and verifies the bundle (``tuf_client``), unpacks it into ``versions/<v>/``;
5. runs the new version's ``self-test`` (as ``nobody`` when run as root: it imports its modules,
   creates its capture backend where a display is open, reaches the server). Failure: the
   version directory goes, ``versions/<v>.failed`` says why, ``current`` was never touched;
6. asks the recorders again, then points ``current`` at the new version (atomically: on Linux a
   symlink renamed over, on Windows a junction retargeted in place -- ``layout_windows`` says why);
7. each recorder, once idle, sees ``current`` changed and re-executes itself (``in_recorder``);
8. the switch stays provisional (``rollback``: ``update-watch.json``) until the recorders report
   the new version healthy -- their server session accepted -- or, at a deadline (10 min,
   ``TANDEM_UPDATE_HEALTH_SECONDS``), one that crashed or is still unhealthy on it makes the
   updater point ``current`` back at the previous version and mark the new one failed
   (``health`` has the rule). The run that switched waits for that verdict itself when a
   recorder was live (``await_verdict``); later runs judge first, before anything new.

Before all of it (after judging a pending switch): an apt upgrade that came while a recorder was
busy left its version staged and pending (``package``); the first run whose gate opens switches
to it, with the same health watch -- whatever the policy says, since IT installed it.

Step 5 comes *before* the switch: with recorders polling ``current``, an idle recorder -- or a
user logging in, whose autostart entry starts ``current`` -- would start a version still under
test. Tested first, a release that cannot even start never becomes ``current``; step 8 catches
the one that starts but fails in the real session (a user's credential, the server, a crash loop).

Trust: the ``.deb`` and MSI cannot carry a deployment's TUF root (each deployment makes its own
keys, ``tandem-server releases init-keys``). IT distributes the ``root.json`` like the server URL:
a file (default ``/etc/tandem/update-root.json``, or ``update_root`` in agent.toml naming one),
copied from ``GET /api/releases/tuf/metadata/1.root.json`` *over a channel it trusts* (its
config management), never fetched by the PC from the server it is meant to check. Without one,
updates are off and the state says so. Later roots rotate through TUF itself (signed by the old).

Every run writes ``<root>/update-state.json`` (state, reason, version, time): the recorders put
it in their heartbeat, so the fleet page shows each PC's update state.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from recorder_service.machine_config import load_machine_settings
from recorder_service.updater import activity_file, layout, package, rollback
from recorder_service.updater.apply import (
    ApplyError,
    current_version,
    failed_versions,
    switch_current,
    unpack,
    versions_dir,
)
from recorder_service.updater.cleanup import MARKER, running_versions
from recorder_service.updater.cleanup import collect_garbage as _collect_garbage
from recorder_service.updater.health import DEFAULT_DEADLINE, HEALTH_DEADLINE_ENV, Watch
from recorder_service.updater.in_recorder import program_in
from recorder_service.updater.layout import INSTALL_ROOT_ENV
from recorder_service.updater.lock import locked as _locked
from recorder_service.updater.policy import Readiness, UpdatePolicyError, UpdateSettings, choose_release
from recorder_service.updater.sources import RegistryReader, load_update_settings
from recorder_service.updater.tuf_client import ReleaseClient, UpdateRefused

log = logging.getLogger(__name__)

CACHE_ENV = "TANDEM_UPDATE_CACHE"
SELF_TEST_USER = "nobody"
# Another user for the self-test, or "-" for the updater's own (tests whose Python lives under
# /root, which nobody may not read). Read from the updater's environment, never from a config file.
SELF_TEST_USER_ENV = "TANDEM_SELF_TEST_USER"
HEALTH_POLL = 5.0  # seconds between looks while the run that switched waits for the verdict


@dataclass(frozen=True)
class CheckResult:
    """One update check's outcome; ``reason`` is the line for the log and the fleet page."""

    state: str  # layout.UPDATE_STATES: off, up_to_date, waiting, applied, refused, rolled_back, failed
    reason: str
    version: str | None = None


def _programdata(env: Mapping[str, str]) -> Path:  # pragma: no cover - Windows only
    return Path(env.get("ProgramData", r"C:\ProgramData")) / "Tandem"


@dataclass(frozen=True)
class UpdaterConfig:
    root: Path
    server_url: str
    trusted_root: bytes | None
    trust_problem: str  # why there is no trusted root ("" when there is one)
    settings: UpdateSettings
    activity_dir: Path
    cache_dir: Path
    device_id: str
    health_deadline: float = DEFAULT_DEADLINE  # seconds after a switch (``health``)


def machine_id() -> str:
    """A stable id of this PC for the rollout bucket (the same PCs go first each time)."""
    for path in (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id")):
        with contextlib.suppress(OSError):
            text = path.read_text().strip()
            if text:
                return text
    import socket

    return socket.gethostname()


def load_updater_config(
    env: Mapping[str, str] | None = None, *, registry: RegistryReader | None = None
) -> UpdaterConfig:
    """Everything from the PC's own configuration (never a user's). Raises ConfigError or
    UpdatePolicyError with a message naming the file and key. ``registry``: the HKLM policy
    reader (``sources``; the real one on Windows, nothing elsewhere; tests pass a fake)."""
    env = os.environ if env is None else env
    machine = load_machine_settings(env)
    windows = sys.platform == "win32"
    root = Path(env.get(INSTALL_ROOT_ENV) or (r"C:\Program Files\Tandem" if windows else "/opt/tandem"))
    cache = Path(
        env.get(CACHE_ENV)
        or (_programdata(env) / "update-cache" if windows else "/var/lib/tandem/update-cache")
    )
    root_path = Path(
        machine.values.get("update_root")
        or (_programdata(env) / "update-root.json" if windows else "/etc/tandem/update-root.json")
    )
    try:
        trusted: bytes | None = root_path.read_bytes()
        problem = ""
    except OSError as exc:
        trusted = None
        problem = (
            f"no trusted release root at {root_path} ({exc.strerror or exc}): IT installs it (update_root)"
        )
    policy_keys = {k: v for k, v in machine.values.items() if k in ("auto_update", "update_pin")}
    source = machine.sources.get("auto_update") or machine.sources.get("update_pin") or "machine config"
    settings = load_update_settings(policy_keys, source, registry)
    try:
        deadline = float(env.get(HEALTH_DEADLINE_ENV) or DEFAULT_DEADLINE)
    except ValueError as exc:
        raise UpdatePolicyError(
            f"{HEALTH_DEADLINE_ENV}: expected seconds, got {env[HEALTH_DEADLINE_ENV]!r}"
        ) from exc
    return UpdaterConfig(
        root=root,
        server_url=machine.values.get("server_url", ""),
        trusted_root=trusted,
        trust_problem=problem,
        settings=settings,
        activity_dir=activity_file.activity_dir(env),
        cache_dir=cache,
        device_id=machine_id(),
        health_deadline=max(1.0, deadline),
    )


def run_self_test(program: Path, server_url: str, timeout: float) -> tuple[bool, str]:
    """Start the new version's ``self-test``; as an unprivileged user when we are root (the
    test must not run new code with root's rights before it is trusted further)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    for key in ("DISPLAY", "WAYLAND_DISPLAY", "PYTHONPATH", "SYSTEMROOT"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    user: str | None = None
    with tempfile.TemporaryDirectory(prefix="tandem-self-test-") as home:
        env["HOME"] = home
        wanted = os.environ.get(SELF_TEST_USER_ENV, SELF_TEST_USER)
        if hasattr(os, "geteuid") and os.geteuid() == 0 and wanted != "-":
            user = wanted
            shutil.chown(home, user=user)
        try:
            done = subprocess.run(
                [str(program), "self-test", "--server", server_url],
                env=env,
                capture_output=True,
                timeout=timeout,
                user=user,
                cwd=home,
            )
        except subprocess.TimeoutExpired:
            return False, f"self-test did not finish within {timeout:g} s"
        except OSError as exc:
            return False, f"self-test could not start: {exc}"
    said = done.stdout.decode(errors="replace").strip().splitlines()  # its check lines
    if done.returncode != 0:
        logged = done.stderr.decode(errors="replace").strip().splitlines()  # a traceback, a log line
        failed = [line for line in said if line.startswith("FAIL")]  # self_test's own verdicts first
        tail = " | ".join([*failed[:2], *logged[-2:]] or said[-3:])[:400]
        return False, f"self-test exited with code {done.returncode}: {tail}"
    return True, (said[-1] if said else "")[:400]


def _own_by_root(tree: Path) -> None:
    """As root, the unpacked files belong to root whatever uid the archive carries (a bundle built
    by a CI user must not be writable by a local user of that uid). The tar "data" filter already
    cleared group/other write and setuid bits."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    for folder, dirs, files in os.walk(tree):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(folder, name), 0, 0)
    os.lchown(tree, 0, 0)


def _mark_failed(root: Path, version: str, why: str) -> None:
    shutil.rmtree(versions_dir(root) / version, ignore_errors=True)
    (versions_dir(root) / f"{version}.failed").write_text(why + "\n")


def write_state(root: Path, result: CheckResult, current: str | None) -> None:
    layout.write_state(
        root,
        {
            "state": result.state,
            "reason": result.reason,
            "version": result.version,
            "current": current,
            "checked_at": time.time(),
        },
    )


def _gate(cfg: UpdaterConfig) -> Readiness:
    seen = activity_file.read_records(cfg.activity_dir)
    for path in activity_file.stale(seen):
        with contextlib.suppress(OSError):
            path.unlink()  # root may; a user's updater run simply leaves it
    return activity_file.gate(seen)


def _not_again(root: Path, offered: set[str], current: str) -> str:
    """Why an offered release newer than ``current`` is not applied: it failed here before."""
    out = []
    for version in sorted(failed_versions(root) & offered):
        if layout.version_order(version) > layout.version_order(current):
            with contextlib.suppress(OSError):
                why = (versions_dir(root) / f"{version}.failed").read_text().strip()
                out.append(f"; {version} is not applied again ({why[:200]})")
    return "".join(out)


def check(
    cfg: UpdaterConfig,
    *,
    self_test_timeout: float = 120.0,
    client: ReleaseClient | None = None,
    clock: Callable[[], float] = time.time,
) -> CheckResult:
    """One run: see the module docstring. Never raises for an expected refusal."""
    current = current_version(cfg.root)
    pending = rollback.look(cfg.root, cfg.activity_dir, clock()) if current is not None else None
    if pending is not None:  # the last switch is judged first: nothing new before its verdict
        return CheckResult(pending.state, pending.reason, pending.version)
    # An apt upgrade that came during a call (``package``): IT installed it, so neither the
    # policy's off switch nor the release root stops it -- only the gate does.
    staged = package.apply_pending(cfg.root, cfg.activity_dir, clock(), cfg.health_deadline)
    if staged is not None:
        return CheckResult(staged.state, staged.reason, staged.version)
    if not cfg.settings.enabled:
        return CheckResult("off", f"updates are turned off by policy ({cfg.settings.source})")
    if cfg.trusted_root is None:
        return CheckResult("off", cfg.trust_problem)
    if not cfg.server_url:
        return CheckResult("off", "no server_url in the machine config")
    if current is None:
        return CheckResult("failed", f"{cfg.root}/current is not a link to an installed version")
    tuf = client or ReleaseClient(cfg.cache_dir, f"{cfg.server_url}/api/releases/tuf", cfg.trusted_root)
    try:
        offers = tuf.offers()
    except UpdateRefused as exc:
        return CheckResult("refused", f"{exc}; {current} keeps running")
    bad = failed_versions(cfg.root)
    try:
        decision = choose_release(
            current, [o for o in offers if o.version not in bad], cfg.settings, cfg.device_id
        )
    except UpdatePolicyError as exc:
        return CheckResult("failed", str(exc))
    if decision.version is None:
        return CheckResult(
            "up_to_date", decision.reason + _not_again(cfg.root, {o.version for o in offers}, current)
        )
    version = decision.version
    ready = _gate(cfg)
    if not ready.ready:
        return CheckResult("waiting", f"{version} offered; {ready.reason}", version)
    try:
        downloaded = tuf.download(version)
    except UpdateRefused as exc:
        return CheckResult("refused", f"{exc}; {current} keeps running", version)
    try:
        unpack(cfg.root, version, downloaded.path)
    except ApplyError as exc:
        return CheckResult("failed", f"{exc}; {current} keeps running", version)
    _own_by_root(versions_dir(cfg.root) / version)
    (versions_dir(cfg.root) / version / MARKER).write_text(
        hashlib.sha256(downloaded.path.read_bytes()).hexdigest() + "\n"
    )
    program = versions_dir(cfg.root) / version / program_in(Path()).relative_to("current")
    healthy, said = run_self_test(program, cfg.server_url, self_test_timeout)
    if not healthy:
        _mark_failed(cfg.root, version, said)
        return CheckResult("rolled_back", f"{version} failed its self-test, {current} stays: {said}", version)
    ready = _gate(cfg)  # a call may have started during the download and the self-test
    if not ready.ready:
        return CheckResult("waiting", f"{version} installed and self-tested; {ready.reason}", version)
    live = rollback.live_names(activity_file.read_records(cfg.activity_dir))
    try:
        switch_current(cfg.root, version)
    except ApplyError as exc:
        return CheckResult("failed", f"{exc}; {current} keeps running", version)
    try:
        rollback.write_watch(cfg.root, Watch(version, current, clock(), cfg.health_deadline, live))
    except OSError as exc:  # the switch stands; only its rollback is lost: said, not hidden
        log.error("cannot record the switch to %s for its health check: %s", version, exc)
    _collect_garbage(cfg.root, current=version, previous=current, running=running_versions(cfg.activity_dir))
    return CheckResult(
        "applied",
        f"{version} installed, self-tested ({said}) and current (was {current}); "
        "recorders restart into it when idle; rolled back unless they report healthy",
        version,
    )


def await_verdict(
    cfg: UpdaterConfig,
    result: CheckResult,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    poll: float = HEALTH_POLL,
) -> CheckResult:
    """The run that switched stays (holding the lock) until the switch is confirmed or rolled
    back, or its deadline passed with nobody to judge by (later runs go on judging). Why here and
    not only in the next run: this run is still the *previous* version's program, whose own
    rollback works; the next timer run starts the new version's program from ``current``. With no
    recorder live at the switch (nobody logged in: the usual night) there is nobody to hear from
    soon, and the run ends at once; the next runs judge."""
    watch = rollback.read_watch(cfg.root) if result.state == "applied" else None
    if watch is None or not watch.live_before:
        return result
    end = clock() + cfg.health_deadline + poll
    while clock() < end:
        write_state(cfg.root, result, current_version(cfg.root))  # the fleet sees "not yet confirmed"
        sleep(poll)
        outcome = rollback.look(cfg.root, cfg.activity_dir, clock())
        if outcome is None:
            break
        result = CheckResult(outcome.state, outcome.reason, outcome.version)
        if outcome.settled:
            break
    return result


def update_check(
    env: Mapping[str, str] | None = None,
    *,
    self_test_timeout: float = 120.0,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> CheckResult:
    """The ``update-check`` command: lock, run, record the outcome."""
    cfg = load_updater_config(env)
    with _locked(cfg.root) as mine:
        if not mine:
            return CheckResult("waiting", "another update check is running")
        result = check(cfg, self_test_timeout=self_test_timeout, clock=clock)
        result = await_verdict(cfg, result, clock=clock, sleep=sleep)
        write_state(cfg.root, result, current_version(cfg.root))
    return result
