"""The recorder's heartbeat: what the administrators' fleet page shows about this PC's recorder.

``build_heartbeat`` is pure: each figure comes from a callable (the controller's state, the
spool, the uploader, the disk, the clock), so it is tested without any of them. A source that
raises does not cost the heartbeat: its field is left empty and the error is reported in
``last_error`` — a heartbeat that stopped because the spool could not be read would look like
a recorder that is down, which is worse than one that says what it cannot read.

``HeartbeatSender`` sends one every ``interval()`` seconds (the policy's ``heartbeat_seconds``,
read again each time so a ``recorder.policy`` push applies at the next beat) through a ``send``
coroutine that returns False while the channel is down: a missed beat is not queued, the server
counts the recorder offline after three missed ones and that is the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from recorder_service.clock import ClockSync
from recorder_service.quota import DiskUsage, quota_problem
from recorder_service.updater.layout import install_root, installed_version, update_summary
from tandem_protocol.events import ClientMessageType, Envelope, EventType
from tandem_protocol.recorder_health import STATES, Heartbeat, UploadProgress
from tandem_protocol.recorder_policy import PolicyError, RecorderPolicy

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class HealthSources:
    state: Callable[[], str]  # one of tandem_protocol.recorder_health.STATES
    interaction: Callable[[], str | None]
    spool: Callable[[], tuple[int, int]]  # (bytes in the spool, segments waiting for the server)
    upload: Callable[[], UploadProgress | None]
    last_error: Callable[[], str]
    disk: Callable[[], tuple[int, float]]  # (free bytes, free percent) where the spool lives
    clock: Callable[[], tuple[float | None, float | None]]  # (offset, accuracy); None: not synced
    update: Callable[[], tuple[str, str]] = lambda: ("", "")  # the PC's last update check (state, why)


def build_heartbeat(sources: HealthSources, *, version: str, host: str, interval: float) -> Heartbeat:
    problems: list[str] = []

    def read(what: str, source: Callable[[], T], default: T) -> T:
        try:
            return source()
        except Exception as exc:  # any failure of a source is reported, never fatal
            problems.append(f"{what} unreadable: {exc}")
            return default

    state = read("state", sources.state, "failed")
    if state not in STATES:
        problems.append(f"unknown state {state!r}")
        state = "failed"
    spool_bytes, pending = read("spool", sources.spool, (0, 0))
    no_disk: tuple[int | None, float | None] = (None, None)
    no_clock: tuple[float | None, float | None] = (None, None)
    disk = read("disk", sources.disk, no_disk)
    offset, accuracy = read("clock", sources.clock, no_clock)
    error = read("last error", sources.last_error, "")
    update_state, update_detail = read("update state", sources.update, ("", ""))
    return Heartbeat(
        version=version,
        state=state,
        host=host,
        interaction_id=read("interaction", sources.interaction, None),
        spool_bytes=max(0, int(spool_bytes)),
        segments_pending=max(0, int(pending)),
        upload=read("upload", sources.upload, None),
        last_error="; ".join([*problems, error] if error else problems)[:500],
        free_disk_bytes=disk[0],
        free_disk_percent=None if disk[1] is None else round(min(100.0, max(0.0, disk[1])), 2),
        clock_offset=offset,
        clock_accuracy=accuracy,
        interval=interval,
        update_state=update_state,
        update_detail=update_detail,
    )


def recorder_version() -> str:
    return installed_version()


def host_name() -> str:
    return socket.gethostname()[:255]


def disk_free(path: Path) -> tuple[int, float]:
    usage = shutil.disk_usage(path)
    return usage.free, 100.0 * usage.free / usage.total if usage.total else 0.0


def directory_bytes(root: Path) -> int:
    """Bytes of every file under ``root`` (the spool): a file vanishing mid-walk is skipped."""
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(folder, name)).st_size
    return total


class PolicyWatch:
    """The newest recorder policy the server sent (``screen.start``'s ``policy`` or a
    ``recorder.policy`` push), fed every envelope by the service's dispatcher; an invalid one is
    logged and ignored (the previous stays)."""

    def __init__(self, policy: RecorderPolicy | None = None) -> None:
        self.policy = policy or RecorderPolicy()

    def observe(self, envelope: Envelope) -> None:
        raw: Any = None
        if envelope.type == EventType.RECORDER_POLICY:
            raw = envelope.data
        elif envelope.type == EventType.SCREEN_START:
            raw = envelope.data.get("policy")
        if raw is None:
            return
        try:
            self.policy = RecorderPolicy.from_dict(raw)
        except PolicyError as exc:
            log.error("recorder policy from the server ignored: %s", exc)

    def heartbeat_seconds(self) -> float:
        return self.policy.heartbeat_seconds


_MODES = {"capturing": "recording", "paused": "paused", "finalising": "stopping"}


def spool_quota_problem(spool_root: Path, policy: RecorderPolicy) -> str:
    """Why the spool quota stops capture now ("" when it does not): the capture's own rule
    (``recorder_service.quota``), measured here so the heartbeat says it between captures too."""
    usage = shutil.disk_usage(spool_root)
    return quota_problem(
        DiskUsage(usage.free, usage.total, directory_bytes(spool_root)),
        min_free_percent=policy.spool_min_free_percent,
        max_mb=policy.spool_max_mb,
    )


def service_sources(
    controller: Any,
    spool_root: Path,
    uploader: Any,
    clock: ClockSync,
    policy: Callable[[], RecorderPolicy],
    spool_problem: Callable[[], str] | None = None,
) -> HealthSources:
    """The running service's figures: the controller's mode and interaction, the spool directory,
    the uploader's ``stats()`` (pending segments, the segment in flight, its last error), the
    disk under the spool and the clock. ``spool_problem`` (default: the quota rule on the spool
    and ``policy()``): why capture is stopped by the spool quota, "" while it is not."""
    if spool_problem is None:
        spool_problem = lambda: spool_quota_problem(spool_root, policy())  # noqa: E731

    def state() -> str:
        if spool_problem():
            return "spool_full"
        mode = str(getattr(controller, "mode", "idle"))
        if mode in _MODES:
            return _MODES[mode]
        return "uploading" if getattr(uploader.stats(), "state", "") == "uploading" else "idle"

    def upload() -> UploadProgress | None:
        current = getattr(uploader.stats(), "current", None)
        if current is None:
            return None
        segment = str(getattr(current, "segment", ""))  # "<interaction>/<run>/<seq>"
        return UploadProgress(segment, int(getattr(current, "offset", 0)), int(getattr(current, "length", 0)))

    def last_error() -> str:
        return "; ".join(e for e in (spool_problem(), str(getattr(uploader.stats(), "last_error", ""))) if e)

    return HealthSources(
        state=state,
        interaction=lambda: getattr(controller, "current", None),
        spool=lambda: (directory_bytes(spool_root), int(getattr(uploader.stats(), "pending_segments", 0))),
        upload=upload,
        last_error=last_error,
        disk=lambda: disk_free(spool_root),
        clock=lambda: (clock.offset, clock.accuracy) if clock.synced else (None, None),
        update=lambda: update_summary(install_root()),
    )


def start_heartbeat(
    channel: Any,
    controller: Any,
    spool_root: Path,
    uploader: Any,
    clock: ClockSync,
    watch: PolicyWatch,
    stop: asyncio.Event,
) -> asyncio.Task[None]:
    """The service's heartbeat task: sent on ``channel`` (an ``EventChannel``) until ``stop``."""

    async def send(beat: Heartbeat) -> bool:
        return bool(await channel.send_message(ClientMessageType.RECORDER_HEARTBEAT.value, beat.to_dict()))

    sources = service_sources(controller, spool_root, uploader, clock, lambda: watch.policy)
    sender = HeartbeatSender(sources, send, watch.heartbeat_seconds)
    return asyncio.create_task(sender.run(stop), name="heartbeat")


class HeartbeatSender:
    def __init__(
        self,
        sources: HealthSources,
        send: Callable[[Heartbeat], Awaitable[bool]],
        interval: Callable[[], float],
        *,
        version: str | None = None,
        host: str | None = None,
    ) -> None:
        self._sources = sources
        self._send = send
        self._interval = interval
        self._version = version or recorder_version()
        self._host = host or host_name()
        self.sent = 0

    def build(self) -> Heartbeat:
        return build_heartbeat(
            self._sources, version=self._version, host=self._host, interval=self._interval()
        )

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            delivered = False
            try:
                # Built off the loop: walking a large spool or a slow disk must not stall commands.
                beat = await asyncio.to_thread(self.build)
                delivered = await self._send(beat)
                self.sent += delivered
            except Exception:  # a heartbeat must never take the recorder down
                log.exception("heartbeat not sent")
            # Not delivered (no connection yet): try again soon, so the first beat after a
            # (re)connection comes within a second, not a whole interval later. Delivered: the
            # next is due an interval later, the interval read again each second so that a
            # shorter one pushed meanwhile applies now, not after the old one ran out.
            started = asyncio.get_running_loop().time()
            while not stop.is_set():
                due = started + (max(1.0, self._interval()) if delivered else RETRY_SECONDS)
                remaining = due - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=min(RETRY_SECONDS, remaining))
