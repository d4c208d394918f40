"""The role matrix (docs/role-matrix.md) as data, and every route of the FastAPI app.

``app_routes`` walks the app's routes (the included routers too), so a new route that is not in
the matrix fails the test by name. ``read_matrix`` parses the doc's endpoint and page tables.
``python -m tests.integration.role_matrix`` prints a draft row for each route the doc lacks
(roles from the route's ``require_roles`` dependency; the rest is for a person to decide)."""

from __future__ import annotations

import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI

ROLES = ("agent", "supervisor", "evaluator", "compliance", "admin")
# allowed: the role passes; own: only its own calls; team: only its supervised teams' calls;
# public: no login needed (then every role passes too); recorder: only with the recorder's token
# (a person's session is refused); device: only with the agent PC's device credential (a person's
# token is not one: 401); refused: 403 and an audit record.
CELLS = frozenset({"allowed", "own", "team", "public", "recorder", "device", "refused"})
DOC = Path(__file__).resolve().parents[2] / "docs" / "role-matrix.md"
# Not access-controlled application routes: the static files mount serves the page's assets.
MOUNTS = {"/static"}


@dataclass(frozen=True, slots=True)
class Row:
    method: str  # GET, POST… or WS
    path: str
    cells: dict[str, str]  # role -> cell
    note: str


def _walk(routes: list[Any]) -> list[tuple[str, str, Any]]:
    found: list[tuple[str, str, Any]] = []
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:  # an included router (FastAPI ≥ 0.120)
            for c in contexts() if callable(contexts) else contexts:
                methods = getattr(c, "methods", None) or {"WS"}
                # A WebSocket's context has no path of its own: its route has it.
                path = c.path or getattr(c.original_route, "path", "")
                for m in methods:
                    found.append((m, path, c))
            continue
        path = getattr(route, "path", "")
        if path in MOUNTS:
            continue
        for m in getattr(route, "methods", None) or {"WS"}:
            if m == "HEAD" and "GET" in route.methods:
                continue  # Starlette adds HEAD to every GET
            found.append((m, path, route))
    return found


def app_routes(app: FastAPI) -> list[tuple[str, str, Any]]:
    """(method, path, route) of every route, in the app's order."""
    return _walk(list(app.router.routes))


def gate_roles(route: Any) -> tuple[str, ...] | None:
    """The roles of the route's ``require_roles`` dependency, if it has one."""
    dependant = getattr(route, "dependant", None)
    stack = [dependant] if dependant is not None else []
    while stack:
        dep = stack.pop()
        call = dep.call
        if call is not None and getattr(call, "__name__", "") == "_check" and call.__closure__:
            for cell in call.__closure__:
                if isinstance(cell.cell_contents, tuple):
                    return tuple(cell.cell_contents)
        stack.extend(dep.dependencies)
    return None


_ROW = re.compile(r"^\|\s*`?(GET|POST|PUT|PATCH|DELETE|OPTIONS|HEAD|WS)`?\s*\|\s*`([^`]+)`\s*\|(.*)\|\s*$")


def read_matrix(text: str) -> list[Row]:
    rows = []
    for line in text.splitlines():
        m = _ROW.match(line.strip())
        if not m:
            continue
        parts = [p.strip() for p in m.group(3).split("|")]
        cells = dict(zip(ROLES, parts[: len(ROLES)], strict=True))
        bad = {v for v in cells.values() if v not in CELLS}
        if bad:
            raise ValueError(f"{m.group(1)} {m.group(2)}: unknown cell(s) {sorted(bad)}; use {sorted(CELLS)}")
        rows.append(Row(m.group(1), m.group(2), cells, parts[len(ROLES)] if len(parts) > len(ROLES) else ""))
    return rows


_PAGE = re.compile(r"^\|\s*([A-Za-z][^|]*?)\s*\|\s*`(GET|POST|PUT|DELETE) ([^`]+)`\s*\|(.*)\|\s*$")


def read_pages(text: str) -> list[tuple[str, str, str, dict[str, str]]]:
    """(page, method, gating endpoint, cells) of the page table."""
    pages = []
    for line in text.splitlines():
        m = _PAGE.match(line.strip())
        if m:
            parts = [p.strip() for p in m.group(4).split("|")]
            pages.append(
                (m.group(1), m.group(2), m.group(3), dict(zip(ROLES, parts[: len(ROLES)], strict=True)))
            )
    return pages


def _draft() -> None:
    from server.api.app import create_app
    from server.settings import load_settings

    app = create_app(load_settings(None, data_dir=Path(tempfile.mkdtemp()), sip_enabled=False))
    known = {(r.method, r.path) for r in read_matrix(DOC.read_text())} if DOC.exists() else set()
    for method, path, route in app_routes(app):
        if (method, path) in known:
            continue
        roles = gate_roles(route)
        cells = [("allowed" if r in roles else "refused") if roles else "?" for r in ROLES]
        sys.stdout.write(f"| {method} | `{path}` | {' | '.join(cells)} | |\n")


if __name__ == "__main__":
    _draft()
