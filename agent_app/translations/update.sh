#!/bin/sh
# Regenerate the desktop's translations: lupdate collects the texts (tr(), QT_TRANSLATE_NOOP) from
# the sources into the .ts files (keeping the translations already made), lrelease compiles them
# to the .qm files the desktop loads. Translate new texts in the .ts (pyside6-linguist, or any
# editor), run this again, and commit both files.
set -eu
cd "$(dirname "$0")/../.."
BIN="${VENV:-.venv}/bin"
SOURCES="agent_app/i18n.py $(ls agent_app/widgets/*.py)"
for ts in agent_app/translations/tandem_*.ts; do
    # shellcheck disable=SC2086
    "$BIN/pyside6-lupdate" -no-obsolete $SOURCES -ts "$ts"
    "$BIN/pyside6-lrelease" "$ts" -qm "${ts%.ts}.qm"
done
