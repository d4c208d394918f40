"""The window lister's interface and data, shared by the adapters (``x11``, ``win32``) and
masking; the package's ``__init__`` picks the adapter for the platform."""

from __future__ import annotations

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
