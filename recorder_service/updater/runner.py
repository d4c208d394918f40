"""The periodic update check inside the running recorder, and the health report a new version
gives its predecessor.

``UpdateRunner.run`` checks every ``interval`` seconds (the network and unpacking work runs in a
worker thread: the recorder's event loop keeps capturing and uploading meanwhile). After a
successful switch it calls ``on_applied``: the service stops itself and the new version, already
running and healthy, takes over. ``report_health`` is what a starting recorder calls once it is
up (connected to the server, capture backend ready): without it the updater rolls it back."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from recorder_service.updater.apply import HEALTH_ENV
from recorder_service.updater.cycle import CheckResult, check_and_apply
from recorder_service.updater.policy import Activity, UpdateSettings
from recorder_service.updater.tuf_client import ReleaseClient

log = logging.getLogger(__name__)


def report_health(version: str, healthy: bool = True, env: dict[str, str] | None = None) -> bool:
    """Tell the updater that started us how we are (no-op when no updater started us)."""
    path = (os.environ if env is None else env).get(HEALTH_ENV)
    if not path:
        return False
    tmp = Path(path + ".tmp")
    tmp.write_text(json.dumps({"version": version, "healthy": healthy}))
    os.replace(tmp, path)  # the updater never reads half a report
    return True


class UpdateRunner:
    def __init__(
        self,
        client: ReleaseClient,
        *,
        root: Path,
        current: str,
        device_id: str,
        settings: Callable[[], UpdateSettings],
        activity: Callable[[], Activity],
        entry: Sequence[str],
        on_applied: Callable[[CheckResult], None],
        interval: float = 3600.0,
        health_timeout: float = 60.0,
    ) -> None:
        self.client, self.root, self.current, self.device_id = client, root, current, device_id
        self.settings, self.activity, self.entry = settings, activity, entry
        self.on_applied, self.interval, self.health_timeout = on_applied, interval, health_timeout
        self.last: CheckResult | None = None  # for the heartbeat's update state

    def check(self) -> CheckResult:
        result = check_and_apply(
            self.client,
            root=self.root,
            current=self.current,
            device_id=self.device_id,
            settings=self.settings(),
            activity=self.activity,
            entry=self.entry,
            health_timeout=self.health_timeout,
        )
        if self.last is None or (result.state, result.reason) != (self.last.state, self.last.reason):
            level = logging.WARNING if result.state in ("refused", "rolled_back", "failed") else logging.INFO
            log.log(level, "update check: %s: %s", result.state, result.reason)
        self.last = result
        return result

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                result = await asyncio.to_thread(self.check)
            except Exception:  # an updater bug must never take the recorder down
                log.exception("update check failed")
            else:
                if result.state == "applied":
                    self.on_applied(result)
                    return
            # a waiting update is retried sooner: the call it waits for ends within minutes
            delay = (
                min(self.interval, 30.0)
                if self.last is not None and self.last.state == "waiting"
                else self.interval
            )
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass
