"""Where a browser test writes its screenshot: ``TANDEM_SCREENSHOT_DIR`` when set (that is how
docs/screenshots/ is remade on purpose), otherwise a temporary folder — a normal test run must not
rewrite committed pictures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def screenshot_path(name: str) -> Path:
    folder = os.environ.get("TANDEM_SCREENSHOT_DIR")
    base = Path(folder) if folder else Path(tempfile.gettempdir()) / f"tandem-screenshots-{os.getpid()}"
    base.mkdir(parents=True, exist_ok=True)
    return base / name
