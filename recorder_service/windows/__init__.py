"""Which top-level windows are on the screen, and where: what masking needs from the desktop.

One interface (``WindowLister``), one adapter per windowing system: ``x11`` reads the window
manager's standard (EWMH/ICCCM) properties, ``win32`` asks the Windows API. Both are imported
only by ``default_lister`` so that neither platform's library is needed on the other.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Protocol


class WindowListError(RuntimeError):
    """The window list cannot be read (no display, connection lost, API failure). Masking treats
    this as "unknown": with any window rule, the whole frame is blacked out."""


@dataclass(frozen=True, slots=True)
class WindowInfo:
    """A visible (mapped, not minimised) top-level window."""

    title: str
    app: str  # X11: WM_CLASS instance and class ("xterm XTerm"); Windows: the executable's name
    rect: tuple[int, int, int, int]  # x, y, width, height in virtual-screen pixels, frame included
    wid: int = 0  # the window's id on its system (X11 window, Win32 HWND); 0 = unknown


class WindowLister(Protocol):
    def list_windows(self) -> list[WindowInfo]:
        """Visible top-level windows, bottom to top. Raises ``WindowListError``."""
        ...

    def changed(self) -> bool:
        """Whether the desktop may have changed (a window mapped, moved, renamed…) between the
        last ``list_windows`` and now; a lister that cannot tell returns True."""
        ...

    def close(self) -> None: ...


def default_lister() -> WindowLister:
    """The adapter for this platform (connects lazily). Raises ``WindowListError``."""
    if sys.platform == "win32":
        from recorder_service.windows.win32 import Win32WindowLister

        return Win32WindowLister()
    from recorder_service.windows.x11 import X11WindowLister

    return X11WindowLister()
