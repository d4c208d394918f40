"""A scripted 1920×1080 agent desktop (PySide6 on the X display in $DISPLAY) for the screen benchmark.

One full-screen window laid out like a contact-centre agent's CRM: a header bar, a customer list,
a tabbed editor with case notes and a knowledge article, and a customer form. A script then
"uses" it on a fixed timetable measured from ``--t0`` (a Unix time shared with the runner), so every
run — ours or ffmpeg's — sees the same pictures at the same offsets:

* ``heavy``: constant typing (7 characters/s into the open note), a scroll of the article every
  3 s, the next customer every 5 s, a tab switch every 10 s.
* ``office``: mostly still; every 20 s a burst of typing (15 characters in ~2 s), a tab switch
  every 40 s, the next customer every 60 s.

The text caret does not blink (as in GTK/Chromium after 10 s idle): a blinking caret would make
"mostly still" change twice a second. Everything is deterministic (no randomness, no clock shown).
Prints ``ready`` once the window is on screen; quits at ``--t0 + --duration``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont, QTextCursor
from PySide6.QtWidgets import (
    QApplication,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

WORDS = (
    "customer called about the invoice for march and asked why the roaming charges were billed twice "
    "we checked the account history and found a duplicate entry from the billing run on the 14th "
    "refund of 23.40 EUR approved by team lead ticket 48213 follow up by email within two working days "
    "caller verified with date of birth and postcode the new router will ship tomorrow by courier"
).split()

ARTICLE = "\n".join(
    f"{n:3d}. {' '.join(WORDS[(n * 7 + k) % len(WORDS)] for k in range(14))}" for n in range(1, 400)
)

NOTES = (
    "\n".join(
        f"2026-11-{d:02d} 10:{d + 10:02d}  {' '.join(WORDS[(d * 5 + k) % len(WORDS)] for k in range(16))}"
        for d in range(1, 13)
    )
    + "\n\n"
)

CUSTOMERS = [
    f"{first} {last} · #{10_000 + 37 * i}"
    for i, (first, last) in enumerate(
        (f, la)
        for f in ("Anna", "Bruno", "Chloé", "David", "Emma", "Farid", "Greta", "Hugo")
        for la in ("Martin", "Schmidt", "Rossi", "García", "Novak", "Dubois")
    )
]


@dataclass(frozen=True, slots=True)
class Workload:
    type_every: float  # seconds between keystrokes while typing
    burst_every: float  # typing bursts start this often (0: type all the time)
    burst_chars: int
    scroll_every: float  # 0: never
    customer_every: float
    tab_every: float


WORKLOADS = {
    "heavy": Workload(1 / 7, 0.0, 0, 3.0, 5.0, 10.0),
    "office": Workload(0.15, 20.0, 15, 0.0, 60.0, 40.0),
}


def build_window() -> tuple[QWidget, QTabWidget, list[QPlainTextEdit], QListWidget]:
    root = QWidget()
    root.setWindowTitle("Tandem benchmark desktop")
    root.setStyleSheet("QWidget { background: #f4f5f7; color: #1d1f23; }")
    outer = QVBoxLayout(root)
    header = QLabel(
        "  Acme Telecom · Agent workspace      Queue: Billing (3 waiting)      Agent: J. Doe · Ready"
    )
    header.setStyleSheet("background: #233a5e; color: white; padding: 10px; font-size: 15px;")
    outer.addWidget(header)
    body = QHBoxLayout()
    outer.addLayout(body, 1)
    customers = QListWidget()
    customers.addItems(CUSTOMERS)
    customers.setFixedWidth(330)
    customers.setCurrentRow(0)
    body.addWidget(customers)
    centre = QVBoxLayout()
    tabs = QTabWidget()
    editors: list[QPlainTextEdit] = []
    for title, text in (
        ("Knowledge: roaming charges", ARTICLE),
        (
            "Billing history",
            "\n".join(f"2026-{m:02d}-14  invoice {4810 + m}  {19.99 + m:7.2f} EUR" for m in range(1, 13)),
        ),
        ("Email draft", "Dear customer,\n\nthank you for your call today.\n"),
        ("Case history", NOTES),
    ):
        editor = QPlainTextEdit()
        editor.setFont(QFont("DejaVu Sans Mono", 11))
        editor.setPlainText(text)
        editors.append(editor)
        tabs.addTab(editor, title)
    centre.addWidget(tabs, 3)
    # The case notes of the current call: always on screen, below the tabs (typing lands here).
    notes = QPlainTextEdit()
    notes.setFont(QFont("DejaVu Sans Mono", 11))
    notes.setPlainText(NOTES)
    editors.insert(0, notes)
    centre.addWidget(QLabel("Case notes (this call)"))
    centre.addWidget(notes, 2)
    body.addLayout(centre, 1)
    form_box = QWidget()
    form_box.setFixedWidth(420)
    form = QFormLayout(form_box)
    for label, value in (
        ("Name", "Anna Martin"),
        ("Account", "#10000"),
        ("Phone", "+49 30 1234 5678"),
        ("Address", "Hauptstraße 12, 10115 Berlin"),
        ("Plan", "Unlimited 5G · 39.99 EUR"),
        ("Contract end", "2027-08-31"),
        ("Open tickets", "48213, 48190"),
    ):
        form.addRow(label, QLineEdit(value))
    body.addWidget(form_box)
    return root, tabs, editors, customers


class Script:
    def __init__(self, workload: Workload, t0: float, duration: float, app: QApplication) -> None:
        self._w = workload
        self._t0 = t0
        self._end = t0 + duration
        self._app = app
        self.window, self._tabs, self._editors, self._customers = build_window()
        self._done: dict[str, int] = {}
        self._typed = 0
        self._scroll_dir = 1

    def _due(self, name: str, every: float, elapsed: float) -> bool:
        """Whether the action ``name`` repeating every ``every`` s has a step not yet done."""
        if every <= 0:
            return False
        step = int(elapsed / every)
        if step > self._done.get(name, 0):
            self._done[name] = step
            return True
        return False

    def tick(self) -> None:
        now = time.time()
        if now >= self._end:
            self._app.quit()
            return
        elapsed = now - self._t0
        if elapsed < 0:
            return
        w = self._w
        typing = w.burst_every == 0 or (elapsed % w.burst_every) < w.burst_chars * w.type_every
        if typing and self._due("type", w.type_every, elapsed):
            self._type_one()
        if self._due("scroll", w.scroll_every, elapsed):
            article = self._editors[1 + self._tabs.currentIndex()].verticalScrollBar()
            if article.value() >= article.maximum() - 40:
                self._scroll_dir = -1
            elif article.value() <= 40:
                self._scroll_dir = 1
            article.setValue(article.value() + self._scroll_dir * 12)
        if self._due("customer", w.customer_every, elapsed):
            self._customers.setCurrentRow((self._customers.currentRow() + 1) % self._customers.count())
        if self._due("tab", w.tab_every, elapsed):
            self._tabs.setCurrentIndex((self._tabs.currentIndex() + 1) % self._tabs.count())

    def _type_one(self) -> None:
        editor = self._editors[0]
        text = " ".join(WORDS)
        ch = text[self._typed % len(text)]
        self._typed += 1
        cursor = editor.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        editor.setTextCursor(cursor)
        editor.insertPlainText("\n" if self._typed % 90 == 0 else ch)
        editor.ensureCursorVisible()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--t0", type=float, required=True, help="Unix time at which the script starts")
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args(argv)
    app = QApplication(sys.argv[:1])
    app.setCursorFlashTime(0)  # no blinking caret (see the module docstring)
    script = Script(WORKLOADS[args.workload], args.t0, args.duration + 2.0, app)
    script.window.setWindowFlag(Qt.WindowType.FramelessWindowHint)
    script.window.setGeometry(0, 0, 1920, 1080)
    script.window.show()
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(script.tick)
    timer.start(20)
    QTimer.singleShot(300, lambda: print("ready", flush=True))
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
