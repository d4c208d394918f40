"""The global hotkey on Windows: RegisterHotKey (user32, through ctypes) on a thread with its own
message loop; WM_HOTKEY arrives there whichever window has the focus. MOD_NOREPEAT makes a held
key fire once. `stop` posts WM_QUIT to that thread, which unregisters and ends it.

Written against the Win32 documentation and the same `HotKey` the X11 adapter uses (its
modifier and virtual-key mapping is unit-tested on every platform); it runs only on Windows.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable

from agent_app.hotkey.keys import HotKey, HotKeyError

log = logging.getLogger(__name__)
WM_HOTKEY = 0x0312
WM_QUIT = 0x0012
HOTKEY_ID = 0x7A11  # ours within this thread
START_TIMEOUT = 5.0


class WindowsHotKey:
    def __init__(self, hotkey: HotKey, on_press: Callable[[], None]) -> None:
        self.hotkey = hotkey
        self._on_press = on_press
        self._ready = threading.Event()
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._thread_id = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="win-hotkey", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise HotKeyError(f"hotkey {self.hotkey}: Windows did not answer")
        if self._error is not None:
            raise HotKeyError(self._error)

    def stop(self) -> None:
        if sys.platform == "win32" and self._thread_id:
            import ctypes

            ctypes.windll.user32.PostThreadMessageW(self._thread_id, WM_QUIT, 0, 0)
        if self._thread is not None:
            self._thread.join(START_TIMEOUT)

    def _run(self) -> None:
        if sys.platform != "win32":
            self._error = "the Windows hotkey runs on Windows only"
            self._ready.set()
            return
        import ctypes
        from ctypes import wintypes

        user32 = ctypes.windll.user32
        kernel32 = ctypes.windll.kernel32
        self._thread_id = kernel32.GetCurrentThreadId()
        mods, vk = self.hotkey.windows_registration()
        if not user32.RegisterHotKey(None, HOTKEY_ID, mods, vk):
            self._error = f"hotkey {self.hotkey} is already taken by another program; choose another"
            self._ready.set()
            return
        self._ready.set()
        msg = wintypes.MSG()
        try:
            while user32.GetMessageW(ctypes.byref(msg), None, 0, 0) > 0:
                if msg.message == WM_HOTKEY and msg.wParam == HOTKEY_ID:
                    try:
                        self._on_press()
                    except Exception:
                        log.exception("hotkey handler failed")
        finally:
            user32.UnregisterHotKey(None, HOTKEY_ID)
