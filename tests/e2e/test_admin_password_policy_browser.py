"""The operator's doors against a running server: the admin page's password policy form (the
policy then holds for users created on the page, through the API and the CLI), and ``tandem-server`` run in
another process the way the README says (``TANDEM_SERVER_DATA_DIR``) changing what the running
server serves."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from tests.e2e.browser import ServerAndBrowser, log_in, new_page, open_admin, server_and_browser
from tests.e2e.harness import ROOT, ServerProcess, tandem_server

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerAndBrowser]:
    with server_and_browser(tmp_path_factory.mktemp("password-policy") / "server") as both:
        yield both


def _open_admin(page: Page) -> None:
    open_admin(page, "#password-policy-form", "password-policy-status")


def cli(server: ServerProcess, args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``tandem-server`` in its own process, pointed at the server only by the environment, as
    the README tells an operator to do in another shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_SERVER_")}
    env.update({"TANDEM_SERVER_DATA_DIR": str(server.data_dir), "PYTHONPATH": str(ROOT)})
    return subprocess.run(
        tandem_server(args), env=env, cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=120
    )


def test_admin_sets_the_password_policy_and_every_door_enforces_it(setup: ServerAndBrowser) -> None:
    server = setup.server
    with new_page(setup.browser) as page:
        log_in(page, server.url, "admin", server.creds["admin"]["password"])
        _open_admin(page)
        assert page.input_value("#password-min-length") == "8"  # the default
        page.fill("#password-min-length", "5")
        page.click("#password-policy-save")
        page.wait_for_selector("#password-policy-status.error")
        assert "from 8 to 128" in page.inner_text("#password-policy-status")

        page.fill("#password-min-length", "14")
        page.check("#password-require_digit")
        page.click("#password-policy-save")
        page.wait_for_function(
            "() => document.getElementById('password-policy-status').textContent.startsWith('Saved')"
        )
        page.reload()
        _open_admin(page)
        assert page.input_value("#password-min-length") == "14" and page.is_checked("#password-require_digit")

        # the web's new-user form: the server's refusal says what the password lacks
        page.fill("#new-user-username", "frank")
        page.select_option("#new-user-role", "supervisor")
        page.fill("#new-user-password", "no-digits-here-at-all")
        page.click("#new-user-save")
        page.wait_for_selector("#new-user-status.error")
        assert "needs a digit" in page.inner_text("#new-user-status")
        page.fill("#new-user-password", "now-with-a-digit-1")
        page.click("#new-user-save")
        page.wait_for_function(
            "() => document.getElementById('new-user-status').textContent.startsWith('Created')"
        )
        assert page.inner_text("#new-user-status") == "Created supervisor frank."
    server.creds["frank"] = {"password": "now-with-a-digit-1", "role": "supervisor"}
    with server.client("frank") as frank:
        assert frank.get("/api/me").json()["role"] == "supervisor"

    with server.client("admin") as admin:
        r = admin.post(
            "/api/admin/users",
            json={"username": "carl", "role": "agent", "password": "no-digits-here-at-all"},
        )
        assert r.status_code == 422 and r.json()["error"] == "weak_password", r.text
    done = cli(server, "create-user --username dora --role agent --password-stdin", "short-1\n")
    assert done.returncode == 1 and done.stderr.startswith("error: the password needs at least 14"), (
        done.stderr
    )
    done = cli(server, "create-user --username dora --role agent --password-stdin", "long-enough-pw-7\n")
    assert done.returncode == 0, done.stderr


def test_the_cli_changes_what_the_running_server_serves(setup: ServerAndBrowser) -> None:
    server = setup.server
    done = cli(server, "set-sampling --percentage 150")
    assert (done.returncode, done.stderr.strip()) == (
        1,
        "error: percentage must be between 0 and 100, got 150",
    )
    done = cli(server, "set-sampling --percentage 35")
    assert done.returncode == 0, done.stderr
    with server.client("admin") as admin:
        assert admin.get("/api/admin/sampling").json()["percentage"] == 35
        records = admin.get("/api/audit", params={"target_id": "screen_sampling"}).json()
    assert [(r["username"], r["outcome"]) for r in records][:2] == [("cli", "allowed"), ("cli", "denied")]
