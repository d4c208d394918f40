"""Which top-level windows are on the screen, and where: what masking needs from the desktop.

One interface (``WindowLister``), one adapter per windowing system: ``x11`` reads the window
manager's standard (EWMH/ICCCM) properties, ``win32`` asks the Windows API. Both are imported
only by ``default_lister`` so that neither platform's library is needed on the other.
"""

from __future__ import annotations

import sys

from recorder_service.windows.base import WindowInfo, WindowLister, WindowListError

__all__ = ["WindowInfo", "WindowListError", "WindowLister", "default_lister"]


def default_lister() -> WindowLister:
    """The adapter for this platform (connects lazily). Raises ``WindowListError``."""
    if sys.platform == "win32":
        from recorder_service.windows.win32 import Win32WindowLister

        return Win32WindowLister()
    from recorder_service.windows.x11 import X11WindowLister

    return X11WindowLister()
