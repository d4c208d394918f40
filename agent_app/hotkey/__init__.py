"""Pause from anywhere: a global hotkey that fires while another application has the focus.

One interface (`GlobalHotKey`: ``start`` / ``stop``; the callback runs on the listener's own
thread, so the caller posts it to the Qt thread) and one adapter per platform: X11 through
python-xlib's XGrabKey (`x11`), Windows through RegisterHotKey (`windows`). Wayland has no global
key grab for ordinary clients: there `create` says so and the tray and the button remain.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Protocol

from agent_app.hotkey.keys import HotKey, HotKeyError, parse_hotkey

__all__ = ["GlobalHotKey", "HotKey", "HotKeyError", "create", "parse_hotkey"]


class GlobalHotKey(Protocol):
    def start(self) -> None:
        """Register the key; ``HotKeyError`` if the system refuses it (taken by another program)."""

    def stop(self) -> None: ...


def create(hotkey: HotKey, on_press: Callable[[], None]) -> GlobalHotKey:
    if sys.platform == "win32":
        from agent_app.hotkey.windows import WindowsHotKey

        return WindowsHotKey(hotkey, on_press)
    if os.environ.get("DISPLAY"):
        from agent_app.hotkey.x11 import X11HotKey

        return X11HotKey(hotkey, on_press)
    raise HotKeyError(
        "no global hotkey here: it needs an X11 display (Wayland does not allow one); "
        "pause with the button or the tray menu"
    )
