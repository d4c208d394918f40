"""Other codecs on the same recorded workload (``tune.py record``): VP9 (libvpx, real-time,
screen-content tuning) and AV1 (SVT-AV1, screen-content mode), as PyAV's bundled FFmpeg has them
(no libaom). Same replay as ``tune.py``: changed frames only, pts in ms, one keyframe, MP4 out;
prints encode CPU (process time), bytes and luma SSIM beside x264 with our settings.

    python -m benchmarks.screen.codecs /tmp/screen-heavy
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from benchmarks.screen.quality import ssim_y

CANDIDATES: dict[str, tuple[str, dict[str, str]]] = {
    # cpu-used 8 = libvpx's fastest real-time speed; tune-content=screen its screen tools
    "vp9 rt speed 8 screen": (
        "libvpx-vp9",
        {
            "deadline": "realtime",
            "cpu-used": "8",
            "tune-content": "screen",
            "crf": "40",
            "b": "0",
            "row-mt": "1",
            "lag-in-frames": "0",
            "threads": "1",
            "g": "100000",
        },
    ),
    # preset 12/13 = SVT-AV1's fastest; scm=1 its screen-content mode (palette, intra block copy)
    "av1 svt preset 12 scm": (
        "libsvtav1",
        {"preset": "12", "crf": "40", "svtav1-params": "scm=1:lp=1:keyint=-1", "g": "100000"},
    ),
}


def replay(src: Path, out: Path, codec: str, options: dict[str, str]) -> dict[str, Any]:
    ticks = [(int(p), bool(c)) for p, c in json.loads((src / "ticks.json").read_text())]
    frames = {p: np.load(src / f"{p:08d}.npy") for p, c in ticks if c}
    first = next(iter(frames.values()))
    cpu = time.process_time()
    with av.open(str(out), mode="w", format="mp4") as container:
        stream: Any = container.add_stream(codec, rate=5, options=options)
        stream.width, stream.height, stream.pix_fmt = first.shape[1], first.shape[0], "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        for pts in sorted(frames):
            frame = av.VideoFrame.from_numpy_buffer(frames[pts], format="bgra").reformat(format="yuv420p")
            frame.pts = pts
            frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    cpu = time.process_time() - cpu
    sample = sorted(frames)[::10]
    scores = []
    with av.open(str(out)) as container:
        for frame in container.decode(video=0):
            if frame.pts in sample:
                scores.append(ssim_y(frames[frame.pts][..., 2::-1], frame.to_ndarray(format="rgb24")))
    return {"cpu_s": round(cpu, 2), "bytes": out.stat().st_size, "ssim_y_min": round(min(scores), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    for name, (codec, options) in CANDIDATES.items():
        try:
            result: dict[str, Any] = replay(args.dir, Path(f"/tmp/screen-codec-{codec}.mp4"), codec, options)
        except (av.FFmpegError, ValueError) as exc:
            result = {"error": str(exc)}
        print(json.dumps({"codec": name, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
