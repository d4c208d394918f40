"""Acceptance: a second, independent SIP peer — Debian's baresip, not SIPp — places a plain call
to an agent's DN and the call is recorded: the stored voice file lasts as long as the call, holds
the tone baresip sent, and the interaction names baresip's From as the caller."""

from __future__ import annotations

import io
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.harness import ServerProcess, run_server, wait_until
from tests.e2e.peers import (
    Baresip,
    NetstringDecoder,
    NetstringError,
    encode_netstring,
    run_baresip,
    write_tone_wav,
)

pytestmark = pytest.mark.e2e

AGENT, DN = "agent1", "1001"
DISPLAY_NAME, CALLER_USER = "Bob Baresip", "+15550777"
TONE_HZ = 1100.0
HOLD_SECONDS = 4.0


def dominant_frequency(samples: np.ndarray[Any, Any], rate: int) -> tuple[float, float]:
    """The strongest frequency and the share of the signal's energy within ±20 Hz of it."""
    windowed = samples.astype(np.float64) * np.hanning(len(samples))
    power = np.abs(np.fft.rfft(windowed)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    peak = float(freqs[int(np.argmax(power[1:])) + 1])
    near, total = power[np.abs(freqs - peak) <= 20].sum(), power.sum()
    return peak, float(near / total) if total > 0 else 0.0


def test_netstring_decoder_splits_and_refuses_garbage() -> None:
    decoder = NetstringDecoder(limit=100)
    stream = encode_netstring(b'{"a":1}') + encode_netstring(b"") + b"5:he"
    assert decoder.feed(stream) == [b'{"a":1}', b""]
    assert decoder.feed(b"llo,") == [b"hello"]
    for bad in (b"x:abc,", b"3:abcd", b"101:", b"12345"):
        with pytest.raises(NetstringError):
            NetstringDecoder(limit=100).feed(bad)


def test_dominant_frequency_finds_the_tone() -> None:
    t = np.arange(8000) / 8000
    peak, share = dominant_frequency((1000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), 8000)
    assert abs(peak - 440) <= 2 and share > 0.95
    noise = np.random.default_rng(1).normal(0, 1000, 8000).astype(np.int16)
    assert dominant_frequency(noise, 8000)[1] < 0.2
    assert dominant_frequency(np.zeros(8000, dtype=np.int16), 8000)[1] == 0.0


def test_baresip_call_is_recorded(tmp_path: Path) -> None:
    tone = tmp_path / "tone.wav"
    write_tone_wav(tone, TONE_HZ, seconds=30)
    with run_server(tmp_path / "server", TANDEM_SERVER_SCREEN_PERCENTAGE="0") as server:
        server.token(AGENT, client="desktop", dn=DN)
        with run_baresip(tmp_path, tone, DISPLAY_NAME, CALLER_USER) as phone:
            established, held = hold_call(phone, f"sip:{DN}@127.0.0.1:{server.sip_port}")
        assert_tone_recorded(server, established, held)


def hold_call(phone: Baresip, uri: str) -> tuple[dict[str, Any], float]:
    """Dial ``uri``, keep the call up HOLD_SECONDS, hang up; the CALL_ESTABLISHED event and how
    long baresip held the call."""
    phone.command("dial", uri)
    established = phone.event("CALL_ESTABLISHED", 10)
    answered = time.monotonic()
    time.sleep(HOLD_SECONDS)
    hung_up = time.monotonic()
    phone.command("hangup")
    phone.event("CALL_CLOSED", 10)
    return established, hung_up - answered


def assert_tone_recorded(server: ServerProcess, established: dict[str, Any], held: float) -> dict[str, Any]:
    """The call is the server's only interaction, names baresip's From, and its voice file lasts
    as long as the call and carries baresip's tone throughout; returns the interaction."""
    with server.client("supervisor") as sup:

        def stored() -> dict[str, Any] | None:
            items = sup.get("/api/interactions").json()
            assert len(items) <= 1, items
            return items[0] if items and "voice" in items[0]["media"] else None

        try:
            inter: dict[str, Any] = wait_until(stored, 20, "the voice file in storage")
        except AssertionError:
            raise AssertionError(f"server log:\n{server.log()}") from None
        r = sup.get(f"/api/interactions/{inter['id']}/media/voice")
    assert r.status_code == 200 and r.headers["content-type"].startswith("audio/wav")

    assert inter["caller"] == f"{DISPLAY_NAME} <{CALLER_USER}>", inter
    assert (inter["dn"], inter["callee"], inter["agent"]) == (DN, DN, AGENT), inter
    assert established["id"] == inter["call_id"], (established, inter["call_id"])
    with wave.open(io.BytesIO(r.content), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    duration = len(samples) / rate
    server_length = inter["ended_at"] - inter["answered_at"]
    assert abs(duration - held) <= 0.3, f"voice {duration:.3f} s, call held {held:.3f} s by baresip"
    assert abs(duration - server_length) <= 0.3, f"voice {duration:.3f} s, server call {server_length:.3f} s"

    middle = samples[len(samples) // 2 - rate // 2 : len(samples) // 2 + rate // 2]
    peak, share = dominant_frequency(middle, rate)
    assert abs(peak - TONE_HZ) <= 5 and share > 0.98, f"peak {peak:.1f} Hz holding {share:.0%} of the energy"
    # The tone is half scale (RMS ≈ 11585); each half second of the call's body must carry it.
    body = samples[int(0.1 * len(samples)) : int(0.9 * len(samples))].astype(np.float64)
    blocks = body[: len(body) // (rate // 2) * (rate // 2)].reshape(-1, rate // 2)
    rms = np.sqrt(np.mean(blocks**2, axis=1))
    assert np.all(rms > 8000), f"gaps in the recorded tone, RMS per 0.5 s: {np.round(rms)}"
    return inter
