"""Real media for the player's browser test and benchmark, made with PyAV: a stereo voice WAV
(caller left, agent right) and a muxed MP4 like the server's (H.264 screen + the same voice as
AAC stereo) whose screen has a gap marked by ``screen_missing``/``screen_resumed`` chapters."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

RATE = 8000


def voice_samples(seconds: float, talk: list[tuple[float, float, int]]) -> np.ndarray:
    """frames x 2 int16: a tone on channel ``ch`` (0 caller, 1 agent) in each (start, end, ch);
    everything else digital silence."""
    frames = int(seconds * RATE)
    out = np.zeros((frames, 2), dtype=np.int16)
    t = np.arange(frames) / RATE
    for start, end, ch in talk:
        a, b = int(start * RATE), min(frames, int(end * RATE))
        out[a:b, ch] = (np.sin(2 * np.pi * (300 + 200 * ch) * t[a:b]) * 9000).astype(np.int16)
    return out


def write_wav(path: Path, samples: np.ndarray) -> None:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        for i in range(0, len(samples), RATE * 60):  # a minute at a time
            w.writeframes(samples[i : i + RATE * 60].astype("<i2").tobytes())


def write_muxed(
    path: Path,
    samples: np.ndarray,
    seconds: float,
    voice_offset: float,
    gap: tuple[float, float] | None,
    fps: float = 2.0,
    size: tuple[int, int] = (320, 180),
    keyframe_seconds: float = 10.0,
) -> None:
    """H.264 frames every 1/fps s except inside ``gap`` (the frames are simply not there, as in a
    real mux), and the voice as AAC stereo starting ``voice_offset`` s into the file."""
    width, height = size
    # +faststart, as the server's mux writes it: the index first, so a player starts at once.
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        video = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = Fraction(1, 1000)
        # Keyframes by time and no scene-cut ones, as the recorder's encoder makes them.
        keyint = str(max(1, round(fps * keyframe_seconds)))
        video.options = {"preset": "ultrafast", "g": keyint, "keyint_min": keyint, "sc_threshold": "0"}
        audio = out.add_stream("aac", rate=16000, layout="stereo")
        audio.bit_rate = 64_000
        # Muxed at the end in time order: interleaved, as the server's mux writes.
        held: list[av.Packet[Any]] = []
        n = 0
        while n / fps < seconds:
            at = n / fps
            n += 1
            if gap and gap[0] <= at < gap[1]:
                continue
            picture = np.full((height, width, 3), (30, 60, 110), dtype=np.uint8)
            bar = int((at / seconds) * width)
            picture[height // 3 : 2 * height // 3, :bar] = (240, 200, 40)  # a progress bar
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = int(at * 1000)
            frame.time_base = Fraction(1, 1000)
            for packet in video.encode(frame):
                held.append(packet)
        for packet in video.encode(None):
            held.append(packet)
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=16000)
        lead = np.zeros((int(voice_offset * RATE), 2), dtype=np.int16)
        voice = np.concatenate([lead, samples])
        block = 1024 * 8
        for i in range(0, len(voice), block):
            chunk = np.ascontiguousarray(voice[i : i + block].reshape(1, -1))
            sound = av.AudioFrame.from_ndarray(chunk, format="s16", layout="stereo")
            sound.sample_rate = RATE
            sound.pts = i
            sound.time_base = Fraction(1, RATE)
            for resampled in resampler.resample(sound):
                for packet in audio.encode(resampled):
                    held.append(packet)
        for resampled in resampler.resample(None):
            for packet in audio.encode(resampled):
                held.append(packet)
        for packet in audio.encode(None):
            held.append(packet)
        held.sort(key=lambda p: float((p.dts or 0) * (p.time_base or 1)))
        for packet in held:
            out.mux(packet)
        if gap:
            marks = [
                (0.0, gap[0], "lead-in"),
                (gap[0], gap[1], "screen_missing"),
                (gap[1], seconds, "screen_resumed"),
            ]
            out.set_chapters(
                [
                    {
                        "id": i,
                        "start": int(a * 1000),
                        "end": int(b * 1000),
                        "time_base": Fraction(1, 1000),
                        "metadata": {"title": title},
                    }
                    for i, (a, b, title) in enumerate(marks, start=1)
                ]
            )
