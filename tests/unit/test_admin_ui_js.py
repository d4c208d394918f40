"""The admin sections' shared pieces (server/web/static/admin_ui.js): every section takes its status
line, labelled cells and row buttons from there instead of a copy of its own, and imports only
what the module exports — a name it does not export stops the whole web UI from loading (an ES
module import error), which no server-side test would notice. The browser tests
(tests/e2e/test_admin_*) check what the pieces do on the page."""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "server" / "web" / "static"
SHARED = STATIC / "admin_ui.js"
# The lines that made a section's own copy: the status line's "ok" mark, the labelled cell and
# the row button's spoken label.
COPIES = (
    'box.classList.toggle("ok", !isError && Boolean(text));',
    "td.dataset.label = label;",
    'b.setAttribute("aria-label", label);',
)
IMPORT = re.compile(r'import\s*\{([^}]*)\}\s*from\s*"\./admin_ui\.js"')
EXPORT = re.compile(r"^export\s+(?:const|function)\s+(\$|\w+)", re.MULTILINE)


def _sections() -> list[Path]:
    return sorted(p for p in STATIC.glob("admin*.js") if p != SHARED)


def test_no_admin_section_keeps_its_own_copy_of_the_shared_pieces() -> None:
    copies = [f"{p.name}: {line}" for p in _sections() for line in COPIES if line in p.read_text()]
    assert copies == [], "use admin_ui.js instead of a copy:\n" + "\n".join(copies)


def test_every_name_imported_from_admin_ui_is_exported_by_it() -> None:
    exported = set(EXPORT.findall(SHARED.read_text()))
    assert {"$", "say", "statusLine", "cell", "button", "option"} <= exported
    users = 0
    for path in _sections():
        for names in IMPORT.findall(path.read_text()):
            users += 1
            missing = {n.strip() for n in names.split(",") if n.strip()} - exported
            assert not missing, f"{path.name} imports {sorted(missing)}, which admin_ui.js does not export"
    assert users >= 10, f"only {users} admin sections use admin_ui.js"
