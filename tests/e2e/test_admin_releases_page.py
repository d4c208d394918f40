"""The admin's Agent software releases section in a real browser (Debian's chromium) against a
running server with a release repository: a bundle is uploaded as 0.2.0 (the same version with
other bytes is refused in the server's words), its rollout is set to 20 % from the keyboard, 150 %
is refused and changes nothing, the fleet is pinned to it; each step is checked in the signed
offers the recorders read, the audit viewer shows each change with before/after, the section
folds at 420 px without sideways scrolling, and a supervisor or agent neither sees the section
nor gets through the API (audited). Screenshot: tests/e2e/test_web_screenshots.py."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from playwright.sync_api import FilePayload, Page

from server.services.releases import ReleaseRepository, init_keys
from tests.e2e.browser import assert_folds_at_420, audit_viewer_rows, chromium, log_in, new_page, wait_status
from tests.e2e.harness import run_server

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def bundle(version: str, note: str = "") -> FilePayload:
    """A small release archive shaped like the one-folder bundle (the server checks only its
    version and that it is not empty; the recorder's updater checks the rest)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in (
            ("tandem-recorder/VERSION", f"{version}\n{note}"),
            ("tandem-recorder/README", "fake"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data.encode())
            tar.addfile(info, io.BytesIO(data.encode()))
    return {
        "name": f"tandem-agent-{version}.tar.gz",
        "mimeType": "application/gzip",
        "buffer": out.getvalue(),
    }


def _row(page: Page, version: str) -> list[str]:
    cells: list[str] = page.eval_on_selector(
        f"#releases-table tbody tr[data-version='{version}']",
        "r => [...r.cells].slice(0, 6).map(c => c.textContent)",
    )
    return cells


def test_admin_uploads_rolls_out_and_pins_a_release(tmp_path: Path) -> None:
    keys, data = tmp_path / "keys", tmp_path / "server"
    init_keys(keys)
    repo = ReleaseRepository(data / "releases")
    repo.create(keys)

    def signed() -> dict[str, int]:
        return {r.version: r.rollout_percent for r in repo.releases()}

    with (
        run_server(data, TANDEM_SERVER_RELEASE_KEYS_DIR=str(keys)) as server,
        chromium() as browser,
        new_page(browser) as page,
    ):
        log_in(page, server.url, "admin", server.creds["admin"]["password"])
        page.click("#nav-admin")
        wait_status(page, "releases-list-status", "No release uploaded yet.")

        # Upload 0.2.0 offered to nobody yet; the same version with other bytes is refused.
        page.fill("#release-upload-version", "0.2.0")
        page.set_input_files("#release-upload-file", files=[bundle("0.2.0")])
        page.fill("#release-upload-percent", "0")
        page.click("#release-upload-save")
        wait_status(page, "release-upload-status", "Published 0.2.0 (")
        row = _row(page, "0.2.0")
        assert (
            row[0] == "0.2.0" and row[1].endswith(" by admin") and row[3:] == ["0 %", "Not offered", "0"]
        ), row
        assert signed() == {"0.2.0": 0}
        page.fill("#release-upload-version", "0.2.0")
        page.set_input_files("#release-upload-file", files=[bundle("0.2.0", "other bytes")])
        page.click("#release-upload-save")
        assert wait_status(page, "release-upload-status", "Not uploaded:") == (
            "Not uploaded: release 0.2.0 is already published with other bytes;"
            " give the new bundle a new version"
        )

        # Rollout 20 %, from the keyboard alone.
        page.focus("button[aria-label='Set the rollout of 0.2.0']")
        page.keyboard.press("Enter")
        page.wait_for_selector("#release-rollout-form", state="visible")
        assert page.evaluate("() => document.activeElement.id") == "release-rollout-percent"
        page.keyboard.press("Control+A")
        page.keyboard.type("20")
        page.keyboard.press("Enter")
        wait_status(page, "releases-status", "Rollout of 0.2.0 set to 20 %.")
        assert _row(page, "0.2.0")[3:5] == ["20 %", "Offered to 20 % of the PCs"]
        assert signed() == {"0.2.0": 20}
        assert (
            page.evaluate("() => document.activeElement.getAttribute('aria-label')")
            == "Set the rollout of 0.2.0"
        )

        # 150 % is refused in the server's words and changes nothing.
        page.click("button[aria-label='Set the rollout of 0.2.0']")
        page.fill("#release-rollout-percent", "150")
        page.click("#release-rollout-save")
        assert (
            wait_status(page, "releases-status", "Not saved:")
            == "Not saved: rollout_percent must be a whole number 0..100, got 150"
        )
        assert page.evaluate("() => document.activeElement.id") == "release-rollout-percent"
        page.keyboard.press("Escape")
        page.wait_for_selector("#release-rollout-form", state="hidden")
        page.reload()
        page.wait_for_selector("#releases-table tbody tr[data-version='0.2.0']")
        assert _row(page, "0.2.0")[3] == "20 %" and signed() == {"0.2.0": 20}

        # Pin the fleet to it: offered to every PC, the 20 % kept for when the pin is lifted.
        page.click("button[aria-label='Pin the fleet to 0.2.0']")
        wait_status(page, "releases-status", "Pinned the fleet to 0.2.0.")
        assert _row(page, "0.2.0")[3:5] == ["20 % (offered 100 %)", "Pinned: offered to every PC"]
        assert page.inner_text("#releases-policy").startswith("The fleet is pinned to 0.2.0")
        assert page.is_visible("button[aria-label='Unpin 0.2.0']") and signed() == {"0.2.0": 100}

        # 420 px: the rows fold into cards; the page does not scroll sideways.
        assert_folds_at_420(page, "releases-table", "releases")

        # The audit viewer: each change with before/after, and the refusals.
        rows = {
            (r[3], r[2], r[4][:40]): r for r in audit_viewer_rows(page, server.url, "action=release.publish")
        }
        details = [json.loads(r[4]) for (_, outcome, _), r in rows.items() if outcome == "allowed"]
        assert {"before": {"rollout_percent": 0, "offered_percent": 0}} | {
            "after": {"rollout_percent": 20, "offered_percent": 20}
        } in [{k: d[k] for k in ("before", "after")} for d in details]
        assert any(d["before"] is None and d["after"]["rollout_percent"] == 0 for d in details)
        denied = [r[4] for (_, outcome, _), r in rows.items() if outcome == "denied"]
        assert any("got 150" in d for d in denied) and any("other bytes" in d for d in denied)
        pinned = audit_viewer_rows(page, server.url, "action=release.policy")
        assert [r[:4] for r in pinned] == [["admin", "release.policy", "allowed", "release 0.2.0"]]
        assert json.loads(pinned[0][4]) == {
            "before": {"mode": "rollout", "pin": ""},
            "after": {"mode": "pinned", "pin": "0.2.0"},
            "offers": {"0.2.0": {"before": 20, "after": 100}},
        }

        # A supervisor or an agent: no section, and the API refuses them (audited).
        for user in ("supervisor", "agent1"):
            with new_page(browser) as other, server.client(user) as http:
                log_in(other, server.url, user, server.creds[user]["password"])
                assert other.is_hidden("#nav-admin")
                assert http.get("/api/admin/releases").status_code == 403
                refused = http.put("/api/admin/release-policy", json={"mode": "off"})
                assert refused.status_code == 403, refused.text
        assert signed() == {"0.2.0": 100}
        with server.client("admin") as http:
            audit = http.get("/api/audit/records", params={"outcome": "denied"}).json()
        denials = {(r["username"], r["action"]) for r in audit["records"]}
        for user in ("supervisor", "agent1"):
            assert {(user, "release.list"), (user, "release.policy")} <= denials, denials
