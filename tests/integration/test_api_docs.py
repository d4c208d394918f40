"""/docs is served from the package: the page names only this server's files (no CDN), its
assets and licence are there, its script is a file (the CSP allows no inline script), and the
OpenAPI document lists the search routes with their parameters."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.api.routes_docs import SWAGGER_UI_VERSION
from server.settings import load_settings

VENDOR = Path(__file__).resolve().parents[2] / "server" / "web" / "static" / "vendor" / "swagger-ui"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(load_settings(None, data_dir=tmp_path / "data", sip_enabled=False))) as c:
        yield c


def test_docs_page_uses_only_local_assets(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    assert "<script>" not in html  # only <script src=…>: the policy has no 'unsafe-inline'
    policy = r.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "img-src 'self' data:" in policy and "unsafe" not in policy
    for src in re.findall(r'(?:src|href)="([^"]+)"', html):
        asset = client.get(src)
        assert asset.status_code == 200, src
    assert client.get("/redoc").status_code == 404  # not offered (it would load from a CDN)


def test_vendored_copy_is_pinned_with_its_licence() -> None:
    assert "Apache License" in (VENDOR / "LICENSE").read_text()
    assert (VENDOR / "swagger-ui-bundle.js.LICENSE.txt").is_file()
    readme = (VENDOR / "README.md").read_text()
    assert f"**{SWAGGER_UI_VERSION}**" in readme


def test_openapi_lists_the_search_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/interactions/search",
        "/api/interactions/search/options",
        "/api/interactions/{interaction_id}/thumbnail",
        "/api/searches",
        "/api/searches/{saved_id}",
        "/api/admin/search-keys",
    ):
        assert path in paths, path
    names = {p["name"] for p in paths["/api/interactions/search"]["get"]["parameters"]}
    assert {"from", "to", "agent", "team", "caller", "has_screen", "sort", "cursor", "meta.<key>"} <= names
