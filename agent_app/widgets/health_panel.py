"""The recorder's health: a headline in words and colour (a problem is a red-bordered warning,
never just a colour), detail lines (uploads pending, spool, last error) and the progress of
the segment being uploaded."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QProgressBar, QVBoxLayout, QWidget

from agent_app.i18n import view_text
from agent_app.recorder_health import HealthView, Level

_FRAME = "QFrame#healthPanel {{ border: {0}px solid {1}; border-radius: 4px; background: {2}; }}"
LEVEL_STYLE = {
    Level.OK: _FRAME.format(1, "#9cc9a8", "#eef7f0"),
    Level.WARNING: _FRAME.format(2, "#b00020", "#fdecea"),
    Level.UNKNOWN: _FRAME.format(1, "#c4c4c4", "#f4f4f4"),
}
HEADLINE_STYLE = {
    Level.OK: "color: #1b7f3b; font-weight: bold;",
    Level.WARNING: "color: #b00020; font-weight: bold;",
    Level.UNKNOWN: "color: #555555;",
}


class HealthPanel(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("healthPanel")
        self.setAccessibleName(self.tr("Screen recorder health"))
        self.headline = QLabel("", self)
        self.headline.setObjectName("recorderHeadline")
        self.headline.setAccessibleName(self.tr("Screen recorder state"))
        self.details = QLabel("", self)
        self.details.setObjectName("recorderDetails")
        self.details.setAccessibleName(self.tr("Screen recorder details"))
        self.problem = QLabel("", self)  # the recorder's own problem file, when it could not start
        self.problem.setObjectName("recorderProblem")
        self.problem.setAccessibleName(self.tr("Screen recorder problem on this PC"))
        self.progress = QProgressBar(self)
        self.progress.setObjectName("uploadProgress")
        self.progress.setAccessibleName(self.tr("Upload of the current screen segment"))
        self.progress.setRange(0, 100)
        self.progress.setTextVisible(False)  # the percentage is in the details, in words
        self.progress.setFixedHeight(max(6, self.fontMetrics().height() // 2))
        for label in (self.headline, self.details, self.problem):
            label.setTextFormat(Qt.TextFormat.PlainText)  # errors come from the recorder
            label.setWordWrap(True)
            label.setStyleSheet("background: transparent; border: none;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(2)
        layout.addWidget(self.headline)
        layout.addWidget(self.details)
        layout.addWidget(self.problem)
        self.problem.setVisible(False)
        layout.addWidget(self.progress)
        self.level = Level.UNKNOWN
        self.show_health(HealthView(Level.UNKNOWN, "", (), None, 0))

    def show_problem(self, text: str) -> None:
        """A discreet line under the health (what IT's fleet page shows too); "" hides it. The
        framing is translated, the recorder's message in it is not (``view_text``'s patterns)."""
        self.problem.setText(view_text(text))
        self.problem.setVisible(bool(text))

    def show_health(self, view: HealthView) -> None:
        self.level = view.level
        self.setProperty("level", view.level.value)  # read by tests
        self.setStyleSheet(LEVEL_STYLE[view.level])
        self.headline.setStyleSheet(HEADLINE_STYLE[view.level] + " background: transparent; border: none;")
        self.headline.setText(("⚠ " if view.level == Level.WARNING else "") + view_text(view.headline))
        self.details.setText("\n".join(view_text(line) for line in view.details))
        self.details.setVisible(bool(view.details))
        self.progress.setVisible(view.upload_percent is not None)
        if view.upload_percent is not None:
            self.progress.setValue(view.upload_percent)
