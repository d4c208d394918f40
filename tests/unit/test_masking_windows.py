"""The window listers' pure parts: X11 property decoding and frame rectangles; the Win32 adapter's
filtering and rectangles over a fake of the API (it imports, and refuses clearly, on Linux)."""

from __future__ import annotations

import gc
import sys

import pytest

from recorder_service.windows import WindowInfo, WindowListError, default_lister
from recorder_service.windows.win32 import Win32WindowLister, exe_basename, rect_from_ltrb
from recorder_service.windows.x11 import X11WindowLister, app_name, decode_title, frame_rect


def test_frame_rect_adds_the_decorations() -> None:
    # _NET_FRAME_EXTENTS is left, right, top, bottom.
    assert frame_rect((100, 50), (640, 480), [2, 3, 24, 4]) == (98, 26, 645, 508)
    assert frame_rect((100, 50), (640, 480), None) == (100, 50, 640, 480)
    assert frame_rect((0, 0), (10, 10), [1, 2]) == (0, 0, 10, 10)  # malformed: ignored


def test_titles_and_applications() -> None:
    assert decode_title("Card payment — Checkout".encode(), "ignored") == "Card payment — Checkout"
    assert decode_title(None, b"caf\xe9") == "café"  # WM_NAME is Latin-1
    assert decode_title(None, "plain") == "plain"
    assert decode_title(None, None) == ""
    assert app_name(("xterm", "XTerm")) == "xterm XTerm"
    assert app_name(None) == ""


def test_x11_without_display_raises_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    lister = X11WindowLister()
    with pytest.raises(WindowListError, match="DISPLAY is not set"):
        lister.list_windows()
    assert lister.changed()  # not connected: cannot tell, so "maybe"
    lister.close()


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_x11_unreachable_display_raises_window_list_error() -> None:
    lister = X11WindowLister(":4321")
    with pytest.raises(WindowListError, match="unavailable"):
        lister.list_windows()
    gc.collect()  # python-xlib leaves the failed sockets to the collector: collect them here


class FakeApi:
    """Three windows, top first as EnumWindows gives them."""

    def __init__(self) -> None:
        self.windows: dict[int, dict[str, object]] = {
            1: {
                "title": "Card payment",
                "exe": r"C:\Apps\Shop\shop.exe",
                "cls": "Chrome_WidgetWin_1",
                "bounds": (10, 20, 110, 220),
            },
            2: {"title": "Minimised", "iconic": True, "bounds": (0, 0, 5, 5)},
            3: {"title": "Cloaked", "cloaked": True, "bounds": (0, 0, 5, 5)},
            4: {"title": "Hidden", "visible": False, "bounds": (0, 0, 5, 5)},
            5: {"title": "Empty", "bounds": (5, 5, 5, 9)},
            6: {"title": "Gone", "gone": True},
            7: {"title": "Notepad", "exe": "notepad.exe", "cls": "Notepad", "bounds": (-1900, 0, -1000, 500)},
        }

    def _w(self, hwnd: int) -> dict[str, object]:
        w = self.windows[hwnd]
        if w.get("gone"):
            raise OSError("invalid window handle")
        return w

    def top_level_windows(self) -> list[int]:
        return list(self.windows)

    def is_visible(self, hwnd: int) -> bool:
        return bool(self._w(hwnd).get("visible", True))

    def is_iconic(self, hwnd: int) -> bool:
        return bool(self._w(hwnd).get("iconic", False))

    def is_cloaked(self, hwnd: int) -> bool:
        return bool(self._w(hwnd).get("cloaked", False))

    def title(self, hwnd: int) -> str:
        return str(self._w(hwnd)["title"])

    def class_name(self, hwnd: int) -> str:
        return str(self._w(hwnd).get("cls", ""))

    def exe_path(self, hwnd: int) -> str:
        return str(self._w(hwnd).get("exe", ""))

    def bounds(self, hwnd: int) -> tuple[int, int, int, int] | None:
        b = self._w(hwnd).get("bounds")
        return b if isinstance(b, tuple) else None


def test_win32_lister_keeps_visible_windows_bottom_to_top() -> None:
    windows = Win32WindowLister(FakeApi()).list_windows()
    assert windows == [
        WindowInfo("Notepad", "notepad.exe Notepad", (-1900, 0, 900, 500), 7),
        WindowInfo("Card payment", "shop.exe Chrome_WidgetWin_1", (10, 20, 100, 200), 1),
    ]


def test_win32_pure_helpers() -> None:
    assert rect_from_ltrb((10, 20, 110, 220)) == (10, 20, 100, 200)
    assert rect_from_ltrb((10, 20, 10, 220)) is None
    assert exe_basename(r"C:\Program Files\App\app.exe") == "app.exe"
    assert exe_basename("app.exe") == "app.exe"


@pytest.mark.skipif(sys.platform == "win32", reason="the refusal is for other platforms")
def test_win32_adapter_imports_and_refuses_clearly_off_windows() -> None:
    with pytest.raises(WindowListError, match="Windows only"):
        Win32WindowLister().list_windows()
    assert isinstance(default_lister(), X11WindowLister)
