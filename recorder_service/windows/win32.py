"""Windows window list through the Win32 API (ctypes; no extra package).

``EnumWindows`` gives the top-level windows in z-order, top first; a window counts when it is
visible (``IsWindowVisible``), not minimised (``IsIconic``) and not cloaked by DWM (a UWP app
suspended, a window on another virtual desktop). Its rectangle is DWM's extended frame bounds
(``DwmGetWindowAttribute(DWMWA_EXTENDED_FRAME_BOUNDS)``: the visible frame, without the invisible
resize borders) or, without DWM, ``GetWindowRect``. The application is the executable's name and
the window class. Coordinates are physical virtual-screen pixels as mss captures them: the
recorder process is per-monitor DPI aware (mss makes it so on Windows).

Importable on any platform: ctypes' Windows parts are reached only when the real API is built.
The logic (filtering, rectangles, names) sits in ``Win32WindowLister`` over a small ``Win32Api``
interface and is tested on Linux with a fake of it.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any, Protocol

from recorder_service.windows.base import WindowInfo, WindowListError

DWMWA_EXTENDED_FRAME_BOUNDS = 9
DWMWA_CLOAKED = 14
PROCESS_QUERY_LIMITED_INFORMATION = 0x1000


class Win32Api(Protocol):
    def top_level_windows(self) -> list[int]:
        """Handles in z-order, topmost first (EnumWindows)."""
        ...

    def is_visible(self, hwnd: int) -> bool: ...

    def is_iconic(self, hwnd: int) -> bool: ...

    def is_cloaked(self, hwnd: int) -> bool: ...

    def title(self, hwnd: int) -> str: ...

    def class_name(self, hwnd: int) -> str: ...

    def exe_path(self, hwnd: int) -> str: ...

    def bounds(self, hwnd: int) -> tuple[int, int, int, int] | None:
        """left, top, right, bottom; None if the window is gone."""
        ...


def rect_from_ltrb(ltrb: tuple[int, int, int, int]) -> tuple[int, int, int, int] | None:
    """A Win32 RECT as x, y, width, height; None for an empty one."""
    left, top, right, bottom = ltrb
    if right <= left or bottom <= top:
        return None
    return left, top, right - left, bottom - top


def exe_basename(path: str) -> str:
    """``C:\\Program Files\\App\\app.exe`` → ``app.exe`` (on any platform)."""
    return path.replace("\\", "/").rsplit("/", 1)[-1]


class Win32WindowLister:
    def __init__(self, api: Win32Api | None = None) -> None:
        self._api = api

    def list_windows(self) -> list[WindowInfo]:
        api = self._api or self._real_api()
        try:
            handles = api.top_level_windows()
        except OSError as exc:
            raise WindowListError(f"EnumWindows failed: {exc}") from exc
        out: list[WindowInfo] = []
        for hwnd in reversed(handles):  # bottom to top, like the X11 adapter
            try:
                if not api.is_visible(hwnd) or api.is_iconic(hwnd) or api.is_cloaked(hwnd):
                    continue
                ltrb = api.bounds(hwnd)
                rect = rect_from_ltrb(ltrb) if ltrb is not None else None
                if rect is None:
                    continue
                app = " ".join(p for p in (exe_basename(api.exe_path(hwnd)), api.class_name(hwnd)) if p)
                out.append(WindowInfo(api.title(hwnd), app, rect, hwnd))
            except OSError:
                continue  # the window closed while we looked at it
        return out

    def changed(self) -> bool:
        return True  # no event hook here: masking re-lists on its periodic refresh

    def close(self) -> None:
        self._api = None

    def _real_api(self) -> Win32Api:
        if sys.platform != "win32":
            raise WindowListError("the Win32 window list works on Windows only")
        self._api = _CtypesApi()
        return self._api


class _CtypesApi:  # pragma: no cover - Windows only
    def __init__(self) -> None:
        from ctypes import wintypes

        self._wt = wintypes
        windll: Any = getattr(ctypes, "windll")  # noqa: B009 - absent off Windows
        self._user32 = windll.user32
        self._kernel32 = windll.kernel32
        try:
            self._dwm: Any = windll.dwmapi
        except OSError:
            self._dwm = None
        self._enum_proc = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.HWND, wintypes.LPARAM)  # type: ignore[attr-defined,unused-ignore]

    def top_level_windows(self) -> list[int]:
        found: list[int] = []

        def collect(hwnd: int, _lparam: int) -> bool:
            found.append(int(hwnd))
            return True

        if not self._user32.EnumWindows(self._enum_proc(collect), 0):
            raise OSError("EnumWindows returned FALSE")
        return found

    def is_visible(self, hwnd: int) -> bool:
        return bool(self._user32.IsWindowVisible(hwnd))

    def is_iconic(self, hwnd: int) -> bool:
        return bool(self._user32.IsIconic(hwnd))

    def is_cloaked(self, hwnd: int) -> bool:
        if self._dwm is None:
            return False
        value = ctypes.c_int(0)
        hr = self._dwm.DwmGetWindowAttribute(hwnd, DWMWA_CLOAKED, ctypes.byref(value), ctypes.sizeof(value))
        return hr == 0 and value.value != 0

    def title(self, hwnd: int) -> str:
        n = self._user32.GetWindowTextLengthW(hwnd)
        buf = ctypes.create_unicode_buffer(n + 1)
        self._user32.GetWindowTextW(hwnd, buf, n + 1)
        return buf.value

    def class_name(self, hwnd: int) -> str:
        buf = ctypes.create_unicode_buffer(256)
        self._user32.GetClassNameW(hwnd, buf, 256)
        return buf.value

    def exe_path(self, hwnd: int) -> str:
        pid = self._wt.DWORD(0)
        self._user32.GetWindowThreadProcessId(hwnd, ctypes.byref(pid))
        handle = self._kernel32.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, False, pid.value)
        if not handle:
            return ""
        try:
            size = self._wt.DWORD(1024)
            buf = ctypes.create_unicode_buffer(size.value)
            if not self._kernel32.QueryFullProcessImageNameW(handle, 0, buf, ctypes.byref(size)):
                return ""
            return buf.value
        finally:
            self._kernel32.CloseHandle(handle)

    def bounds(self, hwnd: int) -> tuple[int, int, int, int] | None:
        rect = self._wt.RECT()
        if self._dwm is not None:
            hr = self._dwm.DwmGetWindowAttribute(
                hwnd, DWMWA_EXTENDED_FRAME_BOUNDS, ctypes.byref(rect), ctypes.sizeof(rect)
            )
            if hr == 0:
                return rect.left, rect.top, rect.right, rect.bottom
        if not self._user32.GetWindowRect(hwnd, ctypes.byref(rect)):
            return None
        return rect.left, rect.top, rect.right, rect.bottom
