"""SipService end to end over loopback UDP: real SIPp, the simulated caller, malformed datagrams,
CANCEL. Uses the real ``RtpSession`` so the WAV on disk is what production would write."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import time
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server.errors import SimulatedCallError
from server.sim import cli
from server.sim.call import simulate_call
from server.sip.message import SipResponse, parse_message
from server.sip.service import SipService
from tests.integration.sip_fakes import FakeListener
from tests.loops import LOOPS, run_on
from tests.ports import free_port, free_ports, rtp_range

SIPP_SCENARIO = Path(__file__).resolve().parents[1] / "sipp" / "uac_pcmu_stream.xml"
# Every test on both loops: the server runs on uvloop (tandem-server run), embedders may use asyncio's.
pytestmark = [pytest.mark.timeout(60), pytest.mark.parametrize("loop", LOOPS)]


def _run(
    loop: str,
    body: Callable[[SipService, FakeListener], Awaitable[None]],
    tmp_path: Path,
    answer_delay: float = 0.0,
    rtp_timeout: float = 10.0,
) -> FakeListener:
    async def main() -> FakeListener:
        listener = FakeListener(tmp_path, answer_delay)
        service = SipService(
            listener,
            host="127.0.0.1",
            port=0,
            advertised_host="127.0.0.1",
            rtp_host="127.0.0.1",
            rtp_port_range=rtp_range(),
            rtp_timeout=rtp_timeout,
        )
        await service.start()
        try:
            await body(service, listener)
        finally:
            await service.stop()
        assert service.active_calls == 0
        return listener

    return run_on(loop, main())


def _check_recording(listener: FakeListener, min_seconds: float, min_loud: float) -> None:
    assert len(listener.offered) == 1 and len(listener.answered) == 1 and len(listener.ended) == 1
    call, ended_at, reason = listener.ended[0]
    assert reason == "bye" and call is listener.answered[0]
    assert call.answered_at is not None
    with wave.open(str(call.voice_path), "rb") as wav:
        assert wav.getframerate() == 8000 and wav.getnchannels() == 1
        frames = wav.getnframes()
        samples = np.frombuffer(wav.readframes(frames), dtype=np.int16)
    assert abs(frames / 8000 - (ended_at - call.answered_at)) < 0.2
    assert frames / 8000 >= min_seconds
    frames20 = samples[: len(samples) // 160 * 160].astype(np.float64).reshape(-1, 160)
    loud = np.sqrt((frames20**2).mean(axis=1)) > 200  # RMS per 20 ms; silence is exactly 0
    assert loud.mean() > min_loud, f"only {loud.mean():.0%} of the recording is audible"


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)


async def _raw_socket() -> tuple[asyncio.DatagramTransport, _Udp]:
    loop = asyncio.get_running_loop()
    return await loop.create_datagram_endpoint(_Udp, local_addr=("127.0.0.1", 0))


async def _expect(proto: _Udp) -> SipResponse:
    msg = parse_message(await asyncio.wait_for(proto.queue.get(), 2.0))
    assert isinstance(msg, SipResponse)
    return msg


def _request(
    method: str,
    port: int,
    call_id: str,
    *,
    branch: str = "z9hG4bK-raw1",
    body: bytes = b"",
    extra: str = "",
    dn: str = "1001",
    to_tag: str = "",
) -> bytes:
    head = (
        f"{method} sip:{dn}@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:9;branch={branch}\r\nMax-Forwards: 70\r\n"
        f"From: <sip:caller@127.0.0.1>;tag=f1\r\nTo: <sip:{dn}@127.0.0.1>{to_tag}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 41000 RTP/AVP 0\r\n"
)


@pytest.mark.e2e  # SIPp and sox: outside the fast selection
def test_sipp_call_is_recorded(loop: str, tmp_path: Path) -> None:
    for tool in ("sipp", "sox"):
        assert shutil.which(tool), f"{tool} is required (the test command installs it)"
    wav_in = tmp_path / "speech.wav"

    async def body(service: SipService, listener: FakeListener) -> None:
        sox = await asyncio.create_subprocess_exec(
            "sox",
            "-n",
            "-r",
            "8000",
            "-c",
            "1",
            "-e",
            "u-law",
            str(wav_in),
            "synth",
            "2",
            "sine",
            "300-900",
            "vol",
            "0.7",
        )
        assert await sox.wait() == 0
        sipp = await asyncio.create_subprocess_exec(
            "sipp",
            f"127.0.0.1:{service.port}",
            "-sf",
            str(SIPP_SCENARIO),
            "-s",
            "1001",
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_ports(4)),
            "-m",
            "1",
            "-timeout",
            "30",
            "-timeout_error",
            "-nostdin",
            "-trace_err",
            "-error_file",
            str(tmp_path / "sipp_err.log"),
            "-nd",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )
        out, _ = await asyncio.wait_for(sipp.communicate(), 40)
        errors = (
            (tmp_path / "sipp_err.log").read_text(errors="replace")[-2000:]
            if (tmp_path / "sipp_err.log").exists()
            else ""
        )
        assert sipp.returncode == 0, out.decode(errors="replace")[-2000:] + errors
        await asyncio.wait_for(listener.ended_event.wait(), 5)

    listener = _run(loop, body, tmp_path)
    _check_recording(listener, 4.5, 0.8)
    assert listener.offered[0].codec == "PCMU" and listener.offered[0].caller == "SIPp caller <+15550199>"


def test_simulated_call_is_recorded(loop: str, tmp_path: Path) -> None:
    async def body(service: SipService, listener: FakeListener) -> None:
        result = await simulate_call(("127.0.0.1", service.port), "1001", 3.0, codec="PCMA")
        assert result.codec == "PCMA" and result.ended_by == "caller"
        assert result.packets_sent >= 140
        await asyncio.wait_for(listener.ended_event.wait(), 5)

    listener = _run(loop, body, tmp_path)
    _check_recording(listener, 2.8, 0.3)
    assert listener.offered[0].dn == "1001" and listener.offered[0].caller == "+15550100"


def test_malformed_datagrams_and_rejected_dn(loop: str, tmp_path: Path) -> None:
    async def body(service: SipService, listener: FakeListener) -> None:
        transport, proto = await _raw_socket()
        try:
            addr = ("127.0.0.1", service.port)
            transport.sendto(b"\x00\xffgarbage that is not SIP", addr)
            truncated = _request("INVITE", service.port, "trunc-1", body=OFFER)
            transport.sendto(truncated[:120], addr)  # cut inside the headers: dropped
            too_long = truncated.replace(b"Content-Length: %d" % len(OFFER), b"Content-Length: 900")
            transport.sendto(too_long, addr)
            assert (await _expect(proto)).status == 400  # body shorter than Content-Length
            no_call_id = _request("INVITE", service.port, "x", body=OFFER).replace(b"Call-ID: x\r\n", b"")
            transport.sendto(no_call_id, addr)  # parses, but no response can be built: dropped
            transport.sendto(_request("OPTIONS", service.port, "opt-1", branch="z9hG4bK-o1"), addr)
            options = await _expect(proto)
            assert options.status == 200 and options.call_id == "opt-1"
            assert "INVITE" in (options.get("allow") or "")
            transport.sendto(
                _request(
                    "INVITE",
                    service.port,
                    "dn-9999",
                    dn="9999",
                    body=OFFER,
                    branch="z9hG4bK-9999",
                    extra="Content-Type: application/sdp\r\n",
                ),
                addr,
            )
            assert (await _expect(proto)).status == 100
            rejected = await _expect(proto)
            assert rejected.status == 404 and rejected.to is not None and rejected.to.tag
            transport.sendto(_request("FOO", service.port, "foo-1", branch="z9hG4bK-f1"), addr)
            assert (await _expect(proto)).status == 501
            transport.sendto(
                _request("BYE", service.port, "nope", branch="z9hG4bK-b1", to_tag=";tag=zz"), addr
            )
            assert (await _expect(proto)).status == 481
            transport.sendto(
                _request(
                    "INVITE",
                    service.port,
                    "notsdp",
                    branch="z9hG4bK-n1",
                    body=b"hi",
                    extra="Content-Type: text/plain\r\n",
                ),
                addr,
            )
            assert (await _expect(proto)).status == 415
            # An INVITE without a body is a delayed offer, answered (tests/integration/test_siprec_media.py).
            transport.sendto(
                _request("OPTIONS", service.port, "v", branch="z9hG4bK-v").replace(
                    b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1
                ),
                addr,
            )
            assert (await _expect(proto)).status == 505
        finally:
            transport.close()
        assert service.stats.malformed >= 4 and service.stats.dropped >= 2
        assert service.active_calls == 0

    listener = _run(loop, body, tmp_path)
    assert [o.dn for o in listener.offered] == ["9999"]
    assert not listener.answered and not listener.ended
    assert list(tmp_path.glob("*.wav")) == []


def test_cancel_before_answer_and_retransmitted_invite(loop: str, tmp_path: Path) -> None:
    async def body(service: SipService, listener: FakeListener) -> None:
        transport, proto = await _raw_socket()
        try:
            addr = ("127.0.0.1", service.port)
            invite = _request(
                "INVITE",
                service.port,
                "cancel-1",
                body=OFFER,
                branch="z9hG4bK-c1",
                extra="Content-Type: application/sdp\r\n",
            )
            transport.sendto(invite, addr)
            assert (await _expect(proto)).status == 100
            transport.sendto(invite, addr)  # retransmission: the last response again, no new call
            assert (await _expect(proto)).status == 100
            cancel = invite.split(b"\r\n\r\n")[0].replace(b"INVITE sip:", b"CANCEL sip:")
            cancel = cancel.replace(b"CSeq: 1 INVITE", b"CSeq: 1 CANCEL")
            cancel = cancel.replace(b"Content-Length: %d" % len(OFFER), b"Content-Length: 0") + b"\r\n\r\n"
            transport.sendto(cancel, addr)
            first, second = await _expect(proto), await _expect(proto)
            by_method = {r.cseq.method: r.status for r in (first, second) if r.cseq}
            assert by_method == {"CANCEL": 200, "INVITE": 487}
            # The listener's delayed decision lands after the CANCEL (then the offer is withdrawn).
            for _ in range(600):
                if listener.withdrawn:
                    break
                await asyncio.sleep(0.05)
            assert listener.withdrawn, "the listener's decision never landed"
            transport.sendto(invite, addr)
            assert (await _expect(proto)).status == 487
        finally:
            transport.close()
        assert service.active_calls == 0

    listener = _run(loop, body, tmp_path, answer_delay=0.3)
    assert len(listener.offered) == 1 and not listener.answered and not listener.ended
    assert list(tmp_path.glob("*.wav")) == []
    # The core had accepted the offer when the CANCEL won: it is told, so nothing stays ringing.
    assert [reason for _, _, reason in listener.withdrawn] == ["cancelled before answer"]


def test_error_response_to_invite_is_resent_until_ack(loop: str, tmp_path: Path) -> None:
    async def body(service: SipService, listener: FakeListener) -> None:
        transport, proto = await _raw_socket()
        try:
            addr = ("127.0.0.1", service.port)
            invite = _request(
                "INVITE",
                service.port,
                "timer-g",
                body=OFFER,
                branch="z9hG4bK-g1",
                dn="2002",
                extra="Content-Type: application/sdp\r\n",
            )
            transport.sendto(invite, addr)
            statuses = [(await _expect(proto)).status for _ in range(3)]
            assert statuses == [100, 404, 404]  # Timer G: the 404 again after T1, no ACK yet
            ack = invite.split(b"\r\n\r\n")[0].replace(b"INVITE sip:", b"ACK sip:")
            ack = ack.replace(b"CSeq: 1 INVITE", b"CSeq: 1 ACK")
            ack = ack.replace(b"Content-Length: %d" % len(OFFER), b"Content-Length: 0") + b"\r\n\r\n"
            transport.sendto(ack, addr)
            # An OPTIONS after the ACK: once it is answered the ACK has been handled, so the 404s
            # that crossed the ACK are all in; from then on nothing more may come.
            probe = _request("OPTIONS", service.port, "timer-g-probe", branch="z9hG4bK-g-probe")
            transport.sendto(probe, addr)
            while (reply := await _expect(proto)).call_id != "timer-g-probe":
                assert reply.status == 404, reply.status  # a 404 sent before the ACK was handled
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(proto.queue.get(), 2.5)
        finally:
            transport.close()

    _run(loop, body, tmp_path)


def test_stop_ends_live_calls_with_shutdown(loop: str, tmp_path: Path) -> None:
    async def body(service: SipService, listener: FakeListener) -> None:
        call = asyncio.create_task(simulate_call(("127.0.0.1", service.port), "1001", 10.0))
        for _ in range(100):
            if listener.answered:
                break
            await asyncio.sleep(0.05)
        assert service.active_calls == 1
        await service.stop()
        assert service.active_calls == 0
        result = await asyncio.wait_for(call, 5)
        assert result.ended_by == "server"

    listener = _run(loop, body, tmp_path)
    assert [reason for _, _, reason in listener.ended] == ["shutdown"]


def test_simulated_call_to_unknown_dn_fails_with_status(loop: str, tmp_path: Path) -> None:
    async def body(service: SipService, listener: FakeListener) -> None:
        with pytest.raises(SimulatedCallError) as info:
            await simulate_call(("127.0.0.1", service.port), "9999", 1.0)
        assert info.value.status == 404

    _run(loop, body, tmp_path)


def test_rtp_timeout_ends_call_and_sends_bye(loop: str, tmp_path: Path) -> None:
    async def body(service: SipService, listener: FakeListener) -> None:
        transport, proto = await _raw_socket()
        try:
            addr = ("127.0.0.1", service.port)
            transport.sendto(
                _request(
                    "INVITE",
                    service.port,
                    "quiet-1",
                    body=OFFER,
                    branch="z9hG4bK-q1",
                    extra="Content-Type: application/sdp\r\n",
                ),
                addr,
            )
            assert (await _expect(proto)).status == 100
            ok = await _expect(proto)
            assert ok.status == 200 and ok.to is not None and ok.to.tag
            assert b"a=recvonly" in ok.body
            ack = _request("ACK", service.port, "quiet-1", branch="z9hG4bK-q1ack", to_tag=f";tag={ok.to.tag}")
            transport.sendto(ack, addr)
            # No RTP at all: after rtp_timeout the server hangs up with a BYE of its own.
            bye = parse_message(await asyncio.wait_for(proto.queue.get(), 3.0))
            assert getattr(bye, "method", None) == "BYE" and bye.call_id == "quiet-1"
            await asyncio.wait_for(listener.ended_event.wait(), 2)
        finally:
            transport.close()

    listener = _run(loop, body, tmp_path, rtp_timeout=0.6)
    assert len(listener.answered) == 1
    assert [reason for _, _, reason in listener.ended] == ["rtp timeout"]


def test_cli_simulate_call(loop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    codes: list[int] = []

    async def body(service: SipService, listener: FakeListener) -> None:
        parser = argparse.ArgumentParser()
        cli.add_arguments(parser)
        ok = parser.parse_args(["--dn", "1001", "--seconds", "1", "--server", f"127.0.0.1:{service.port}"])
        bad = parser.parse_args(["--dn", "9999", "--seconds", "1", "--server", f"127.0.0.1:{service.port}"])
        codes.append(await asyncio.to_thread(cli.run, ok))
        codes.append(await asyncio.to_thread(cli.run, bad))

    _run(loop, body, tmp_path)
    assert codes == [0, 1]
    captured = capsys.readouterr()
    assert "to DN 1001: PCMU" in captured.out and "404" in captured.err


def test_sample_zero_is_taken_before_the_200_ok_leaves(
    loop: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer that gets the CPU first can send RTP as soon as the 200 OK is out: sample 0 of the
    file must not be later than that moment, or its first packets land too early and the whole
    stream is placed late (cut at the BYE)."""
    sent_200: list[float] = []
    original = SipService._send

    def send(self: SipService, data: bytes, addr: tuple[str, int]) -> None:
        if data.startswith(b"SIP/2.0 200") and b"INVITE" in data.split(b"\r\n\r\n", 1)[0]:
            sent_200.append(time.time())
        original(self, data, addr)

    monkeypatch.setattr(SipService, "_send", send)

    async def body(service: SipService, listener: FakeListener) -> None:
        result = await simulate_call(("127.0.0.1", service.port), "1001", 0.5)
        assert result.ended_by == "caller"
        await asyncio.wait_for(listener.ended_event.wait(), 5)

    listener = _run(loop, body, tmp_path)
    call = listener.answered[0]
    assert sent_200 and call.answered_at is not None
    assert call.answered_at <= sent_200[0]
