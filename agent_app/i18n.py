"""The desktop's languages: Qt's translation system (``.ts`` sources, compiled ``.qm`` files in
``agent_app/translations``; ``agent_app/translations/update.sh`` regenerates both).

Widgets wrap their own texts in ``self.tr()``. The texts the pure view (`agent_app.view`) makes
stay English there — it has no Qt — and are translated when a widget shows them, through
`view_text`: each fixed one is listed below with ``QT_TRANSLATE_NOOP`` so that lupdate finds it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QT_TRANSLATE_NOOP, QCoreApplication, QLocale, QTranslator

log = logging.getLogger(__name__)
TRANSLATIONS = Path(__file__).resolve().parent / "translations"
CONTEXT = "view"
_TRANSLATORS: list[QTranslator] = []  # kept alive: Qt does not own an installed translator

# The view's fixed texts (agent_app/view.py, agent_app/recording_view.py), for lupdate. Keep in
# step with those modules.
VIEW_TEXTS = (
    QT_TRANSLATE_NOOP("view", "Pause"),
    QT_TRANSLATE_NOOP("view", "Pausing…"),
    QT_TRANSLATE_NOOP("view", "Resume"),
    QT_TRANSLATE_NOOP("view", "Resuming…"),
    QT_TRANSLATE_NOOP("view", "Resume (pause NOT confirmed)"),
    QT_TRANSLATE_NOOP("view", "Logged out"),
    QT_TRANSLATE_NOOP("view", "Ready"),
    QT_TRANSLATE_NOOP("view", "Not Ready"),
    QT_TRANSLATE_NOOP("view", "On call"),
    QT_TRANSLATE_NOOP("view", "On call — recording paused"),
    QT_TRANSLATE_NOOP("view", "On call — pause NOT confirmed"),
    QT_TRANSLATE_NOOP("view", "On call — pausing…"),
    QT_TRANSLATE_NOOP("view", "After-call work"),
    QT_TRANSLATE_NOOP("view", "No call"),
    QT_TRANSLATE_NOOP("view", "Inbound"),
    QT_TRANSLATE_NOOP("view", "Outbound"),
    QT_TRANSLATE_NOOP("view", "Not known"),
    QT_TRANSLATE_NOOP("view", "Voice: recording"),
    QT_TRANSLATE_NOOP("view", "Voice: paused"),
    QT_TRANSLATE_NOOP("view", "Voice: stopped (saved)"),
    QT_TRANSLATE_NOOP("view", "Voice: recording FAILED"),
    QT_TRANSLATE_NOOP("view", "Voice: recording — pausing…"),
    QT_TRANSLATE_NOOP("view", "Voice: on hold — waiting for the screen recorder…"),
    QT_TRANSLATE_NOOP("view", "Voice: on hold — screen pause not confirmed"),
    QT_TRANSLATE_NOOP("view", "Screen: not sampled for this call"),
    QT_TRANSLATE_NOOP("view", "Screen: starting…"),
    QT_TRANSLATE_NOOP("view", "Screen: recording"),
    QT_TRANSLATE_NOOP("view", "Screen: paused"),
    QT_TRANSLATE_NOOP("view", "Screen: pausing…"),
    QT_TRANSLATE_NOOP("view", "Screen: stopped, upload pending"),
    QT_TRANSLATE_NOOP("view", "Screen: stopped (uploaded)"),
    QT_TRANSLATE_NOOP("view", "Screen: recording FAILED"),
    QT_TRANSLATE_NOOP("view", "Screen: NOT recorded — the screen recorder is not connected"),
    QT_TRANSLATE_NOOP("view", "Screen: pause NOT confirmed — it may still be recording"),
    QT_TRANSLATE_NOOP("view", "Screen: stopping capture…"),
    QT_TRANSLATE_NOOP("view", "Screen: restarting capture…"),
    QT_TRANSLATE_NOOP("view", "Screen: finishing…"),
    QT_TRANSLATE_NOOP("view", "Screen pause NOT confirmed: the screen may still be recording"),
    # The same states in the call panel's rows captioned Voice and Screen (recording_view.row_value).
    QT_TRANSLATE_NOOP("view", "Recording"),
    QT_TRANSLATE_NOOP("view", "Paused"),
    QT_TRANSLATE_NOOP("view", "Stopped (saved)"),
    QT_TRANSLATE_NOOP("view", "Recording FAILED"),
    QT_TRANSLATE_NOOP("view", "Recording — pausing…"),
    QT_TRANSLATE_NOOP("view", "On hold — waiting for the screen recorder…"),
    QT_TRANSLATE_NOOP("view", "On hold — screen pause not confirmed"),
    QT_TRANSLATE_NOOP("view", "Not sampled for this call"),
    QT_TRANSLATE_NOOP("view", "Starting…"),
    QT_TRANSLATE_NOOP("view", "Stopped, upload pending"),
    QT_TRANSLATE_NOOP("view", "Stopped (uploaded)"),
    QT_TRANSLATE_NOOP("view", "NOT recorded — the screen recorder is not connected"),
    QT_TRANSLATE_NOOP("view", "Pause NOT confirmed — it may still be recording"),
    QT_TRANSLATE_NOOP("view", "Stopping capture…"),
    QT_TRANSLATE_NOOP("view", "Restarting capture…"),
    QT_TRANSLATE_NOOP("view", "Finishing…"),
    QT_TRANSLATE_NOOP("view", "Not connected"),
    QT_TRANSLATE_NOOP("view", "Connecting…"),
    QT_TRANSLATE_NOOP("view", "Connected"),
    QT_TRANSLATE_NOOP("view", "Connection lost — reconnecting…"),
    QT_TRANSLATE_NOOP("view", "The server refused the event connection"),
    QT_TRANSLATE_NOOP("view", "Logging in…"),
    QT_TRANSLATE_NOOP("view", "Logging out…"),
    QT_TRANSLATE_NOOP("view", "Pausing recording…"),
    QT_TRANSLATE_NOOP("view", "Resuming recording…"),
    QT_TRANSLATE_NOOP("view", "Finishing after-call work…"),
    QT_TRANSLATE_NOOP("view", "Changing your state…"),
    QT_TRANSLATE_NOOP("view", "Disposition"),
    QT_TRANSLATE_NOOP("view", "Disposition (required)"),
    QT_TRANSLATE_NOOP("view", "Disposition (optional)"),
    QT_TRANSLATE_NOOP("view", "Choose a disposition, then Done."),
    QT_TRANSLATE_NOOP("view", "A disposition is required, but none is defined: ask your administrator."),
    QT_TRANSLATE_NOOP("view", "ACW limit reached — finishing…"),
    QT_TRANSLATE_NOOP("view", "Time left: %1"),
    QT_TRANSLATE_NOOP("view", "Not Ready — %1"),
    QT_TRANSLATE_NOOP("view", "Not Ready ▸ %1"),
    # The recorder's health (agent_app/recorder_health.py), shown by the health panel.
    QT_TRANSLATE_NOOP("view", "Screen recorder failed"),
    QT_TRANSLATE_NOOP("view", "Recorder storage full — screen capture stopped"),
    QT_TRANSLATE_NOOP("view", "This PC's disk is almost full"),
    QT_TRANSLATE_NOOP("view", "Screen uploads are falling behind"),
    QT_TRANSLATE_NOOP("view", "Recorder clock not synchronised with the server"),
    QT_TRANSLATE_NOOP("view", "The recorder reported an error"),
    QT_TRANSLATE_NOOP("view", "Recorder: connected, idle"),
    QT_TRANSLATE_NOOP("view", "Recorder: recording"),
    QT_TRANSLATE_NOOP("view", "Recorder: paused"),
    QT_TRANSLATE_NOOP("view", "Recorder: uploading"),
    QT_TRANSLATE_NOOP("view", "Recorder: finishing the recording"),
    QT_TRANSLATE_NOOP("view", "Recorder: storage full"),
    QT_TRANSLATE_NOOP("view", "Recorder: failed"),
    QT_TRANSLATE_NOOP("view", "Recorder: waiting for the server…"),
    QT_TRANSLATE_NOOP("view", "Recorder: connected, waiting for its first report"),
    QT_TRANSLATE_NOOP(
        "view", "No screen recorder on this PC has reported — your screen is not being recorded"
    ),
    QT_TRANSLATE_NOOP("view", "Ask IT to check that the Tandem recorder runs on this PC."),
    QT_TRANSLATE_NOOP("view", "Screen recorder not responding — your screen may not be recorded"),
    QT_TRANSLATE_NOOP("view", "Screen recorder disconnected — your screen is not being recorded"),
    QT_TRANSLATE_NOOP("view", "Uploads pending: %1"),
    QT_TRANSLATE_NOOP("view", "Uploading a screen segment: %1"),
    QT_TRANSLATE_NOOP("view", "Spool: %1"),
    QT_TRANSLATE_NOOP("view", "Last error: %1"),
    # The PC recorder's own problem (agent_app/recorder_problem_report.py, status_line): the
    # framing is translated, the recorder's message (from its log) stays as it wrote it.
    QT_TRANSLATE_NOOP("view", "Screen recorder not running: %1"),
    QT_TRANSLATE_NOOP("view", "Screen recorder cannot record: %1"),
)
# Texts the view builds with a variable part: (English prefix, catalogue entry with %1).
_PATTERNS = (
    ("Time left: ", "Time left: %1"),
    ("Not Ready — ", "Not Ready — %1"),
    ("Not Ready ▸ ", "Not Ready ▸ %1"),
    ("Uploads pending: ", "Uploads pending: %1"),
    ("Uploading a screen segment: ", "Uploading a screen segment: %1"),
    ("Spool: ", "Spool: %1"),
    ("Last error: ", "Last error: %1"),
    ("Screen recorder not running: ", "Screen recorder not running: %1"),
    ("Screen recorder cannot record: ", "Screen recorder cannot record: %1"),
)


def view_text(text: str) -> str:
    """The view's English text in the installed language; unknown texts (a caller's name, a
    server's message) come back unchanged."""
    if not text:
        return text
    translated = QCoreApplication.translate(CONTEXT, text)
    if translated != text:
        return translated
    if text.endswith(".") and (sentence := QCoreApplication.translate(CONTEXT, text[:-1])) != text[:-1]:
        return sentence + "."  # a problem listed under the headline ("… behind.")
    for prefix, pattern in _PATTERNS:
        if text.startswith(prefix):
            return QCoreApplication.translate(CONTEXT, pattern).replace("%1", text[len(prefix) :])
    return text


def qm_path(language: str) -> Path:
    return TRANSLATIONS / f"tandem_{language}.qm"


def install(language: str | None = None) -> str:
    """Install the translation for ``language`` (e.g. "de"; None: the system's), before any
    window is built. Returns the language installed, "en" when English (no file) is used."""
    app = QCoreApplication.instance()
    if app is None:
        raise RuntimeError("install translations after creating the QApplication")
    lang = (language or QLocale.system().name()).split("_")[0].lower()
    if lang == "en":
        return "en"
    path = qm_path(lang)
    translator = QTranslator(app)
    if not path.is_file() or not translator.load(str(path)):
        log.info("no translation for %r; the desktop stays in English", lang)
        return "en"
    app.installTranslator(translator)
    _TRANSLATORS.append(translator)
    return lang


def uninstall() -> None:
    """Remove the installed translations (tests)."""
    app = QCoreApplication.instance()
    while _TRANSLATORS:
        translator = _TRANSLATORS.pop()
        if app is not None:
            app.removeTranslator(translator)
