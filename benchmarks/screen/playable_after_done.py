"""Done → playable by the supervisor, for long calls (issue 12's target: ≤ 10 s for a 30-min call).

The real stack of the screen acceptance test (``tests/e2e/screen_call.py``): the server, Xvfb
showing the server-time pattern (every frame changes: a busy screen, the worst case for the last
segment's size), the recorder service enrolled and running at the product's defaults (5 fps,
60-s segments), agent1's event channel, and one SIPp call per length with a 3-s REST pause a
minute in, a short ACW and Done. Measured from the Done request to the answer of a supervisor's GET
of the muxed file made from *every* segment (the file is then checked to decode, untimed: a
player starts before it has decoded everything; ``run_call``); also when the first muxed file
(complete or not) was served. Polled every 50 ms (plus a GET's own time).

    python -m benchmarks.screen.playable_after_done --minutes 2 10 30 [--size 1920x1080]

Prints one line per call and a JSON summary; the figures go to ``benchmarks/RESULTS.md`` by hand.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.screen_call import run_call, screen_stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, nargs="+", default=[2.0, 10.0])
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--segment-seconds", type=float, default=60.0)
    parser.add_argument("--acw", type=float, default=5.0, help="seconds of ACW before Done")
    parser.add_argument("--work", type=Path, default=None, help="keep the run's files here")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    work = args.work or Path(tempfile.mkdtemp(prefix="playable-"))
    results = []
    # The pattern redrawn at 50 Hz (the test's 200 Hz at 1080p costs a core in Tk alone).
    with screen_stack(
        work,
        fps=args.fps,
        segment_seconds=args.segment_seconds,
        width=width,
        height=height,
        pattern_period=0.02,
    ) as stack:
        for minutes in args.minutes:
            started = time.monotonic()
            run = run_call(
                stack,
                call_seconds=minutes * 60,
                pause_after=min(60.0, minutes * 60 / 4),
                pause_seconds=3.0,
                acw_seconds=args.acw,
            )
            iid = str(run.interaction["id"])
            with sqlite3.connect(stack.server.data_dir / "tandem.db") as db:
                count, size = db.execute(
                    "SELECT COUNT(*), SUM(size) FROM screen_segments WHERE interaction_id = ?", (iid,)
                ).fetchone()
            result = {
                "call_minutes": minutes,
                "size": args.size,
                "fps": args.fps,
                "segment_seconds": args.segment_seconds,
                "segments": count,
                "segment_bytes": size,
                "frames": len(run.segments),
                "muxed_frames": len(run.muxed),  # fewer: frames the mux dropped (see README)
                "done_to_playable_s": round(run.playable_after, 2),
                "done_to_first_mux_s": round(run.first_mux_after, 2),
                "first_mux_complete": run.first_mux == run.complete_mux,
                "wall_minutes": round((time.monotonic() - started) / 60, 1),
            }
            results.append(result)
            print(
                f"{minutes:g}-min call: {count} segments, {size / 1e6:.1f} MB; Done → whole muxed file "
                f"playable {run.playable_after:.2f} s (first muxed file {run.first_mux_after:.2f} s, "
                f"{'complete' if result['first_mux_complete'] else 'incomplete'}); "
                f"{len(run.muxed)} of {len(run.segments)} stored frames muxed",
                flush=True,
            )
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
