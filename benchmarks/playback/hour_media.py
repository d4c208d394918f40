"""The one-hour recording the player bench plays (``benchmarks.playback.player_bench``), made as
the recorder and server make it: a 1-h stereo voice WAV (speech-like turns) and its AAC, and the
hour's screen — 60 segments of 60 s written by ``recorder_service.encoder.ScreenEncoder`` with a
given keyframe rule, 5 fps at 1280x720 with every frame a change (typing; the worst case for
seeks), muxed with the voice by the server's own segment mux. Made once under a work folder and
reused. Also where a seek lands in the file's real GOPs (its keyframes read from the file)."""

from __future__ import annotations

import bisect
import random
import shutil
import time
from pathlib import Path

import av
import numpy as np

from benchmarks.playback import mux_bench
from recorder_service.encoder import ScreenEncoder
from server.store.storage import sha256_file
from tests.e2e.player_media import RATE

HOUR = 3600.0
FPS = 5.0  # the recorder's default frame rate
SIZE = (1280, 720)
SEGMENT_SECONDS = 60.0  # the recorder's default segment


def speech_like(seconds: float, seed: int = 7) -> np.ndarray:
    """Two channels taking turns in 2-12 s bursts of noise-modulated tone, with silences."""
    rng = random.Random(seed)
    frames = int(seconds * RATE)
    out = np.zeros((frames, 2), dtype=np.int16)
    t, ch = 0.0, 0
    noise = np.random.default_rng(seed)
    while t < seconds:
        length = rng.uniform(2, 12)
        a, b = int(t * RATE), min(frames, int((t + length) * RATE))
        n = b - a
        envelope = np.abs(np.sin(np.linspace(0, length * 3, n)))
        out[a:b, ch] = (noise.normal(0, 4000, n) * envelope).clip(-32000, 32000).astype(np.int16)
        t += length + rng.uniform(0, 3)
        ch = 1 - ch
    return out


def write_segment(path: Path, index: int, keyframe_seconds: float, keyframe_frames: int) -> int:
    """One recorder segment of a busy screen (mux_bench's: a glyph typed every frame, a line
    scrolled every 10 s), through the recorder's encoder with the given keyframe rule."""
    width, height = SIZE
    rng = np.random.default_rng(index)
    page = mux_bench._desktop(width, height, rng)
    encoder = ScreenEncoder(
        path, fps=FPS, keyframe_interval=keyframe_seconds, keyframe_frames=keyframe_frames
    )
    cursor_x, cursor_y = 8, height - 40
    frames = round(SEGMENT_SECONDS * FPS)
    for n in range(frames):
        if n and n % round(10 * FPS) == 0:
            page[:-20] = page[20:].copy()
            page[-20:] = 255
            cursor_x = 8
        glyph = rng.random((16, 8)) < 0.3
        page[cursor_y : cursor_y + 16, cursor_x : cursor_x + 8, :3] = 255
        page[cursor_y : cursor_y + 16, cursor_x : cursor_x + 8, :3][glyph] = 30
        cursor_x = cursor_x + 8 if cursor_x + 16 < width else 8
        encoder.encode(page, round(n * 1000 / FPS))
    encoder.close()
    return frames


def make_voice(work: Path) -> tuple[Path, Path]:
    wav, m4a = work / "hour.wav", work / "hour.m4a"
    if not (wav.exists() and m4a.exists()):
        work.mkdir(parents=True, exist_ok=True)
        mux_bench.make_voice(wav, m4a, HOUR)  # speech_like below, then the server's AAC encode
    return wav, m4a


def make_screen(work: Path, keyframe_seconds: float, keyframe_frames: int) -> Path:
    """The muxed 1-h recording for one keyframe rule (made once, then reused)."""
    name = f"hour-{FPS:g}fps-key{keyframe_seconds:g}s-{keyframe_frames}f"
    out = work / f"{name}.mp4"
    if out.exists():
        return out
    from concurrent.futures import ProcessPoolExecutor

    wav, m4a = make_voice(work)
    segments = work / name
    segments.mkdir(parents=True, exist_ok=True)
    count = round(HOUR / SEGMENT_SECONDS)
    paths = [segments / f"seg-{i:03d}.mp4" for i in range(count)]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as pool:
        frames = list(
            pool.map(
                write_segment, paths, range(count), [keyframe_seconds] * count, [keyframe_frames] * count
            )
        )
    t0 = mux_bench.T0
    manifest = {
        "segments": [
            {
                "path": str(path),
                "key": f"bench/{path.name}",
                "seq": i,
                "sha256": sha256_file(path),
                "started_at": t0 + i * SEGMENT_SECONDS,
                "first_frame_at": t0 + i * SEGMENT_SECONDS,
                "last_frame_at": t0 + i * SEGMENT_SECONDS + (n - 1) / FPS,
            }
            for i, (path, n) in enumerate(zip(paths, frames, strict=True))
        ],
        "voice_wav": str(wav),
        "voice_aac": str(m4a),
    }
    partial = out.with_suffix(".part.mp4")
    mux_bench.mux_ours(manifest, partial)
    partial.rename(out)
    shutil.rmtree(segments)
    print(
        f"made {out.name} in {time.perf_counter() - started:.0f} s ({out.stat().st_size / 1e6:.1f} MB)",
        flush=True,
    )
    return out


def video_times(mp4: Path) -> tuple[list[float], list[float]]:
    """Every video frame's time and every keyframe's time in the file, in seconds, sorted."""
    frames, keys = [], []
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.pts is None or packet.time_base is None:
                continue
            at = float(packet.pts * packet.time_base)
            frames.append(at)
            if packet.is_keyframe:
                keys.append(at)
    return sorted(frames), sorted(keys)


def gop_place(target: float, frames: list[float], keys: list[float]) -> tuple[float, int, float]:
    """Where a seek to ``target`` lands: seconds after the keyframe before it, the frames a
    decoder goes through from that keyframe to the target's frame (both included), and the
    fraction of that GOP's length."""
    k = max(0, bisect.bisect_right(keys, target) - 1)
    key = keys[k]
    following = keys[k + 1] if k + 1 < len(keys) else frames[-1]
    decoded = bisect.bisect_right(frames, target) - bisect.bisect_left(frames, key)
    return target - key, decoded, (target - key) / max(following - key, 1e-9)
