"""Masking at capture: what must never be recorded, blacked out in the frame before it leaves the
grabber (so it reaches no encoder, spool or upload).

``plan_mask`` is pure: the admin's rules + the window list + where the captured canvas sits on
the virtual screen → the rectangles to black out, and the pause rule whose window is on screen.
``apply_mask`` fills them black, in place, on the BGRA frame: numpy slices (the recorder bundle
carries no OpenCV, 172 MB for this one fill; tests/unit/test_masking_fill.py holds the fill to
``cv2.rectangle(..., cv2.FILLED)`` byte for byte).

Fail closed: when the window list is unknown (``windows is None``: the lister failed) and any
window rule exists, the plan is the whole frame — a card-payment form must not leak because the
window manager could not be asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from recorder_service.windows import WindowInfo
from tandem_protocol.events import ScreenAutoPause
from tandem_protocol.recorder_policy import MaskRule

Rect = tuple[int, int, int, int]  # x, y, width, height
BLACK = (0, 0, 0, 255)  # BGRA: opaque black


@dataclass(frozen=True, slots=True)
class Canvas:
    """The grabbed area in virtual-screen pixels: its top-left and its size."""

    left: int
    top: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class MaskPlan:
    rects: tuple[Rect, ...] = ()  # canvas pixels, clipped, non-empty
    full: bool = False  # black out the whole frame
    pause_rule: str | None = None  # name of the first pause rule whose window is on the canvas


def clip(rect: Rect, canvas: Canvas) -> Rect | None:
    """A virtual-screen rectangle in canvas pixels, cut to the canvas; None if outside it."""
    x, y, w, h = rect
    x0 = max(x - canvas.left, 0)
    y0 = max(y - canvas.top, 0)
    x1 = min(x - canvas.left + w, canvas.width)
    y1 = min(y - canvas.top + h, canvas.height)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0


def hull(a: Rect, b: Rect) -> Rect:
    """The smallest rectangle holding both."""
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return x0, y0, x1 - x0, y1 - y0


def merge_listings(before: Sequence[WindowInfo], after: Sequence[WindowInfo]) -> list[WindowInfo]:
    """The windows listed before and after a screenshot, when the desktop changed in between: a
    window counts wherever either listing put it, under either title, and one that moved also
    over the box spanning both places (dragged, it may have been anywhere on the way)."""
    if list(before) == list(after):
        return list(after)
    out = [*before, *after]
    earlier = {w.wid: w for w in before if w.wid}
    for w in after:
        old = earlier.get(w.wid)
        if old is not None and old.rect != w.rect:
            box = hull(old.rect, w.rect)
            out += [replace(old, rect=box), replace(w, rect=box)]
    return out


def has_window_rules(rules: Sequence[MaskRule]) -> bool:
    return any(r.kind == "window" for r in rules)


def plan_mask(rules: Sequence[MaskRule], windows: Sequence[WindowInfo] | None, canvas: Canvas) -> MaskPlan:
    """Region rules are in canvas pixels (what the admin sees in a recording); window rectangles
    come in virtual-screen pixels and are moved by the canvas origin (multi-monitor layouts)."""
    whole = Canvas(0, 0, canvas.width, canvas.height)
    rects: list[Rect] = []
    for rule in rules:
        if rule.kind == "region" and rule.rect is not None:
            cut = clip(rule.rect, whole)
            if cut is not None:
                rects.append(cut)
    window_rules = [r for r in rules if r.kind == "window"]
    if not window_rules:
        return MaskPlan(tuple(rects))
    if windows is None:
        return MaskPlan(tuple(rects), full=True)
    pause_rule: str | None = None
    for window in windows:
        cut = clip(window.rect, canvas)
        if cut is None:
            continue  # not on the captured canvas (another monitor, off screen)
        for rule in window_rules:
            if rule.title_matches(window.title, window.app):
                # A pause rule's window is blacked out too: the frame that shows it first is
                # grabbed before anyone could pause.
                rects.append(cut)
                if rule.action == "pause" and pause_rule is None:
                    pause_rule = rule.name
                break
    return MaskPlan(tuple(rects), full=pause_rule is not None, pause_rule=pause_rule)


def apply_mask(frame: np.ndarray, plan: MaskPlan) -> np.ndarray:
    """Black out the plan on a BGRA frame (BGR and grey too), in place when it is writable
    (mss's is); returns the frame that now carries the mask. Rectangles are cut to the frame
    (one partly or wholly off it, or with a negative corner, masks only what is on it; numpy
    would wrap a negative index round to the other edge); an empty one (width or height ≤ 0,
    which ``plan_mask`` never makes) masks nothing."""
    if not plan.full and not plan.rects:
        return frame
    if not (frame.flags.writeable and frame.flags.c_contiguous):
        # A C-contiguous copy, as a fresh grab is: the 4-byte pixel view below needs it.
        frame = np.array(frame, order="C", copy=True)
    height, width = frame.shape[:2]
    target, value = _fill_target(frame)
    for x, y, w, h in ((0, 0, width, height),) if plan.full else plan.rects:
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, width), min(y + h, height)
        if x1 > x0 and y1 > y0:
            target[y0:y1, x0:x1] = value
    return frame


def _fill_target(frame: np.ndarray) -> tuple[np.ndarray, object]:
    """The array to assign to and the value that paints a pixel black. BGRA uint8: the frame
    seen as one uint32 per pixel, so the fill is a plain 4-byte pattern (assigning the 4-tuple
    per pixel instead takes ~40 times longer than opencv did); one-colour values (BGR or grey
    black: all zeros) as a scalar, a memset."""
    channels = frame.shape[2] if frame.ndim == 3 else 1
    if channels > len(BLACK):
        raise ValueError(f"masking: a frame of {channels} channels (BGRA, BGR or grey expected)")
    colour = BLACK[:channels]  # what opencv paints too: the colour's first ``channels`` values
    if len(set(colour)) == 1:
        return frame, frame.dtype.type(colour[0])
    if frame.dtype == np.uint8 and channels == 4:
        pixel = np.frombuffer(bytes(colour), dtype=np.uint32)[0]  # the machine's byte order
        return frame.view(np.uint32)[..., 0], pixel
    return frame, np.array(colour, dtype=frame.dtype)


class AutoPauseTracker:
    """Turns the grabber's ``auto_pause`` (the pause rule on screen, or None), read after each
    grab with the frame's server time, into the ``screen.auto_pause`` messages for the server:
    one when a rule's window appears (open span), one when it goes (the same span, ended)."""

    def __init__(self, interaction_id: str) -> None:
        self._interaction_id = interaction_id
        self._open: ScreenAutoPause | None = None
        self._ended: list[ScreenAutoPause] = []

    @property
    def active(self) -> str | None:
        return None if self._open is None else self._open.rule

    def update(self, rule: str | None, at: float) -> list[ScreenAutoPause]:
        if rule == self.active:
            return []
        out = self.close(at)
        if rule is not None:
            self._open = ScreenAutoPause(self._interaction_id, rule, at)
            out.append(self._open)
        return out

    def close(self, at: float) -> list[ScreenAutoPause]:
        """The capture stops: an open span ends here."""
        if self._open is None:
            return []
        ended = replace(self._open, ended_at=max(at, self._open.started_at))
        self._open = None
        self._ended.append(ended)
        return [ended]

    def spans(self) -> list[ScreenAutoPause]:
        """Every span of this capture as it stands, to send again after the channel reconnects
        (messages sent while it was down are lost; the server takes a repeat as a no-op)."""
        return [*self._ended, *([self._open] if self._open is not None else [])]
