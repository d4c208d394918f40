"""SIPREC from SIPp over TCP and TLS to the real server (``tandem-server run``, which runs on
uvloop): the same two-stream call as over UDP in test_siprec_sipp, recorded the same way.

Debian's SIPp has no TLS build, so the TLS call is SIPp over TCP through ``tls_relay``, a TLS
client to the server's TLS port that verifies its certificate (see tests/e2e/tls_relay.py)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.sipp_tools import Recorder, SecondStream, SippResult, recorder, run_sipp
from tests.e2e.test_siprec_sipp import _assert_separated, _recorded, _work
from tests.e2e.tls_relay import tls_relay
from tests.tls_certs import self_signed

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


@pytest.fixture(scope="module")
def tls_rec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Recorder, ssl.SSLContext]]:
    cert, key = self_signed(tmp_path_factory.mktemp("certs"))
    settings = {"TANDEM_SERVER_SIP_TLS_CERT": str(cert), "TANDEM_SERVER_SIP_TLS_KEY": str(key)}
    with recorder(tmp_path_factory.mktemp("siprec-streams"), **settings) as rec:
        yield rec, ssl.create_default_context(cafile=str(cert))


def _call(rec: Recorder, port: int, work: Path) -> SippResult:
    return run_sipp(
        "siprec_call.xml",
        port,
        work,
        service="srs",
        duration_ms=3000,
        keys={"agent_dn": rec.dn},
        second=SecondStream(stream1_ms=2800),
        transport="tn",  # TCP, one connection per call
    )


def test_siprec_call_over_tcp_is_recorded_like_one_over_udp(
    tls_rec: tuple[Recorder, ssl.SSLContext], tmp_path: Path
) -> None:
    rec, _ = tls_rec
    work = _work(tmp_path, "tcp")
    result = _call(rec, rec.server.sip_port, work)
    # SIPp's trace may miss the INVITE (written to a socket still connecting); the replies show it.
    trying = result.received(100, "INVITE")
    assert trying and "SIP/2.0/TCP" in (trying[0].header("Via") or ""), result.describe()
    _, voice = _recorded(rec, result, work / "voice.wav")
    _assert_separated(voice, 0.5, 2.5)
    assert result.received(200, "BYE"), result.describe()


def test_siprec_call_over_tls_is_recorded_like_one_over_udp(
    tls_rec: tuple[Recorder, ssl.SSLContext], tmp_path: Path
) -> None:
    rec, client_context = tls_rec
    work = _work(tmp_path, "tls")
    with tls_relay(rec.server.sip_port + 1, client_context) as (relay_port, stats):
        result = _call(rec, relay_port, work)
    assert stats.handshakes >= 1 and stats.to_client > 0, stats  # answered over TLS
    _, voice = _recorded(rec, result, work / "voice.wav")
    _assert_separated(voice, 0.5, 2.5)
    assert result.received(200, "BYE"), result.describe()


def test_the_server_runs_without_deprecation_warnings(tls_rec: tuple[Recorder, ssl.SSLContext]) -> None:
    # pytest turns warnings into errors only in its own process: the server's go to its log
    # (uvicorn's legacy "websockets" implementation warned there at every start).
    rec, _ = tls_rec
    log = rec.server.log_path.read_text(errors="replace")
    assert "DeprecationWarning" not in log, log[-3000:]
