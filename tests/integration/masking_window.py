"""A top-level Qt window filled with a known tile pattern, for the masking tests on Xvfb.

    python masking_window.py TITLE PATTERN X Y WIDTH HEIGHT

PATTERN names a list of colours (``PATTERNS``) drawn as 16-pixel tiles. Prints ``shown`` once
the window has painted; reads commands on stdin: ``move X Y`` (prints ``moved X Y`` after the
move was processed), ``minimize`` / ``restore`` (print ``ok minimize`` / ``ok restore``) and
``quit``.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QSocketNotifier, QTimer
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QApplication, QWidget

TILE = 16
# RGB. The card's colours appear nowhere else on the test desktop (the test checks that first).
PATTERNS: dict[str, list[tuple[int, int, int]]] = {
    "card": [(255, 0, 255), (0, 255, 255), (0, 255, 0), (255, 128, 0)],
    "notes": [(255, 255, 0), (0, 0, 128)],
}


class PatternWindow(QWidget):
    def __init__(self, title: str, colours: list[tuple[int, int, int]]) -> None:
        super().__init__()
        self.setWindowTitle(title)
        self._colours = [QColor(*c) for c in colours]
        self.painted = False

    def paintEvent(self, event: QPaintEvent) -> None:  # Qt calls it by this name
        p = QPainter(self)
        n = len(self._colours)
        for row in range(self.height() // TILE + 1):
            for col in range(self.width() // TILE + 1):
                p.fillRect(col * TILE, row * TILE, TILE, TILE, self._colours[(row + col) % n])
        p.end()
        self.painted = True


def main() -> None:
    title, pattern, x, y, w, h = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
    app = QApplication(sys.argv[:1])
    win = PatternWindow(title, PATTERNS[pattern])
    win.resize(w, h)
    win.move(x, y)
    win.show()

    def report_shown() -> None:
        if win.painted:
            print("shown", flush=True)
        else:
            QTimer.singleShot(50, report_shown)

    QTimer.singleShot(50, report_shown)

    def on_stdin() -> None:
        line = sys.stdin.readline()
        words = line.split()
        if not words or words[0] == "quit":
            app.quit()
        elif words[0] == "move":
            win.move(int(words[1]), int(words[2]))
            app.processEvents()
            print(f"moved {words[1]} {words[2]}", flush=True)
        elif words[0] == "minimize":
            win.showMinimized()
            app.processEvents()
            print("ok minimize", flush=True)
        elif words[0] == "restore":
            win.showNormal()
            app.processEvents()
            print("ok restore", flush=True)

    notifier = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read)
    notifier.activated.connect(on_stdin)
    app.exec()


if __name__ == "__main__":
    main()
