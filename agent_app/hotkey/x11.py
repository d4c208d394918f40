"""The global hotkey on X11: XGrabKey on the root window (python-xlib), on a display connection
and thread of its own. The X server delivers the key to us whichever window has the focus.

Everything X happens on the listener thread (an Xlib Display is not thread-safe); `start` waits
until the grab is made or refused, so a key taken by another program is reported to the agent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from Xlib import XK, X, error
from Xlib.display import Display

from agent_app.hotkey.keys import Debounce, HotKey, HotKeyError
from agent_app.hotkey.poll_select import install_for_xlib, poll_select

log = logging.getLogger(__name__)
POLL_SECONDS = 0.2  # how soon `stop` is noticed
START_TIMEOUT = 5.0


class X11HotKey:
    def __init__(self, hotkey: HotKey, on_press: Callable[[], None], display: str | None = None) -> None:
        self.hotkey = hotkey
        self._on_press = on_press
        self._display_name = display
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self.presses = 0  # fired (after debouncing): for tests and logs

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="x11-hotkey", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            self.stop()
            raise HotKeyError(f"hotkey {self.hotkey}: the X server did not answer")
        if self._error is not None:
            self.stop()
            raise HotKeyError(self._error)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(START_TIMEOUT)

    def _run(self) -> None:
        try:
            install_for_xlib()
            display = Display(self._display_name)
        except Exception as exc:  # Xlib raises its own DisplayError family and OSError
            self._error = f"hotkey {self.hotkey}: cannot open the X display: {exc}"
            self._ready.set()
            return
        try:
            keycode = self._grab(display)
            self._ready.set()
            if keycode is not None:
                self._loop(display, keycode)
        finally:
            display.close()

    def _grab(self, display: Display) -> int | None:
        keysym = XK.string_to_keysym(self.hotkey.x11_keysym_name)
        keycode = display.keysym_to_keycode(keysym) if keysym else 0
        if not keycode:
            self._error = f"hotkey {self.hotkey}: this keyboard layout has no such key"
            return None
        root = display.screen().root
        catch = error.CatchError(error.BadAccess)
        for mask in self.hotkey.x11_grab_masks():
            root.grab_key(keycode, mask, True, X.GrabModeAsync, X.GrabModeAsync, onerror=catch)
        display.sync()
        if catch.get_error() is not None:
            for mask in self.hotkey.x11_grab_masks():
                root.ungrab_key(keycode, mask)
            display.sync()
            self._error = f"hotkey {self.hotkey} is already taken by another program; choose another"
            return None
        log.info("global hotkey %s registered (X11)", self.hotkey)
        return int(keycode)

    def _loop(self, display: Display, keycode: int) -> None:
        debounce = Debounce()
        while not self._stop.is_set():
            readable, _, _ = poll_select([display.fileno()], [], [], POLL_SECONDS)
            if not readable and not display.pending_events():
                continue
            while display.pending_events():
                event = display.next_event()
                if event.type != X.KeyPress or event.detail != keycode:
                    continue
                if self.hotkey.x11_matches(event.state) and debounce.accept(time.monotonic()):
                    self.presses += 1
                    try:
                        self._on_press()
                    except Exception:
                        log.exception("hotkey handler failed")
        root = display.screen().root
        for mask in self.hotkey.x11_grab_masks():
            root.ungrab_key(keycode, mask)
        display.sync()
