"""Screen benchmark runner: our recorder pipeline against ffmpeg x11grab + libx264 on the scripted
1920×1080 desktop (``desktop.py``) on an Xvfb of our own, alternating (ours, ultrafast, veryfast,
ours, …), each run a fresh desktop replaying the same script from its start.

CPU is each capture process's own CPU time (user + system, from its rusage at exit: ``wait4``),
so other load on the machine does not count. Bytes are the file written. Then one quality run of
ours per workload saves the exact images it encoded every 5 s: SSIM of the decoded video against
them (ffmpeg's ssim filter, all planes at 4:4:4; and luma SSIM in numpy), and a PNG of a crop of
the typed text (reference above, ours below) for a person to read.

    python -m benchmarks.screen.run --out /tmp/screen-bench [--reps 2] [--duration 60]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

from benchmarks.screen.quality import ssim_ffmpeg, ssim_y
from benchmarks.screen.xsession import HEIGHT, WIDTH, desktop, xvfb

FPS = 5
CROP = (350, 860, 1100, 200)  # x, y, w, h: the case notes being typed into


def ffmpeg_cmd(display: str, out: Path, preset: str, duration: float) -> list[str]:
    return [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y",
        "-f", "x11grab", "-framerate", str(FPS), "-video_size", f"{WIDTH}x{HEIGHT}", "-i", display,
        "-t", str(duration),
        "-c:v", "libx264", "-bf", "0", "-g", "300", "-preset", preset, "-pix_fmt", "yuv420p",
        str(out),
    ]  # fmt: skip


def ours_cmd(out: Path, duration: float, extra: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "benchmarks.screen.ours",
        str(out),
        "--fps",
        str(FPS),
        "--duration",
        str(duration),
        *extra,
    ]


def run_measured(cmd: list[str], display: str) -> tuple[float, str]:
    """Run to completion; (CPU seconds of that process and its children, its stdout)."""
    proc = subprocess.Popen(cmd, env={**os.environ, "DISPLAY": display}, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} … failed with {proc.returncode}")
    return usage.ru_utime + usage.ru_stime, out


def save_png(rgb: np.ndarray, path: Path) -> None:
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    with av.open(str(path), mode="w", format="image2", options={"update": "1"}) as c:
        s = c.add_stream("png", rate=1)
        s.width, s.height, s.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
        for packet in s.encode(frame):
            c.mux(packet)
        for packet in s.encode(None):
            c.mux(packet)


def quality(
    display: str, workload: str, out_dir: Path, duration: float, extra: list[str], lead: float = 4.0
) -> dict[str, Any]:
    ref_dir = out_dir / f"{workload}-reference"
    video = out_dir / f"{workload}-quality.mp4"
    with desktop(display, workload, duration, lead=lead):
        _, stdout = run_measured(ours_cmd(video, duration, [*extra, "--reference", str(ref_dir)]), display)
    refs = json.loads(stdout)["references"]
    scores: list[dict[str, float]] = []
    with av.open(str(video)) as container:
        decoded = {f.pts: f.to_ndarray(format="rgb24") for f in container.decode(video=0) if f.pts in refs}
    crop_rows = []
    for pts in refs:
        ref = np.load(ref_dir / f"{pts:08d}.npy")[..., 2::-1].copy()
        got = decoded[pts]
        if got.shape != ref.shape:  # downscaled: compare at our size
            frame = av.VideoFrame.from_ndarray(ref, format="rgb24")
            ref = frame.reformat(width=got.shape[1], height=got.shape[0], interpolation="AREA").to_ndarray()
        save_png(ref, out_dir / "ref.png")
        save_png(got, out_dir / "got.png")
        score = ssim_ffmpeg(out_dir / "ref.png", out_dir / "got.png")
        score["y_numpy"] = ssim_y(ref, got)
        scores.append(score)
        if pts == refs[-1]:
            x, y, w, h = CROP
            scale = got.shape[1] / WIDTH
            x, y, w, h = (round(v * scale) for v in (x, y, w, h))
            crop_rows = [
                ref[y : y + h, x : x + w],
                np.full((6, w, 3), 255, np.uint8),
                got[y : y + h, x : x + w],
            ]
    crop_path = out_dir / f"{workload}-text-crop.png"
    save_png(np.vstack(crop_rows), crop_path)
    return {
        "ssim_all_min": min(s["all"] for s in scores),
        "ssim_all_mean": sum(s["all"] for s in scores) / len(scores),
        "ssim_y_min": min(s["y"] for s in scores),
        "samples": len(scores),
        "crop": str(crop_path),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workloads", default="heavy,office")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--ours-args", default="", help="extra arguments for ours.py (encoder settings)")
    parser.add_argument(
        "--base-args",
        help="also run ours with these arguments instead, as tool 'base', alternating with the others "
        "(an A/B of an encoder change in one session, e.g. '--keyframe-frames 0')",
    )
    parser.add_argument("--lead", type=float, default=4.0, help="seconds the scripted desktop gets to start")
    parser.add_argument("--no-quality", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    extra = args.ours_args.split()
    tools = (
        ["ours", "ultrafast", "veryfast"]
        if args.base_args is None
        else ["base", "ours", "ultrafast", "veryfast"]
    )
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    with xvfb() as display:
        for workload in args.workloads.split(","):
            for rep in range(args.reps):
                for tool in tools:
                    path = args.out / f"{workload}-{tool}-{rep}.mp4"
                    if tool in ("ours", "base"):
                        cmd = ours_cmd(
                            path, args.duration, extra if tool == "ours" else args.base_args.split()
                        )
                    else:
                        cmd = ffmpeg_cmd(display, path, tool, args.duration)
                    with desktop(display, workload, args.duration, lead=args.lead):
                        started = time.monotonic()
                        cpu, stdout = run_measured(cmd, display)
                        wall = time.monotonic() - started
                    row = {
                        "workload": workload,
                        "tool": tool,
                        "rep": rep,
                        "cpu_s": round(cpu, 2),
                        "wall_s": round(wall, 1),
                        "bytes": path.stat().st_size,
                        "detail": json.loads(stdout) if tool in ("ours", "base") else {},
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
            if not args.no_quality:
                summary[workload] = quality(display, workload, args.out, args.duration, extra, args.lead)
                print(json.dumps({workload: summary[workload]}), flush=True)
    print(f"\n{'workload':8} {'tool':10} {'CPU s (runs)':>22} {'MB (runs)':>22} {'MB/h':>7}")
    for workload in args.workloads.split(","):
        for tool in tools:
            rs = [r for r in rows if r["workload"] == workload and r["tool"] == tool]
            cpus = " / ".join(f"{r['cpu_s']:.2f}" for r in rs)
            mbs = " / ".join(f"{r['bytes'] / 1e6:.3f}" for r in rs)
            mbh = sum(r["bytes"] for r in rs) / len(rs) / 1e6 * 3600 / args.duration
            print(f"{workload:8} {tool:10} {cpus:>22} {mbs:>22} {mbh:7.1f}")
        ours = [r for r in rows if r["workload"] == workload and r["tool"] == "ours"]
        ultra = [r for r in rows if r["workload"] == workload and r["tool"] == "ultrafast"]
        very = [r for r in rows if r["workload"] == workload and r["tool"] == "veryfast"]
        cpu_ratio = sum(r["cpu_s"] for r in ours) / sum(r["cpu_s"] for r in ultra)
        byte_ratio = sum(r["bytes"] for r in ours) / sum(r["bytes"] for r in very)
        print(f"{workload}: CPU ours/ultrafast = {cpu_ratio:.2f} (target ≤ 1), ", end="")
        print(f"bytes ours/veryfast = {byte_ratio:.2f} (target ≤ 0.5)")
        base = [r for r in rows if r["workload"] == workload and r["tool"] == "base"]
        if base:
            base_ratio = sum(r["bytes"] for r in base) / sum(r["bytes"] for r in very)
            print(f"{workload}: bytes base/veryfast = {base_ratio:.3f}, ours/veryfast = {byte_ratio:.3f}")
        if workload in summary:
            q = summary[workload]
            print(f"{workload}: SSIM (ffmpeg, all planes) min {q['ssim_all_min']:.4f}", end="")
            print(f" mean {q['ssim_all_mean']:.4f}, Y min {q['ssim_y_min']:.4f}", end="")
            print(f" over {q['samples']} frames (target ≥ 0.97); text crop {q['crop']}")
    (args.out / "results.json").write_text(json.dumps({"rows": rows, "quality": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
