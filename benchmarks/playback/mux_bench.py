"""Mux of a 1-h recording (issue 14): our segment mux against ``ffmpeg -c:v copy`` on the same input.

Target: CPU time of our mux <= 1.5 x ffmpeg's concatenating the same segments with ``-c:v copy``
and the same AAC voice with ``-c:a copy`` into one MP4 ``+faststart``, measured in the same run.

    .venv/bin/python -m benchmarks.playback.mux_bench --work /tmp/mux-bench

The input is made once under ``--work`` and reused (a few minutes on 2 cores): 60 screen segments
of 60 s as the recorder writes them (``recorder_service.encoder.ScreenEncoder`` at its default x264
settings, fragmented MP4, a keyframe opening each segment), 5 fps (the recorder's default) at
1280x720 (``--size``), every frame changed (a busy screen: typing every frame, a scroll every 10 s,
the worst case for packet count); and a 1-h stereo 8 kHz voice WAV encoded to AAC beforehand
(``voice_aac.encode_voice_file``), as the server does during after-call work.

Ours is :func:`server.media.mux.mux_segments_and_voice` (what ``ScreenMux.mux`` calls after Done,
``voice_aac`` given: the voice is copied), run in a fresh worker process; its figure is the CPU time
(user + system, incl. children) of the call alone, since the server's media job runs in a process
that has imported PyAV long before (the worker's whole-process CPU is printed too). ffmpeg's figure
is its whole process (``wait4``). The two alternate A B A B for ``--rounds`` rounds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

HOUR = 3600.0
SEGMENT_SECONDS = 60.0
T0 = 1_800_000_000.0  # server time of the recording's first frame (any fixed value)
TARGET_RATIO = 1.5


# --- the input ----------------------------------------------------------------------------------


def _desktop(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A white BGRA page of dark 'text' lines (8x16 px glyphs of random pixels)."""
    page = np.full((height, width, 4), 255, np.uint8)
    for top in range(8, height - 16, 20):
        length = int(rng.integers(width // 4, width - 16)) // 8 * 8
        glyphs = rng.random((16, length)) < 0.22
        page[top : top + 16, 8 : 8 + length, :3][glyphs] = 30
    return page


def write_segment(
    path: Path, index: int, fps: float, seconds: float, size: tuple[int, int], keyframe_seconds: float
) -> int:
    """One recorder segment: frames at ``1/fps`` from pts 0, each one a change (a glyph typed),
    the page scrolled a line every 10 s. Returns the number of frames."""
    from recorder_service.encoder import ScreenEncoder

    width, height = size
    rng = np.random.default_rng(index)
    page = _desktop(width, height, rng)
    encoder = ScreenEncoder(path, fps=fps, keyframe_interval=keyframe_seconds)
    cursor_x, cursor_y = 8, height - 40
    frames = round(seconds * fps)
    for n in range(frames):
        at_ms = round(n * 1000 / fps)
        if n and n % round(10 * fps) == 0:
            page[:-20] = page[20:].copy()  # scroll a line up
            page[-20:] = 255
            cursor_x = 8
        glyph = rng.random((16, 8)) < 0.3
        page[cursor_y : cursor_y + 16, cursor_x : cursor_x + 8, :3] = 255
        page[cursor_y : cursor_y + 16, cursor_x : cursor_x + 8, :3][glyph] = 30
        cursor_x = cursor_x + 8 if cursor_x + 16 < width else 8
        encoder.encode(page, at_ms)
    encoder.close()
    return frames


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_input(
    work: Path,
    seconds: float,
    fps: float,
    size: tuple[int, int],
    segment_seconds: float = SEGMENT_SECONDS,
    jobs: int = 2,
    keyframe_seconds: float = SEGMENT_SECONDS,
) -> dict[str, Any]:
    """Segments, voice WAV and voice AAC under ``work`` (reused when the manifest matches)."""
    manifest_path = work / "manifest.json"
    wanted = {
        "seconds": seconds,
        "fps": fps,
        "size": list(size),
        "segment_seconds": segment_seconds,
        "keyframe_seconds": keyframe_seconds,
    }
    if manifest_path.exists():
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if manifest["params"] == wanted:
            return manifest
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    count = max(1, round(seconds / segment_seconds))
    length = seconds / count
    paths = [work / f"seg-{i:03d}.mp4" for i in range(count)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        frames = list(
            pool.map(
                write_segment,
                paths,
                range(count),
                [fps] * count,
                [length] * count,
                [size] * count,
                [keyframe_seconds] * count,
            )
        )
    segments = [
        {
            "path": str(path),
            "key": f"bench/{path.name}",
            "seq": i,
            "sha256": _sha256(path),
            "started_at": T0 + i * length,
            "first_frame_at": T0 + i * length,
            "last_frame_at": T0 + i * length + (n - 1) / fps,
            "bytes": path.stat().st_size,
        }
        for i, (path, n) in enumerate(zip(paths, frames, strict=True))
    ]
    wav, m4a = work / "voice.wav", work / "voice.m4a"
    make_voice(wav, m4a, seconds)
    manifest = {
        "params": wanted,
        "segments": segments,
        "frames": sum(frames),
        "voice_wav": str(wav),
        "voice_aac": str(m4a),
        "made_in_s": round(time.perf_counter() - started, 1),
    }
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest


def make_voice(wav: Path, m4a: Path, seconds: float) -> None:
    from benchmarks.playback.player_bench import speech_like
    from server.media.voice_aac import encode_voice_file
    from tests.e2e.player_media import write_wav

    write_wav(wav, speech_like(seconds))
    encode_voice_file(wav, m4a)


# --- the two mux paths --------------------------------------------------------------------------


def segment_inputs(manifest: dict[str, Any]) -> list[Any]:
    from server.media.segment_join import SegmentRef
    from server.media.segment_stream import SegmentInput

    return [
        SegmentInput(
            SegmentRef(
                key=s["key"],
                run="bench",
                seq=s["seq"],
                sha256=s["sha256"],
                started_at=s["started_at"],
                first_frame_at=s["first_frame_at"],
                last_frame_at=s["last_frame_at"],
            ),
            Path(s["path"]),
        )
        for s in manifest["segments"]
    ]


def mux_ours(manifest: dict[str, Any], out: Path) -> Any:
    """The server's segment mux, as ``ScreenMux.mux`` calls it after Done (voice AAC ready)."""
    from server.media.mux import mux_segments_and_voice

    return mux_segments_and_voice(
        segment_inputs(manifest),
        [],
        Path(manifest["voice_wav"]),
        manifest["segments"][0]["started_at"],
        out,
        voice_aac=Path(manifest["voice_aac"]),
    )


def ffmpeg_command(manifest: dict[str, Any], work: Path, out: Path) -> list[str]:
    listing = work / "concat.txt"
    listing.write_text("".join(f"file '{s['path']}'\n" for s in manifest["segments"]))
    return [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y",
        "-f", "concat", "-safe", "0", "-i", str(listing),
        "-i", manifest["voice_aac"],
        "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "copy",
        "-movflags", "+faststart", str(out),
    ]  # fmt: skip


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def _cpu_now() -> float:
    return _cpu(resource.getrusage(resource.RUSAGE_SELF)) + _cpu(resource.getrusage(resource.RUSAGE_CHILDREN))


def run_child(command: list[str]) -> tuple[float, float, str]:
    """Run ``command``; its whole-process CPU seconds (incl. its children), wall seconds, stdout."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors) as child:
            assert child.stdout is not None
            output = child.stdout.read()
            _, status, usage = os.wait4(child.pid, 0)  # reaped here, for its resource usage
            child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        if child.returncode:
            errors.seek(0)
            message = errors.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{command[0]} failed ({child.returncode}): {message}")
    return _cpu(usage), wall, output.decode()


def worker(manifest_path: Path, out: Path) -> None:
    """In the worker process: import first, then time the mux call alone."""
    import server.media.mux  # noqa: F401  (the server has it imported long before a mux)

    manifest = json.loads(manifest_path.read_text())
    cpu, wall = _cpu_now(), time.perf_counter()
    result = mux_ours(manifest, out)
    print(
        json.dumps(
            {
                "cpu_s": _cpu_now() - cpu,
                "wall_s": time.perf_counter() - wall,
                "frames": result.video_frames,
                "duration": result.duration,
                "audio_copied": result.audio_copied,
            }
        )
    )


def bench(manifest: dict[str, Any], work: Path, rounds: int) -> dict[str, Any]:
    ours_out, ff_out = work / "ours.mp4", work / "ffmpeg.mp4"
    ours_cmd = [
        sys.executable, "-m", "benchmarks.playback.mux_bench", "--worker",
        str(work / "manifest.json"), str(ours_out),
    ]  # fmt: skip
    ff_cmd = ffmpeg_command(manifest, work, ff_out)
    ours: list[dict[str, float]] = []
    theirs: list[dict[str, float]] = []
    for r in range(rounds):
        process_cpu, _, output = run_child(ours_cmd)
        call = json.loads(output.strip().splitlines()[-1])
        ours.append({"cpu_s": call["cpu_s"], "wall_s": call["wall_s"], "process_cpu_s": process_cpu})
        ff_cpu, ff_wall, _ = run_child(ff_cmd)
        theirs.append({"cpu_s": ff_cpu, "wall_s": ff_wall})
        print(
            f"round {r + 1}: ours {call['cpu_s']:.2f} s CPU ({call['wall_s']:.2f} s wall, worker process "
            f"{process_cpu:.2f} s CPU), ffmpeg {ff_cpu:.2f} s CPU ({ff_wall:.2f} s wall), "
            f"ratio {call['cpu_s'] / ff_cpu:.2f}; {call['frames']} frames, {call['duration']:.1f} s",
            flush=True,
        )
    ours_cpu = statistics.median(o["cpu_s"] for o in ours)
    ff_cpu = statistics.median(t["cpu_s"] for t in theirs)
    return {
        "segments": len(manifest["segments"]),
        "frames": manifest["frames"],
        "segment_mb": round(sum(s["bytes"] for s in manifest["segments"]) / 1e6, 1),
        "ours_mb": round(ours_out.stat().st_size / 1e6, 1),
        "ffmpeg_mb": round(ff_out.stat().st_size / 1e6, 1),
        "ours_cpu_s_median": round(ours_cpu, 2),
        "ours_process_cpu_s_median": round(statistics.median(o["process_cpu_s"] for o in ours), 2),
        "ours_wall_s_median": round(statistics.median(o["wall_s"] for o in ours), 2),
        "ffmpeg_cpu_s_median": round(ff_cpu, 2),
        "ffmpeg_wall_s_median": round(statistics.median(t["wall_s"] for t in theirs), 2),
        "ratio_cpu_median": round(ours_cpu / ff_cpu, 2),
        "ratios_per_round": [round(o["cpu_s"] / t["cpu_s"], 2) for o, t in zip(ours, theirs, strict=True)],
        "target_ratio": TARGET_RATIO,
        "rounds": rounds,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/mux-bench"))
    parser.add_argument("--seconds", type=float, default=HOUR)
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--keyframe-seconds",
        type=float,
        default=SEGMENT_SECONDS,
        help="the recorder's keyframe interval (its default: 60 s, one per segment)",
    )
    parser.add_argument("--worker", nargs=2, type=Path, metavar=("MANIFEST", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return 0
    width, height = (int(v) for v in args.size.split("x"))
    manifest = make_input(
        args.work, args.seconds, args.fps, (width, height), keyframe_seconds=args.keyframe_seconds
    )
    print(
        f"input: {len(manifest['segments'])} segments, {manifest['frames']} frames, "
        f"{sum(s['bytes'] for s in manifest['segments']) / 1e6:.1f} MB (made in {manifest['made_in_s']} s)",
        flush=True,
    )
    result = bench(manifest, args.work, args.rounds)
    print("mux, 1 h:", json.dumps(result))
    return 0 if result["ratio_cpu_median"] <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
