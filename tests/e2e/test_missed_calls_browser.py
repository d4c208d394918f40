"""Missed recordings in the browser: a call to a DN with no agent logged in is refused (404) by the
running server, and the admin's "Missed recordings" page shows it with its reason; a supervisor
sees the page but not that call (its DN belongs to no agent of theirs); an agent has no such page."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from server.sip.message import SipResponse, parse_message
from tests.e2e.browser import chromium, log_in, new_page
from tests.e2e.harness import run_server

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(180)]
OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 41000 RTP/AVP 0\r\n"
)


def _refused_invite(port: int, dn: str) -> tuple[str, int]:
    call_id = f"missed-{uuid.uuid4().hex[:12]}"
    head = (
        f"INVITE sip:{dn}@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-{call_id}\r\n"
        f'Max-Forwards: 70\r\nFrom: "Dora Dialler" <sip:+15550199@127.0.0.1>;tag=d1\r\n'
        f"To: <sip:{dn}@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(OFFER)}\r\n\r\n"
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        sock.sendto(head.encode() + OFFER, ("127.0.0.1", port))
        while True:
            reply = parse_message(sock.recv(65535))
            assert isinstance(reply, SipResponse)
            if reply.status >= 200:
                return call_id, reply.status


def test_a_refused_call_appears_on_the_missed_recordings_page(tmp_path: Path) -> None:
    with (
        run_server(tmp_path / "server", TANDEM_SERVER_SCREEN_PERCENTAGE="0") as server,
        chromium() as browser,
    ):
        with new_page(browser) as page:
            log_in(page, server.url, "admin", server.creds["admin"]["password"])
            page.click("#nav-missed")
            page.wait_for_selector("#view-missed", state="visible")
            page.wait_for_function(
                "() => document.getElementById('missed-status').textContent.startsWith('No ')"
            )

            call_id, status = _refused_invite(server.sip_port, "4711")
            assert status == 404
            # Rows are written once their one-second coalescing window has passed: refresh until then.
            page.wait_for_function(
                """() => {
                  if (document.querySelector('#missed tbody tr')) return true;
                  document.getElementById('missed-refresh').click();
                  return false;
                }""",
                polling=500,
            )
            row = page.inner_text("#missed tbody tr")
            assert "No agent logged in on the DN" in row and "4711" in row and "404" in row, row
            assert "Dora Dialler" in row and "127.0.0.1:" in row, row
            assert page.get_attribute("#missed tbody tr", "title") == f"Call-ID {call_id}"
            assert page.inner_text("#missed-status").startswith("1 refused call"), page.inner_text(
                "#missed-status"
            )
            shot = Path(os.environ.get("TANDEM_SCREENSHOT_DIR", tmp_path)) / "missed-recordings.png"
            page.screenshot(path=str(shot), full_page=True)

            page.select_option("#missed-reason", "untrusted-source")
            page.wait_for_function(
                "() => document.getElementById('missed-status').textContent.startsWith('No ')"
            )
            assert page.locator("#missed tbody tr").count() == 0

        with new_page(browser) as page:
            log_in(page, server.url, "supervisor", server.creds["supervisor"]["password"])
            page.click("#nav-missed")
            page.wait_for_selector("#view-missed", state="visible")
            page.wait_for_function(
                "() => document.getElementById('missed-status').textContent.startsWith('No ')"
            )

        with new_page(browser) as page:
            log_in(page, server.url, "agent1", server.creds["agent1"]["password"])
            assert page.is_hidden("#nav-missed")
            page.goto(f"{server.url}/#/missed")
            page.wait_for_selector("#view-recordings", state="visible")  # not a page agents have
