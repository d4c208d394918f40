"""One update check, as the recorder runs it periodically: policy -> verified metadata -> choice
-> verified download -> wait for idle -> install with health check and rollback.

Every outcome is a ``CheckResult`` whose ``reason`` is the line for the log (and, once wired,
the heartbeat's update state on the fleet page)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from recorder_service.updater.apply import Applied, ApplyError, apply_release, failed_versions
from recorder_service.updater.policy import Activity, UpdateSettings, choose_release, may_apply_now
from recorder_service.updater.tuf_client import ReleaseClient, UpdateRefused


@dataclass(frozen=True)
class CheckResult:
    state: str  # off, up_to_date, refused, waiting, applied, rolled_back, failed
    reason: str
    version: str | None = None
    applied: Applied | None = None


def check_and_apply(
    client: ReleaseClient,
    *,
    root: Path,
    current: str,
    device_id: str,
    settings: UpdateSettings,
    activity: Callable[[], Activity],
    entry: Sequence[str],
    health_timeout: float = 60.0,
) -> CheckResult:
    if not settings.enabled:
        return CheckResult("off", f"updates are turned off by policy ({settings.source})")
    try:
        offers = client.offers()
    except UpdateRefused as exc:
        return CheckResult("refused", f"{exc}; {current} keeps running")
    bad = failed_versions(root)
    decision = choose_release(current, [o for o in offers if o.version not in bad], settings, device_id)
    if decision.version is None:
        return CheckResult("up_to_date", decision.reason)
    version = decision.version
    # a cheap check first: no download while a call is recorded (it would compete for the uplink)
    readiness = may_apply_now(activity())
    if not readiness.ready:
        return CheckResult("waiting", f"{version} offered; {readiness.reason}", version)
    try:
        downloaded = client.download(version)
    except UpdateRefused as exc:
        return CheckResult("refused", f"{exc}; {current} keeps running", version)
    # the call may have started during the download: ask again right before the switch
    readiness = may_apply_now(activity())
    if not readiness.ready:
        return CheckResult("waiting", f"{version} downloaded and verified; {readiness.reason}", version)
    try:
        applied = apply_release(root, version, downloaded.path, entry, health_timeout=health_timeout)
    except ApplyError as exc:
        return CheckResult("failed", f"{exc}; {current} keeps running", version)
    return CheckResult("applied" if applied.healthy else "rolled_back", applied.reason, version, applied)
