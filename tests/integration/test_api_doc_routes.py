"""docs/api.md matches the code (issue 14 item 9): every route of the app is named in the doc with
its method, and every /api path the doc names is a route of the app. The doc may shorten a path
on a line that named the full one first (`GET /api/x/{id}/bookmarks` / `DELETE …/bookmarks/{bid}`);
parameter names do not matter (`{id}` is `{interaction_id}`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.settings import load_settings
from tests.integration.role_matrix import app_routes

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
# A path in the doc: `/`, /api/…, /healthz, /docs, /share, or "…/tail" after a full one on the
# same line; not a source file's path (server/api/errors.py).
_PATH = re.compile(
    r"(…/[A-Za-z0-9_{}./\-]+|(?<![\w/.])/(?:api/|healthz|docs|openapi\.json|share)[A-Za-z0-9_{}./\-]*"
    r"|(?<=GET )/(?=`))"
)
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "WS")


def _norm(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.split("?")[0]).rstrip(".")


def doc_lines() -> list[tuple[set[str], set[str]]]:
    """(methods, normalised paths) named on each line of the doc, the shortened ones expanded."""
    out = []
    for line in DOC.read_text().splitlines():
        full: list[str] = []
        paths: set[str] = set()
        for found in _PATH.findall(line):
            if found.startswith("…"):
                tail = found[1:]
                head = tail.split("/")[1]
                base = next((f for f in full if f"/{head}" in f), None)
                if base is None:
                    continue
                paths.add(_norm(base[: base.rindex(f"/{head}")] + tail))
            else:
                full.append(found)
                paths.add(_norm(found))
        methods = {m for m in _METHODS if re.search(rf"\b{m}\b", line)}
        if "WebSocket" in line:
            methods.add("WS")
        out.append((methods, paths))
    return out


@pytest.fixture
def routes(tmp_path: Path) -> Iterator[set[tuple[str, str]]]:
    app = create_app(load_settings(None, data_dir=tmp_path / "data", sip_enabled=False))
    with TestClient(app):
        yield {(m, _norm(p)) for m, p, _ in app_routes(app)}


def test_every_route_is_in_the_doc_with_its_method(routes: set[tuple[str, str]]) -> None:
    lines = doc_lines()
    missing = sorted(
        (m, p) for m, p in routes if not any(m in methods and p in paths for methods, paths in lines)
    )
    assert not missing, f"routes docs/api.md does not name (with their method): {missing}"


def test_every_api_path_in_the_doc_is_a_route(routes: set[tuple[str, str]]) -> None:
    in_app = {p for _, p in routes}
    named = {p for _, paths in doc_lines() for p in paths if p.startswith("/api/")}
    stale = sorted(p for p in named if p not in in_app)
    assert not stale, f"paths docs/api.md names that the app does not have: {stale}"
