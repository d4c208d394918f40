"""The A/V sync checker on synthetic recordings whose true skew is known: the pattern drawn in
each frame is the frame's own server time, and each beep is written into the audio at its server
time plus the skew under test. A wrong sign, a lost offset (the audio or the video not starting at
0) or the AAC encoder's priming left uncorrected would each show up as a wrong figure."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from server.media import sync_check
from server.media.beep_onsets import beep_onsets
from server.media.time_pattern_reader import render

ORIGIN = 1_765_000_000.0  # server time of the file's t=0
FPS = 5
W, H = 320, 240
BEEPS = [ORIGIN + 1.0 + 2 * k for k in range(5)]  # server times
BEEP_SECONDS = 0.2


def beeps_pcm(rate: int, seconds: float, starts: list[float], freq: float = 1000.0) -> np.ndarray:
    """Quiet audio with a -6 dBFS sine burst starting at each of ``starts`` (s, any fraction of
    a sample: the tone's phase is taken from the exact start) and a little noise."""
    t = np.arange(round(seconds * rate)) / rate
    rng = np.random.default_rng(7)
    x = rng.normal(0, 0.002, t.size)
    for s in starts:
        on = (t >= s) & (t < s + BEEP_SECONDS)
        x[on] += 0.5 * np.sin(2 * np.pi * freq * (t[on] - s))
    return x


def write_recording(
    path: Path,
    skew: float,
    *,
    audio_codec: str = "aac",
    rate: int = 16000,
    video_start: float = 0.0,
    audio_start: float = 0.0,
) -> None:
    """A file whose video frame at PTS p shows server time ORIGIN + p and whose beep for server
    time B starts at PTS B - ORIGIN + skew. ``*_start``: each stream's first PTS."""
    seconds = BEEPS[-1] - ORIGIN + 1.5
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        v.time_base = v.codec_context.time_base = Fraction(1, 1000)  # frame PTS in ms, unrounded
        v.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency"}
        a = out.add_stream(audio_codec, rate=rate, layout="mono")
        assert isinstance(a, av.AudioStream)
        a.time_base = Fraction(1, rate)
        out.start_encoding()  # the header fixes each stream's time base before packets go in
        k = 0
        while (p := video_start + k / FPS) < seconds:
            gray = render(round((ORIGIN + p) * 1000), W, H)
            frame = av.VideoFrame.from_ndarray(np.dstack([gray] * 3), format="rgb24").reformat(
                format="yuv420p"
            )
            frame.pts = round(p * 1000)
            frame.time_base = Fraction(1, 1000)
            mux(out, v.encode(frame), Fraction(1, 1000))
            k += 1
        mux(out, v.encode(None), Fraction(1, 1000))
        pcm = beeps_pcm(rate, seconds - audio_start, [b - ORIGIN + skew - audio_start for b in BEEPS])
        fmt = "fltp" if audio_codec == "aac" else "s16"
        block = 1024
        for i in range(0, pcm.size, block):
            chunk = pcm[i : i + block].reshape(1, -1)
            if fmt == "s16":
                af = av.AudioFrame.from_ndarray((chunk * 32767).astype(np.int16), format="s16", layout="mono")
            else:
                af = av.AudioFrame.from_ndarray(chunk.astype(np.float32), format="fltp", layout="mono")
            af.sample_rate = rate
            af.pts = round(audio_start * rate) + i
            af.time_base = Fraction(1, rate)
            mux(out, a.encode(af), Fraction(1, rate))
        mux(out, a.encode(None), Fraction(1, rate))


def mux(out: av.container.OutputContainer, packets: list[av.Packet[Any]], time_base: Fraction) -> None:
    """Packets carry the encoder's time base (MP4 picks its own for the stream: they are
    rescaled to it only when they say which one they are in)."""
    for packet in packets:
        packet.time_base = time_base
        out.mux(packet)


@pytest.mark.parametrize("skew", [0.0, 0.030, -0.060])
def test_known_skew_measured_in_an_mp4_with_aac(tmp_path: Path, skew: float) -> None:
    path = tmp_path / "muxed.mp4"
    write_recording(path, skew)
    report = sync_check.check(path, BEEPS)
    assert len(report.skews) == len(BEEPS), report.lines()
    for measured in report.skews:
        assert measured == pytest.approx(skew, abs=0.002), report.lines()


@pytest.mark.parametrize("skew", [0.030, -0.060])
def test_streams_that_do_not_start_at_zero(tmp_path: Path, skew: float) -> None:
    """Video starting 0.37 s in and audio 0.61 s in (lossless PCM in Matroska, so the figure is
    exact): each stream's own start must be honoured, not assumed 0."""
    path = tmp_path / "muxed.mkv"
    write_recording(path, skew, audio_codec="pcm_s16le", rate=8000, video_start=0.37, audio_start=0.61)
    report = sync_check.check(path, BEEPS)
    assert len(report.skews) == len(BEEPS), report.lines()
    for measured in report.skews:
        assert measured == pytest.approx(skew, abs=0.0005), report.lines()


def test_onsets_found_within_a_sample() -> None:
    """A burst starting between two samples starts, sampled, at the next one: within 1/8 ms."""
    rate = 8000
    starts = [0.5 + 0.3 / rate, 2.5 + 0.7 / rate, 4.5]
    found = beep_onsets(beeps_pcm(rate, 6.0, starts), rate)
    assert len(found) == len(starts)
    for f, s in zip(found, starts, strict=True):
        assert f == pytest.approx(s, abs=1 / rate)


def test_beep_outside_the_video_or_missing_from_the_audio_is_not_measured(tmp_path: Path) -> None:
    path = tmp_path / "muxed.mp4"
    write_recording(path, 0.0)
    late = BEEPS[-1] + 10  # after the last frame
    between = BEEPS[0] + 1.0  # inside the video, but no beep there
    report = sync_check.check(path, [BEEPS[0], between, late])
    notes = [b.note for b in report.beeps]
    assert report.beeps[0].skew is not None
    assert "no beep in the audio" in notes[1]
    assert "no readable video" in notes[2]


def test_cli_exit_status_follows_the_bound(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "muxed.mp4"
    write_recording(path, -0.060)
    beeps = tmp_path / "beeps.json"
    beeps.write_text(json.dumps({"beeps": BEEPS}))
    assert sync_check.main([str(path), "--beeps-json", str(beeps)]) == 1
    assert "worst skew -60." in capsys.readouterr().out
    assert sync_check.main([str(path), "--beeps-json", str(beeps), "--max-skew-ms", "70"]) == 0
    assert sync_check.main([str(path), "--beeps-json", str(beeps), "--min-beeps", "6"]) == 2


def test_a_given_clock_replaces_the_drawn_times(tmp_path: Path) -> None:
    """A test that knows each picture was on screen 25 ms longer than drawn passes that clock:
    the video PTS of a server time comes 25 ms earlier, so the skew reads 25 ms later."""
    path = tmp_path / "muxed.mp4"
    write_recording(path, 0.0)
    frames = sync_check.read_video_frames(path)
    assert all(drawn is not None for _, drawn in frames)
    shifted = sync_check.video_clock([(pts, drawn + 0.025) for pts, drawn in frames if drawn is not None])
    report = sync_check.check(path, BEEPS, clock=shifted)
    assert len(report.skews) == len(BEEPS)
    for measured in report.skews:
        assert measured == pytest.approx(0.025, abs=0.002), report.lines()
