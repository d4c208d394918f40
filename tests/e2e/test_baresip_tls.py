"""Acceptance (issue 11): SIP over TLS from a peer whose TLS and SIP stacks we did not write.

Debian's SIPp is built without OpenSSL (no ``-t ln``), so the SIPREC-over-TLS test in
test_siprec_sipp_streams carries SIPp's TCP through our own relay. Here Debian's baresip, linked
against OpenSSL through libre, opens the TLS connection itself and sends ``Via: SIP/2.0/TLS``:
the call to an agent's DN on the server's TLS port is recorded exactly like the UDP one in
test_baresip_call (same duration and tone checks), by ``tandem-server run`` on uvloop."""

from __future__ import annotations

import re
import socket
import ssl
from pathlib import Path

import pytest

from server.cli import event_loop_name
from tests.e2e.harness import run_server
from tests.e2e.peers import run_baresip, write_tone_wav
from tests.e2e.test_baresip_call import (
    AGENT,
    CALLER_USER,
    DISPLAY_NAME,
    DN,
    TONE_HZ,
    assert_tone_recorded,
    hold_call,
)
from tests.tls_certs import self_signed

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def sent_over_tls(baresip_log: str, tls_port: int) -> list[str]:
    """The SIP requests baresip's trace shows it sent over TLS to ``tls_port``, with their Via:
    ``["INVITE|SIP/2.0/TLS 127.0.0.1:5061;branch=…", …]``.

    baresip prints each message it sends as ``TLS <local> -> <remote>`` followed by the message."""
    found = []
    pattern = (
        rf"^TLS \S+ -> 127\.0\.0\.1:{tls_port}\r?\n([A-Z]+) [^\r\n]*\r?\n(?:[^\r\n]+\r?\n)*?Via: ([^\r\n]+)"
    )
    for match in re.finditer(pattern, baresip_log, re.MULTILINE):
        found.append(f"{match.group(1)}|{match.group(2)}")
    return found


def test_sent_over_tls_reads_baresips_trace() -> None:
    log = (
        "call: connecting to 'sip:1001@127.0.0.1:5061;transport=tls'..\n"
        "TLS 127.0.0.1:40000 -> 127.0.0.1:5061\n"
        "INVITE sip:1001@127.0.0.1:5061;transport=tls SIP/2.0\n"
        "Via: SIP/2.0/TLS 127.0.0.1:38577;branch=z9hG4bK1;rport\n"
        "Contact: <sip:x@127.0.0.1:38577;transport=tls>\n\n"
        "UDP 127.0.0.1:40001 -> 127.0.0.1:5060\n"
        "BYE sip:1001@127.0.0.1:5060 SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:38577;branch=z9hG4bK2\n\n"
        "TLS 127.0.0.1:40000 -> 127.0.0.1:5061\n"
        "ACK sip:127.0.0.1:5061;transport=tls SIP/2.0\n"
        "Max-Forwards: 70\n"
        "Via: SIP/2.0/TLS 127.0.0.1:38577;branch=z9hG4bK3\n"
    )
    assert sent_over_tls(log, 5061) == [
        "INVITE|SIP/2.0/TLS 127.0.0.1:38577;branch=z9hG4bK1;rport",
        "ACK|SIP/2.0/TLS 127.0.0.1:38577;branch=z9hG4bK3",
    ]
    assert sent_over_tls(log, 5062) == []


def test_baresip_call_over_tls_is_recorded(tmp_path: Path) -> None:
    # The server under test runs on the loop this venv gives `tandem-server run`: uvloop here.
    assert event_loop_name() == "uvloop"
    cert, key = self_signed(tmp_path)
    tone = tmp_path / "tone.wav"
    write_tone_wav(tone, TONE_HZ, seconds=30)
    with run_server(
        tmp_path / "server",
        TANDEM_SERVER_SCREEN_PERCENTAGE="0",
        TANDEM_SERVER_SIP_TLS_CERT=str(cert),
        TANDEM_SERVER_SIP_TLS_KEY=str(key),
    ) as server:
        tls_port = server.sip_port + 1  # the server's default: sip_port + 1
        # The port speaks TLS with the configured certificate (checked by Python's OpenSSL).
        client = ssl.create_default_context(cafile=str(cert))
        with socket.create_connection(("127.0.0.1", tls_port), 5) as raw:
            with client.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
        server.token(AGENT, client="desktop", dn=DN)
        with run_baresip(tmp_path, tone, DISPLAY_NAME, CALLER_USER, tls_ca=cert) as phone:
            established, held = hold_call(phone, f"sip:{DN}@127.0.0.1:{tls_port};transport=tls")
        trace = phone.log_path.read_text(errors="replace")  # complete once baresip has stopped
        sent = sent_over_tls(trace, tls_port)
        methods = [entry.split("|")[0] for entry in sent]
        # Every request of the dialog went over the TLS connection with a TLS Via: the INVITE,
        # the ACK to the server's 200 (its Contact says transport=tls) and the BYE.
        assert methods[:1] == ["INVITE"] and "ACK" in methods and "BYE" in methods, trace[-4000:]
        assert all(entry.split("|")[1].startswith("SIP/2.0/TLS ") for entry in sent), sent
        assert_tone_recorded(server, established, held)
