"""Admin sections whose own browser tests stop at "saved" (codes, DN matching, password policy,
agents' own playback) or do not drive a field (the recorder's endpoint audio and spool quota):
each saved on the admin page of a running server after a refused save (the server's sentence on
the page, nothing changed), and the audit viewer — the page, not the API — then finds every one
of those changes under the "policy" family: the allowed save with its values before and after,
and the refusal. (Sampling, ACW, pause, voice formats, recorder masking, search keys, people and
releases check their audit records in their own tests.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.e2e.browser import audit_viewer_rows, chromium, log_in, new_page, open_admin, wait_status
from tests.e2e.harness import run_server

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(240)]


def _code(page: Page, kind: str, code: str, label: str) -> None:
    page.select_option("#agent-code-kind", kind)
    page.fill("#agent-code-code", code)
    page.fill("#agent-code-label", label)
    page.click("#agent-code-save")


def test_each_admin_change_and_refusal_is_found_in_the_audit_viewer(tmp_path: Path) -> None:
    with run_server(tmp_path / "server") as server, chromium() as browser, new_page(browser) as page:
        log_in(page, server.url, "admin", server.creds["admin"]["password"])
        open_admin(page, "#agent-codes-table", "agent-codes-status")

        # Codes: a code with a space is refused in the server's words; a good one is saved.
        _code(page, "reason", "no good", "Spaces")
        assert "a code is 1 to 32 letters" in wait_status(page, "agent-codes-status", "Not saved")
        _code(page, "reason", "BREAK", "Short break")
        wait_status(page, "agent-codes-status", "Saved: Reason (Not Ready) BREAK")

        # DN matching: fewer than 3 digits refused, then prefixes saved.
        page.fill("#dn-matching-last", "2")
        page.click("#dn-matching-save")
        assert "3-32" in wait_status(page, "dn-matching-status", "Not saved")
        page.fill("#dn-matching-last", "0")
        page.fill("#dn-matching-prefixes", "+1, 9")
        page.click("#dn-matching-save")
        wait_status(page, "dn-matching-status", "Saved")

        # Password policy: below the floor refused by the page itself (nothing is sent, so no
        # audit record), then 12 saved.
        page.fill("#password-min-length", "5")
        page.click("#password-policy-save")
        assert "from 8 to 128" in wait_status(page, "password-policy-status", "The minimum length")
        page.fill("#password-min-length", "12")
        page.click("#password-policy-save")
        wait_status(page, "password-policy-status", "Saved")

        # Agents' own playback: the page offers only existing teams (the API's refusal of an
        # unknown team is tested in tests/integration); Blue is ticked and saved.
        page.check('#agent-playback-teams input[value="Blue"]')
        page.click("#agent-playback-save")
        wait_status(page, "agent-playback-status", "Saved")

        # Recorder settings the fleet test does not drive: endpoint audio and the spool quota
        # (a spool under 64 MB is refused by the server in words, nothing stored).
        page.wait_for_function("() => document.getElementById('rp-spool').value !== ''")
        spool_before = page.input_value("#rp-spool")
        page.fill("#rp-spool", "10")
        page.click("#recorder-policy-save")
        assert "64" in wait_status(page, "recorder-policy-status", "Not saved")
        page.fill("#rp-spool", "512")
        page.fill("#rp-free", "7")
        page.check("#rp-audio")
        page.click("#recorder-policy-save")
        wait_status(page, "recorder-policy-status", "Saved")
        with server.client("admin") as admin:
            stored = admin.get("/api/admin/recorder-policy").json()
        assert stored["spool_max_mb"] == 512 and stored["spool_min_free_percent"] == 7.0, stored
        assert stored["endpoint_audio"] is True, stored

        rows = audit_viewer_rows(page, server.url, "action=policy")
        assert page.inner_text("#audit-status") != "", "the viewer says how many it shows"
        by = {(r[1], r[2]): r for r in rows}
        for action in ("policy.agent_codes", "policy.dn_matching", "policy.recorder"):
            denied = by.get((action, "denied"))
            assert denied is not None and denied[0] == "admin", (action, rows)
        assert "a code is 1 to 32 letters" in by[("policy.agent_codes", "denied")][4]
        assert "3-32" in by[("policy.dn_matching", "denied")][4]

        def change(action: str) -> dict[str, object]:
            row = by.get((action, "allowed"))
            assert row is not None and row[0] == "admin", (action, rows)
            detail: dict[str, object] = json.loads(row[4])
            assert "before" in detail and "after" in detail, (action, detail)
            return detail

        codes = change("policy.agent_codes")
        assert "BREAK" in json.dumps(codes["after"]) and "BREAK" not in json.dumps(codes["before"])
        dn = change("policy.dn_matching")
        assert dn["before"] == {"strip_prefixes": [], "last_digits": 0, "record_unassigned": False}, dn
        assert dn["after"] == {"strip_prefixes": ["+1", "9"], "last_digits": 0, "record_unassigned": False}, (
            dn
        )
        password = change("policy.password")
        assert isinstance(password["before"], dict) and isinstance(password["after"], dict), password
        assert password["before"]["min_length"] == 8 and password["after"]["min_length"] == 12, password
        recorder = change("policy.recorder")
        assert isinstance(recorder["before"], dict) and isinstance(recorder["after"], dict), recorder
        assert (
            str(recorder["before"]["spool_max_mb"]) == spool_before
            and recorder["after"]["spool_max_mb"] == 512
        )
        assert not recorder["before"]["endpoint_audio"] and recorder["after"]["endpoint_audio"] is True
        playback = change("policy.agent_playback")
        assert playback["before"] == [] and playback["after"] == ["Blue"], playback

        # The viewer's own filter: one action, refusals only.
        only = audit_viewer_rows(page, server.url, "action=policy.dn_matching&outcome=denied")
        assert [(r[1], r[2]) for r in only] == [("policy.dn_matching", "denied")], only
