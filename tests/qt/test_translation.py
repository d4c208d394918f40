"""The desktop in German (issue 13 item 9: all visible text translatable, one translation shipped
besides English): the shipped .qm changes the window's texts, no known English label stays, and
the .ts/.qm pair is complete and up to date with the sources."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QAbstractButton, QComboBox, QLabel, QLineEdit, QWidget
from pytestqt.qtbot import QtBot

from agent_app import i18n
from agent_app.recorder_problem_report import status_line
from agent_app.widgets.main_window import MainWindow
from tandem_protocol.recorder_problem import RecorderProblem
from tests.qt import scenes
from tests.qt.conftest import Fakes
from tests.qt.test_accessibility import mnemonics

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]
TS = ROOT / "agent_app" / "translations" / "tandem_de.ts"


def messages(path: Path) -> list[tuple[str, str, str, bool]]:
    """(context, source, translation, finished) of every message in a .ts file."""
    found = []
    for context in ET.parse(path).getroot().iter("context"):
        name = context.findtext("name") or ""
        for message in context.iter("message"):
            translation = message.find("translation")
            assert translation is not None
            finished = translation.get("type") not in ("unfinished", "obsolete", "vanished")
            found.append((name, message.findtext("source") or "", translation.text or "", finished))
    return found


def plain(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").strip()


# English texts that the German translation changes: none of them may be seen in German.
ENGLISH = {plain(src) for _, src, tr, _ in messages(TS) if plain(src) != plain(tr) and "%1" not in src}


@pytest.fixture
def german() -> Iterator[None]:
    assert i18n.install("de") == "de"
    yield
    i18n.uninstall()


def visible_texts(root: QWidget) -> list[str]:
    texts = []
    for widget in [root, *root.findChildren(QWidget)]:
        if not widget.isVisibleTo(root) and widget is not root:
            continue
        if isinstance(widget, (QLabel, QAbstractButton)):
            texts.append(widget.text())
        if isinstance(widget, QLineEdit):
            texts.append(widget.placeholderText())
        if isinstance(widget, QComboBox):
            texts.extend(widget.itemText(i) for i in range(widget.count()))
        texts.append(widget.accessibleName())
        texts.append(widget.toolTip())
    return [plain(t) for t in texts if t]


def shown(qtbot: QtBot, fakes: Fakes, scene: str) -> MainWindow:
    window = scenes.make_window(fakes)
    qtbot.addWidget(window)
    window.show()
    scenes.enter(scene, window, fakes, qtbot.waitUntil)
    return window


def test_the_shipped_translation_changes_the_window(qtbot: QtBot, fakes: Fakes, german: None) -> None:
    window = shown(qtbot, fakes, "login")
    assert window.login_widget.button.text() == "&Anmelden"
    assert window.login_widget.dn.accessibleName() == "Nebenstelle (Ihre Telefonnummer)"
    scenes.enter("oncall", window, fakes, qtbot.waitUntil)
    assert window.agent_state_label.text() == "Im Gespräch"
    assert window.call_panel.voice_label.text() == "Aufnahme läuft"
    assert window.call_panel.direction_label.text() == "Eingehend"
    assert window.logout_button.text() == "A&bmelden"
    assert window.state_selector.combo.itemText(0) == "Im Gespräch"  # the call's state, not "Bereit"
    assert window.health_panel.headline.text() == "Rekorder: Aufnahme läuft"
    assert window.health_panel.details.text() == "Zwischenspeicher: 12.0 MB"


@pytest.mark.parametrize("scene", scenes.SCENES)
def test_no_known_label_stays_english(qtbot: QtBot, fakes: Fakes, german: None, scene: str) -> None:
    window = shown(qtbot, fakes, scene)
    texts = visible_texts(window)
    if scene != "login":
        window.show_call_bar()
        qtbot.waitUntil(window.call_bar.isVisible)
        texts += visible_texts(window.call_bar)
    assert len(texts) > 10
    assert sorted({t for t in texts if t in ENGLISH}) == []
    for root in (window, window.call_bar):  # German letters do not clash either
        letters = mnemonics(root)
        assert sorted(letters) == sorted(set(letters)), letters


def test_the_admins_reason_labels_stay_as_he_wrote_them(qtbot: QtBot, fakes: Fakes, german: None) -> None:
    window = shown(qtbot, fakes, "idle")
    assert window.state_selector.combo.itemText(0) == "Bereit"
    assert window.state_selector.combo.itemText(1) == "Nicht bereit ▸ Lunch"


@pytest.mark.parametrize(
    ("kind", "recorder_answers", "framing"),
    [
        ("config", False, "Bildschirmrekorder läuft nicht: "),
        ("credential", True, "Bildschirmrekorder kann nicht aufnehmen: "),
    ],
)
def test_the_recorders_problem_line_is_german_but_its_message_is_not(
    qtbot: QtBot, fakes: Fakes, german: None, kind: str, recorder_answers: bool, framing: str
) -> None:
    """The health panel's line about the PC recorder's problem (agent_app/recorder_problem_report.py)
    is the desktop's framing in German around the recorder's own message, which comes from the
    recorder's log and stays as it wrote it."""
    window = shown(qtbot, fakes, "idle")
    message = "/etc/tandem/agent.toml: unknown key 'sever_url'"
    problem = RecorderProblem(kind, message, datetime(2026, 12, 5, tzinfo=UTC))
    window.health_panel.show_problem(status_line(problem, recorder_answers))  # as the watch does
    assert window.health_panel.problem.isVisibleTo(window)
    assert window.health_panel.problem.text() == framing + message


def test_english_without_a_translation(qtbot: QtBot, fakes: Fakes) -> None:
    window = shown(qtbot, fakes, "oncall")
    assert window.logout_button.text() == "Log &out"
    assert window.call_panel.voice_label.text() == "Recording"


def test_every_text_is_translated_and_compiled(german: None) -> None:
    """Each message of the .ts is finished, and the shipped .qm gives its translation (the .qm
    was compiled from this .ts)."""
    entries = messages(TS)
    assert len(entries) > 100
    assert [src for _, src, _, finished in entries if not finished] == []
    wrong = [src for ctx, src, tr, _ in entries if QCoreApplication.translate(ctx, src) != tr]
    assert wrong == []


LUPDATE = Path(sys.executable).parent / "pyside6-lupdate"


@pytest.mark.skipif(not LUPDATE.exists(), reason="needs pyside6-lupdate (PySide6)")
def test_the_ts_has_every_text_of_the_sources(tmp_path: Path) -> None:
    """lupdate over the sources finds no text the .ts lacks: a new tr() needs a translation."""
    fresh = tmp_path / "fresh.ts"
    widgets = sorted((ROOT / "agent_app" / "widgets").glob("*.py"))
    sources = [str(ROOT / "agent_app" / "i18n.py"), *map(str, widgets)]
    subprocess.run([str(LUPDATE), *sources, "-ts", str(fresh)], check=True, capture_output=True, timeout=120)
    have = {(ctx, src) for ctx, src, _, _ in messages(TS)}
    found = {(ctx, src) for ctx, src, _, _ in messages(fresh)}
    assert sorted(found - have) == []
    # And the other way: every translated text is one lupdate still finds, or update.sh's
    # -no-obsolete run would drop it (a text built through a helper lupdate cannot read).
    assert sorted(have - found) == []
