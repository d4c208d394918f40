"""X11 window list from the window manager's standard properties (EWMH/ICCCM), via python-xlib.

The window manager publishes its managed client windows in ``_NET_CLIENT_LIST_STACKING`` (bottom
to top; ``_NET_CLIENT_LIST`` as a fallback) on the root window. For each client: title from
``_NET_WM_NAME`` (UTF-8) or ``WM_NAME``, application from ``WM_CLASS``, position translated to
root coordinates, grown by ``_NET_FRAME_EXTENTS`` (the decorations the WM draws around it — a
title bar showing "Card payment" must be masked too). Unmapped windows (minimised, other virtual
desktop) and those in ``_NET_WM_STATE_HIDDEN`` are skipped: they are not on the screen.

Without an EWMH window manager, the ICCCM way: the root's mapped children, each with the client
that carries ``WM_STATE`` (itself or a descendant).

The adapter also listens (root SubstructureNotify + PropertyChange, PropertyChange on each
client) so that ``changed()`` can tell masking to re-list at once when a window appears, moves or
is renamed, instead of waiting for its periodic refresh.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from recorder_service.windows.base import WindowInfo, WindowListError

log = logging.getLogger(__name__)

_MAX_DEPTH = 4  # ICCCM fallback: how deep to look for the client under a frame window
# Property changes that can change the list: which windows, their names, state, decorations.
RELEVANT_PROPERTIES = (
    "_NET_CLIENT_LIST_STACKING",
    "_NET_CLIENT_LIST",
    "_NET_WM_NAME",
    "WM_NAME",
    "WM_CLASS",
    "_NET_WM_STATE",
    "_NET_FRAME_EXTENTS",
    "WM_STATE",
)


def frame_rect(
    client_origin: tuple[int, int], size: tuple[int, int], extents: Sequence[int] | None
) -> tuple[int, int, int, int]:
    """The window's rectangle on the root, decorations included. ``extents`` is
    ``_NET_FRAME_EXTENTS``: left, right, top, bottom."""
    x, y = client_origin
    w, h = size
    if extents is not None and len(extents) == 4:
        left, right, top, bottom = (max(0, int(v)) for v in extents)
        return x - left, y - top, w + left + right, h + top + bottom
    return x, y, w, h


def app_name(wm_class: tuple[str, str] | None) -> str:
    """WM_CLASS as one string a rule's regex can search: "instance Class"."""
    if not wm_class:
        return ""
    return " ".join(part for part in wm_class if part)


def decode_title(net_wm_name: bytes | str | None, wm_name: Any) -> str:
    """``_NET_WM_NAME`` (UTF-8) wins over ``WM_NAME`` (Latin-1 or compound text)."""
    if isinstance(net_wm_name, bytes):
        return net_wm_name.decode("utf-8", "replace")
    if isinstance(net_wm_name, str):
        return net_wm_name
    if isinstance(wm_name, bytes):
        return wm_name.decode("latin-1")
    return str(wm_name) if wm_name else ""


class X11WindowLister:
    """One X connection, opened lazily in the thread that lists (the grab thread)."""

    def __init__(self, display_name: str | None = None) -> None:
        self._name = display_name
        self._d: Any = None
        self._root: Any = None
        self._atoms: dict[str, int] = {}
        self._relevant: set[int] = set()
        self._watched: set[int] = set()

    # -- the interface ---------------------------------------------------------------------
    def list_windows(self) -> list[WindowInfo]:
        from Xlib import error as xerror

        try:
            self._connect()
            self._drain_events()
            clients = self._clients()
            if clients is None:
                return self._icccm_windows()
            out: list[WindowInfo] = []
            for wid in clients:
                info = self._client_info(wid)
                if info is not None:
                    out.append(info)
            return out
        except WindowListError:
            self.close()
            raise
        except (xerror.DisplayError, xerror.ConnectionClosedError, OSError) as exc:
            self.close()
            raise WindowListError(f"X11 window list unavailable: {exc}") from exc
        except xerror.XError as exc:  # a root-window request failed: nothing can be trusted
            raise WindowListError(f"X11 window list failed: {exc}") from exc

    def changed(self) -> bool:
        if self._d is None:
            return True
        try:
            # A round trip first: every event the server generated before now (e.g. before the
            # screenshot another connection just took) is then in our queue.
            self._d.sync()
            return self._drain_events() > 0
        except Exception:  # a broken connection shows up on the next list_windows
            return True

    def close(self) -> None:
        if self._d is not None:
            try:
                self._d.close()
            except Exception:  # already broken: nothing left to release
                log.debug("closing the X connection failed", exc_info=True)
        self._d = None
        self._root = None
        self._atoms = {}
        self._relevant = set()
        self._watched = set()

    # -- internals -------------------------------------------------------------------------
    def _connect(self) -> None:
        if self._d is not None:
            return
        from Xlib import X
        from Xlib import display as xdisplay

        name = self._name or os.environ.get("DISPLAY")
        if not name:
            raise WindowListError("X11 window list unavailable: DISPLAY is not set")
        try:
            self._d = xdisplay.Display(name)
        except Exception as exc:  # python-xlib raises DisplayError, OSError, even OverflowError
            raise WindowListError(f"X11 window list unavailable: cannot open display {name}: {exc}") from exc
        self._root = self._d.screen().root
        # Structure: the root resized (a monitor added or removed); substructure: top-level
        # windows mapped, moved, restacked; property: the WM's client list changed.
        self._root.change_attributes(
            event_mask=X.StructureNotifyMask | X.SubstructureNotifyMask | X.PropertyChangeMask
        )
        self._d.flush()

    def _atom(self, name: str) -> int:
        atom = self._atoms.get(name)
        if atom is None:
            atom = self._atoms[name] = self._d.intern_atom(name)
        return atom

    def _drain_events(self) -> int:
        """Read every queued event; count those that can change what masking sees (a window
        mapped, moved, restacked, renamed; not e.g. ``_NET_WM_USER_TIME`` on each key press,
        which would re-list the windows on every frame while the agent types)."""
        from Xlib import X

        n = 0
        while self._d.pending_events():
            event = self._d.next_event()
            if event.type != X.PropertyNotify or event.atom in self._relevant_atoms():
                n += 1
        return n

    def _relevant_atoms(self) -> set[int]:
        if not self._relevant:
            self._relevant = {self._atom(name) for name in RELEVANT_PROPERTIES}
        return self._relevant

    def _prop(self, window: Any, name: str, kind: int | None = None) -> Any:
        from Xlib import X

        prop = window.get_full_property(self._atom(name), X.AnyPropertyType if kind is None else kind)
        return None if prop is None else prop.value

    def _clients(self) -> list[int] | None:
        for name in ("_NET_CLIENT_LIST_STACKING", "_NET_CLIENT_LIST"):
            value = self._prop(self._root, name)
            if value is not None:
                return [int(w) for w in value]
        return None

    def _client_info(self, wid: int, frame: Any = None) -> WindowInfo | None:
        """None for a window that is not on screen, or vanished while we looked at it."""
        from Xlib import X
        from Xlib import error as xerror

        window = self._d.create_resource_object("window", wid)
        try:
            if frame is None and window.get_attributes().map_state != X.IsViewable:
                return None
            state = self._prop(window, "_NET_WM_STATE")
            if state is not None and self._atom("_NET_WM_STATE_HIDDEN") in [int(a) for a in state]:
                return None
            title = decode_title(
                self._prop(window, "_NET_WM_NAME", self._atom("UTF8_STRING")), window.get_wm_name()
            )
            app = app_name(window.get_wm_class())
            if frame is not None:  # ICCCM fallback: the frame's own rectangle, borders included
                geom = frame.get_geometry()
                rect = (
                    geom.x,
                    geom.y,
                    geom.width + 2 * geom.border_width,
                    geom.height + 2 * geom.border_width,
                )
            else:
                geom = window.get_geometry()
                origin = self._root.translate_coords(window, 0, 0)
                extents = self._prop(window, "_NET_FRAME_EXTENTS")
                rect = frame_rect((origin.x, origin.y), (geom.width, geom.height), extents)
            self._watch(window)
            return WindowInfo(title, app, rect, wid)
        except (xerror.BadWindow, xerror.BadDrawable, xerror.BadMatch):
            return None  # destroyed between the list and our questions: no longer on screen

    def _watch(self, window: Any) -> None:
        from Xlib import X
        from Xlib import error as xerror

        if window.id in self._watched:
            return
        window.change_attributes(onerror=xerror.CatchError(), event_mask=X.PropertyChangeMask)
        self._watched.add(window.id)

    def _icccm_windows(self) -> list[WindowInfo]:
        from Xlib import X
        from Xlib import error as xerror

        out: list[WindowInfo] = []
        for top in self._root.query_tree().children:  # bottom to top
            try:
                if top.get_attributes().map_state != X.IsViewable:
                    continue
                # No WM at all: nobody sets WM_STATE, the top-level window is the client.
                client = self._find_client(top, _MAX_DEPTH) or top
            except (xerror.BadWindow, xerror.BadDrawable, xerror.BadMatch):
                continue
            info = self._client_info(client.id, frame=top)
            if info is not None:
                out.append(info)
        return out

    def _find_client(self, window: Any, depth: int) -> Any:
        if self._prop(window, "WM_STATE") is not None:
            return window
        if depth <= 0:
            return None
        for child in window.query_tree().children:
            found = self._find_client(child, depth - 1)
            if found is not None:
                return found
        return None
