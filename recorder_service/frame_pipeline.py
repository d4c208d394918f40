"""What a capture session grabs, built from the admin's recorder policy: the screen source (all
monitors as one canvas, or the primary) and the masking around it.

One place composes the grabber so that the capture session stays ignorant of policy: it calls
``build_grabber(policy)`` and gets a ``Grabber``. With masking rules, that grabber blacks out
every masked region and window in each frame before returning it, so nothing masked reaches the
encoder, and exposes ``auto_pause``: the name of the pause rule whose window is on screen (the
frames are all black meanwhile), for the session to pause the recording and mark the timeline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from recorder_service.capture import Grabber, MssGrabber
from recorder_service.masking import (
    Canvas,
    MaskPlan,
    apply_mask,
    has_window_rules,
    merge_listings,
    plan_mask,
)
from recorder_service.monitors import select_region
from recorder_service.windows import WindowInfo, WindowLister, default_lister
from tandem_protocol.recorder_policy import MaskRule, RecorderPolicy

log = logging.getLogger(__name__)

WINDOW_REFRESH = 0.2  # re-list windows at least this often (and at once when the desktop changed)
CANVAS_REFRESH = 2.0  # re-read the monitor layout at least this often (and with each window list)
_LOG_EVERY = 10.0


def build_grabber(policy: RecorderPolicy) -> Grabber:
    """All monitors as one canvas, or the primary: ``monitors.select_region`` picks the region,
    for the grabber and the mask canvas alike."""
    monitor = policy.monitors
    inner = MssGrabber(monitor)
    if not policy.masking:
        return inner
    return MaskingGrabber(inner, policy.masking, canvas=MssCanvas(monitor))


def auto_pause_of(grabber: Grabber) -> str | None:
    """The pause rule whose window is on screen now (None: record), for any grabber."""
    value = getattr(grabber, "auto_pause", None)
    return value if isinstance(value, str) else None


class CanvasSource(Protocol):
    def canvas(self, frame_size: tuple[int, int], *, fresh: bool = False) -> Canvas | None:
        """Where the grabbed frame (width, height) sits on the virtual screen; None if unknown.
        ``fresh``: read the layout again now rather than from a cache."""
        ...

    def close(self) -> None: ...


class MssCanvas:
    """The grabbed monitor's place on the virtual screen, as mss (the grabber's library) sees it.
    A handle of its own, opened lazily in the grab thread (mss handles are thread-bound);
    re-read when the frame's size no longer matches or every few seconds."""

    def __init__(self, monitor: int | str, clock: Callable[[], float] = time.monotonic) -> None:
        self._monitor = monitor
        self._clock = clock
        self._sct: Any = None
        self._read_at = 0.0
        self.error = ""  # why the last answer was None

    def canvas(self, frame_size: tuple[int, int], *, fresh: bool = False) -> Canvas | None:
        try:
            if fresh or self._sct is None or self._clock() - self._read_at >= CANVAS_REFRESH:
                self._reopen()
            geometry = self._geometry()
            if geometry is None or (geometry.width, geometry.height) != frame_size:
                self._reopen()  # the layout changed since we read it
                geometry = self._geometry()
        except Exception as exc:  # mss raises ScreenShotError, but also OSError/ctypes errors
            self.error = f"monitor layout unavailable: {exc}"  # the grabber logs it, rate-limited
            return None
        if geometry is None or (geometry.width, geometry.height) != frame_size:
            self.error = f"monitor {self._monitor} is not the {frame_size[0]}x{frame_size[1]} frame grabbed"
            return None
        self.error = ""
        return geometry

    def _geometry(self) -> Canvas | None:
        region = select_region(self._sct.monitors, self._monitor)  # the grabber's choice too
        return Canvas(region.left, region.top, region.width, region.height)

    def _reopen(self) -> None:
        import mss

        self.close()
        factory = getattr(mss, "MSS", None) or mss.mss
        self._sct = factory()
        self._read_at = self._clock()

    def close(self) -> None:
        if self._sct is not None:
            self._sct.close()
            self._sct = None


class MaskingGrabber:
    """Lists the windows, grabs, asks the lister whether anything changed meanwhile (and if so
    lists again: a window mapped or moved just before the screenshot is on the second list), then
    blacks out what the rules name wherever either list put it. Used and closed in one thread
    (the capture's grab thread), like the grabber it wraps."""

    def __init__(
        self,
        inner: Grabber,
        rules: Sequence[MaskRule],
        *,
        canvas: CanvasSource,
        lister_factory: Callable[[], WindowLister] = default_lister,
        clock: Callable[[], float] = time.monotonic,
        on_auto_pause: Callable[[str | None], None] | None = None,
    ) -> None:
        self._inner = inner
        self._rules = tuple(rules)
        self._window_rules = has_window_rules(self._rules)
        self._canvas = canvas
        self._lister_factory = lister_factory
        self._lister: WindowLister | None = None
        self._clock = clock
        self._windows: list[WindowInfo] | None = None
        self._listed_at: float | None = None
        self._relisted = False  # the windows were read again: read the monitor layout again too
        self._last_log = -_LOG_EVERY
        self.on_auto_pause = on_auto_pause  # called from the grab thread when auto_pause changes
        self.auto_pause: str | None = None
        self.error = ""  # why the last frame was blacked out whole (listing/layout failure), or ""
        self.last_plan = MaskPlan()

    def grab(self) -> np.ndarray:
        if not self._window_rules:
            frame = self._inner.grab()
            height, width = frame.shape[:2]
            return apply_mask(frame, plan_mask(self._rules, [], Canvas(0, 0, width, height)))
        before = self._windows_before()
        frame = self._inner.grab()
        windows = self._windows_after(before)
        height, width = frame.shape[:2]
        # With the window list, the monitor layout is re-read (0.6 ms): a monitor added left of
        # the primary moves every window's place on the captured canvas.
        canvas = self._canvas.canvas((width, height), fresh=self._relisted)
        self._relisted = False
        if canvas is None:
            why = getattr(self._canvas, "error", "") or "unknown"
            self._fail(f"the grabbed monitor's position on the screen is unknown ({why})")
            plan = MaskPlan(full=True)
        else:
            plan = plan_mask(self._rules, windows, canvas)
            if windows is not None:
                self.error = ""
                self._set_auto_pause(plan.pause_rule)
        self.last_plan = plan
        return apply_mask(frame, plan)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            if self._lister is not None:
                self._lister.close()
                self._lister = None
            self._canvas.close()

    # -- internals -------------------------------------------------------------------------
    def _windows_before(self) -> list[WindowInfo] | None:
        """The cached list, re-read when older than WINDOW_REFRESH or when the desktop changed.
        After a failure, the next try waits WINDOW_REFRESH (frames are black meanwhile)."""
        stale = self._listed_at is None or self._clock() - self._listed_at >= WINDOW_REFRESH
        if not stale and self._windows is not None:
            stale = self._changed()
        return self._list() if stale else self._windows

    def _windows_after(self, before: list[WindowInfo] | None) -> list[WindowInfo] | None:
        if before is None or not self._changed():
            return before
        after = self._list()
        return None if after is None else merge_listings(before, after)

    def _changed(self) -> bool:
        if self._lister is None:
            return True
        try:
            return self._lister.changed()
        except Exception:  # the next listing says what is wrong
            return True

    def _list(self) -> list[WindowInfo] | None:
        self._listed_at = self._clock()
        self._relisted = True
        try:
            if self._lister is None:
                self._lister = self._lister_factory()
            self._windows = self._lister.list_windows()
        except Exception as exc:  # never leak: any failure → the whole frame is blacked out
            self._windows = None
            self._fail(f"window list unavailable: {exc}")
        return self._windows

    def _fail(self, why: str) -> None:
        self.error = why
        now = self._clock()
        if now - self._last_log >= _LOG_EVERY:
            self._last_log = now
            log.error("masking: %s; the whole frame is blacked out", why)

    def _set_auto_pause(self, rule: str | None) -> None:
        if rule == self.auto_pause:
            return
        self.auto_pause = rule
        log.info("masking: auto-pause %s", f"on (rule {rule!r})" if rule else "off")
        if self.on_auto_pause is not None:
            self.on_auto_pause(rule)
