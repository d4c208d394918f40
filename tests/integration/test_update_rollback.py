"""A release that passes its self-test but fails in the real session is rolled back (issue 15
item 5: "the new version starts, reports healthy, or the client rolls back").

The world of tests/integration/test_tuf_update.py (a real TUF repository over HTTP, the real
updater ``system.check``, the real install layout on a tmp dir) plus the real recorder side:
``in_recorder.SelfUpdate`` writes the activity records the updater judges by (in this process,
or in a child process that exits at start as a broken bundle would). The clock is injected: the
deadline passes by giving ``check`` a later ``now``, never by sleeping."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from recorder_service.updater.apply import current_version, failed_versions
from recorder_service.updater.health import DEFAULT_DEADLINE
from recorder_service.updater.in_recorder import SelfUpdate, program_in
from recorder_service.updater.policy import Activity
from recorder_service.updater.rollback import WATCH_FILE
from recorder_service.updater.system import UpdaterConfig, await_verdict, check
from tests.integration import test_tuf_update as tuf
from tests.integration.test_tuf_update import ME, World, config, make_bundle

world = tuf.world  # the TUF world's fixtures, as they are
_self_test_as_us = tuf._self_test_as_us

IDLE = Activity("idle", in_call=False, pending_segments=0, uploading=False)


def _record(cfg: UpdaterConfig) -> dict[str, object]:
    try:
        data = json.loads((cfg.activity_dir / f"{ME}.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


async def _until_record(cfg: UpdaterConfig, task: asyncio.Task[None], **wanted: object) -> None:
    deadline = time.monotonic() + 60
    while any(_record(cfg).get(k) != v for k, v in wanted.items()):
        assert time.monotonic() < deadline and not task.done(), (wanted, _record(cfg))
        await asyncio.sleep(0.02)


def _switch_with_recorder_on_release_1(world: World, cfg: UpdaterConfig, t0: float) -> None:
    """Release 1's recorder runs (real SelfUpdate, this pid) and is idle; the updater installs,
    self-tests and switches to 0.2.0; the recorder sees it and stops to re-execute."""
    hook = SelfUpdate(root=world.install, version="0.1.0", directory=cfg.activity_dir, interval=0.05, env={})

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(hook.run(lambda: (IDLE, False), stop))
        await _until_record(cfg, task, state="idle", version="0.1.0")
        result = await asyncio.to_thread(check, cfg, client=world.client(), clock=lambda: t0)
        assert result.state == "applied", result
        await asyncio.wait_for(task, timeout=60)  # it stopped to re-execute into 0.2.0

    asyncio.run(scenario())
    assert hook.exec_program == program_in(world.install) and current_version(world.install) == "0.2.0"
    assert json.loads((world.install / WATCH_FILE).read_text())["live_before"] == [str(ME)]


def _run_as(world: World, cfg: UpdaterConfig, version: str, *, healthy: bool) -> SelfUpdate:
    """The re-executed recorder (same pid) running ``version``; healthy once the server took it."""
    hook = SelfUpdate(root=world.install, version=version, directory=cfg.activity_dir, interval=0.05, env={})
    if healthy:
        hook.mark_healthy()

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(hook.run(lambda: (IDLE, False), stop))
        await _until_record(cfg, task, version=version, healthy=healthy)
        stop.set()
        await task

    asyncio.run(scenario())
    return hook


def test_a_release_whose_recorder_never_reports_healthy_is_rolled_back(world: World) -> None:
    world.repo.add_release(world.keys, "0.2.0", make_bundle(world.tmp, "0.2.0"), 100)
    cfg = config(world.install, world.tmp / "activity")
    client, t0 = world.client(), 1_000_000.0
    _switch_with_recorder_on_release_1(world, cfg, t0)
    _run_as(world, cfg, "0.2.0", healthy=False)  # it starts, but the server never accepts its session
    early = check(cfg, client=client, clock=lambda: t0 + 60)
    assert early.state == "applied" and "not yet confirmed" in early.reason, early
    assert current_version(world.install) == "0.2.0"
    late = check(cfg, client=client, clock=lambda: t0 + DEFAULT_DEADLINE)
    assert late.state == "rolled_back", late
    assert "0.2.0 rolled back to 0.1.0" in late.reason and f"{ME} run 0.2.0 but did not" in late.reason
    assert current_version(world.install) == "0.1.0"
    assert failed_versions(world.install) == {"0.2.0"}
    assert not (world.install / WATCH_FILE).exists()
    # the recorder on 0.2.0 moves back to 0.1.0 when idle; 0.2.0 is not offered again
    back = SelfUpdate(root=world.install, version="0.2.0", directory=cfg.activity_dir, env={})
    assert back.due("idle") == program_in(world.install)
    again = check(cfg, client=client, clock=lambda: t0 + 2 * DEFAULT_DEADLINE)
    assert again.state == "up_to_date" and "0.2.0 is not applied again (rolled back:" in again.reason, again
    assert current_version(world.install) == "0.1.0"
    # a newer release is offered and applied as usual
    world.repo.add_release(world.keys, "0.3.0", make_bundle(world.tmp, "0.3.0"), 100)
    assert check(cfg, client=world.client(), clock=lambda: t0 + 3 * DEFAULT_DEADLINE).state == "applied"
    assert current_version(world.install) == "0.3.0"


def test_a_release_whose_recorder_exits_at_start_is_rolled_back(world: World, tmp_path: Path) -> None:
    """The re-executed recorder writes its record and exits 1 (a real child process: its pid is
    gone); the record it leaves is the evidence."""
    world.repo.add_release(world.keys, "0.2.0", make_bundle(world.tmp, "0.2.0"), 100)
    cfg = config(world.install, world.tmp / "activity")
    t0 = 1_000_000.0
    _switch_with_recorder_on_release_1(world, cfg, t0)
    crash = (
        "import sys; from pathlib import Path; from recorder_service.updater.in_recorder import SelfUpdate\n"
        f"SelfUpdate(root=Path({str(world.install)!r}), version='0.2.0',"
        f" directory=Path({str(cfg.activity_dir)!r}), env={{}}).publish('idle', 'starting'); sys.exit(1)\n"
    )
    done = subprocess.run([sys.executable, "-c", crash], cwd=Path(__file__).parents[2], timeout=120)
    assert done.returncode == 1 and _record(cfg)["pid"] != os.getpid()
    assert (
        check(cfg, client=world.client(), clock=lambda: t0 + 60).state == "applied"
    )  # not before the deadline
    late = check(cfg, client=world.client(), clock=lambda: t0 + DEFAULT_DEADLINE)
    assert late.state == "rolled_back" and "crashed" in late.reason, late
    assert current_version(world.install) == "0.1.0" and failed_versions(world.install) == {"0.2.0"}


def test_a_release_whose_recorder_reports_healthy_is_confirmed(world: World) -> None:
    world.repo.add_release(world.keys, "0.2.0", make_bundle(world.tmp, "0.2.0"), 100)
    cfg = config(world.install, world.tmp / "activity")
    t0 = 1_000_000.0
    _switch_with_recorder_on_release_1(world, cfg, t0)
    _run_as(world, cfg, "0.2.0", healthy=True)
    confirmed = check(cfg, client=world.client(), clock=lambda: t0 + 30)  # before the deadline
    assert confirmed.state == "applied" and "0.2.0 confirmed" in confirmed.reason, confirmed
    assert not (world.install / WATCH_FILE).exists()
    later = check(cfg, client=world.client(), clock=lambda: t0 + 2 * DEFAULT_DEADLINE)
    assert later.state == "up_to_date" and current_version(world.install) == "0.2.0", later
    assert failed_versions(world.install) == set()


def test_with_nobody_logged_in_the_updater_waits_rather_than_rolls_back(world: World) -> None:
    world.repo.add_release(world.keys, "0.2.0", make_bundle(world.tmp, "0.2.0"), 100)
    cfg = config(world.install, world.tmp / "activity")
    t0 = 1_000_000.0
    applied = check(cfg, client=world.client(), clock=lambda: t0)
    assert applied.state == "applied"  # no recorder at all

    def no_sleep(seconds: float) -> None:
        raise AssertionError("the run that switched waits with nobody to hear from")

    assert await_verdict(cfg, applied, clock=lambda: t0, sleep=no_sleep) == applied
    for later in (DEFAULT_DEADLINE, 10 * DEFAULT_DEADLINE):
        waiting = check(cfg, client=world.client(), clock=lambda later=later: t0 + later)  # type: ignore[misc]
        assert waiting.state == "applied" and "absence is no failure" in waiting.reason, waiting
    assert current_version(world.install) == "0.2.0"


def test_the_run_that_switched_waits_for_the_verdict_itself(world: World) -> None:
    """``update-check`` does not leave the verdict to the next run (that one is the new version's
    own program): it polls until the deadline. A fake clock that the fake sleep advances."""
    world.repo.add_release(world.keys, "0.2.0", make_bundle(world.tmp, "0.2.0"), 100)
    cfg = config(world.install, world.tmp / "activity")
    t = [1_000_000.0]
    _switch_with_recorder_on_release_1(world, cfg, t[0])
    _run_as(world, cfg, "0.2.0", healthy=False)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        t[0] += seconds

    applied = check(cfg, client=world.client(), clock=lambda: t[0])
    result = await_verdict(cfg, applied, clock=lambda: t[0], sleep=sleep, poll=15.0)
    assert result.state == "rolled_back", result
    assert current_version(world.install) == "0.1.0"
    assert len(slept) == DEFAULT_DEADLINE // 15  # one look every 15 s until the deadline
