"""Screen grabbing with mss (adapter) and the frame digest used to skip unchanged frames.

mss handles are bound to the thread that created them on X11, so the grabber opens its handle
lazily inside the capture thread. Monitor 0 is mss's union of all monitors, 1 the primary.
"""

from __future__ import annotations

import zlib
from typing import Any, Protocol

import numpy as np

from recorder_service.errors import CaptureError


class Grabber(Protocol):
    def grab(self) -> np.ndarray:
        """One screenshot as a BGRA uint8 array of shape (h, w, 4)."""
        ...

    def close(self) -> None: ...


class MssGrabber:
    def __init__(self, monitor: int = 0) -> None:
        if monitor < 0:
            raise ValueError("monitor must be >= 0")
        self._monitor = monitor
        self._sct: Any = None

    def grab(self) -> np.ndarray:
        try:
            import mss

            if self._sct is None:
                # mss 10 renamed the factory; 9.x (allowed by pyproject) only has the old one.
                factory = getattr(mss, "MSS", None) or mss.mss
                self._sct = factory()
            monitors = self._sct.monitors
            if self._monitor >= len(monitors):
                raise CaptureError(f"monitor {self._monitor} does not exist ({len(monitors) - 1} found)")
            shot = self._sct.grab(monitors[self._monitor])
        except CaptureError:
            raise
        except Exception as exc:  # mss raises ScreenShotError, but also OSError/ctypes errors
            raise CaptureError(f"screen grab failed: {exc}") from exc
        return np.frombuffer(shot.raw, dtype=np.uint8).reshape(shot.height, shot.width, 4)

    def close(self) -> None:
        if self._sct is not None:  # idempotent: a second close is a no-op
            self._sct.close()
            self._sct = None


def frame_digest(image: np.ndarray) -> int:
    """Cheap content hash: CRC-32 runs at memory speed, and a collision only costs one skipped
    frame that the 1 s keepalive re-sends anyway."""
    return zlib.crc32(np.ascontiguousarray(image).data)
