"""Issue 13: "Against a real server and SIPp, with the real recorder on Xvfb: the call appears in
the desktop ≤ 500 ms after the INVITE".

Real parts only: ``tandem-server run`` (a subprocess, fresh data directory, demo users), the real
recorder service (enrolled with a one-time code) capturing an Xvfb display, and the real agent
desktop (``agent_app`` MainWindow, in this process) logged in as agent1 on DN 1001 and drawn on
that same Xvfb display (Qt's xcb platform; ``--offscreen`` for Qt's offscreen one). SIPp makes
``--calls`` plain calls to the DN, one after the other; after each the agent clicks Done.

Measured per call: from the INVITE leaving SIPp (SIPp's ``-trace_msg`` stamp, taken when it
sends) to the moment the desktop's call panel shows the caller (``time.time()`` in this process,
right after the panel got the view; tests/e2e/desktop_calls.py). Also printed, to see where the
time goes: INVITE → 200 OK at SIPp, 200 OK → the server's ``call.started`` (the envelope's
``at``), → the desktop's event channel thread reading it, → its Qt thread taking it, → the panel
showing it.

    # from the repository root (needs sipp, sox, Xvfb and xsetroot):
    .venv/bin/python benchmarks/desktop_call_appears.py --calls 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import run_recorder, run_server, xvfb_with_changing_content  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary(name: str, values_s: list[float]) -> str:
    ms = [v * 1000 for v in values_s]
    return (
        f"{name:<28} p50 {statistics.median(ms):7.1f} ms  p95 {percentile(ms, 95):7.1f} ms"
        f"  max {max(ms):7.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--talk-ms", type=int, default=1500, help="how long each call lasts")
    parser.add_argument("--target-ms", type=float, default=500.0, help="the p95 bound (issue 13)")
    parser.add_argument("--offscreen", action="store_true", help="Qt's offscreen platform, not xcb")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="desktop-call-bench-") as tmp:
        work = Path(tmp)
        with (
            run_server(work / "server") as server,
            xvfb_with_changing_content() as display,
            run_recorder(server, "agent1", display, work / "recorder"),
        ):
            # The desktop on the agent's screen, the one the recorder captures.
            os.environ["DISPLAY"] = display
            os.environ["QT_QPA_PLATFORM"] = "offscreen" if args.offscreen else "xcb"
            from PySide6.QtWidgets import QApplication

            from agent_app.widgets.main_window import MainWindow
            from tests.e2e.desktop_calls import PanelWatch, log_in, take_call

            app = QApplication([sys.argv[0]])
            window = MainWindow()
            window.show()
            watch = PanelWatch(window)
            try:
                log_in(window, server, with_recorder=True)
                calls = [
                    take_call(window, watch, server, work / f"call{i}", args.talk_ms)
                    for i in range(args.calls)
                ]
            finally:
                window.shutdown()
                window.close()
                app.quit()
    for i, c in enumerate(calls):
        print(
            f"call {i:2d}: {c.latency * 1000:6.1f} ms  (200 OK {1000 * (c.ok_at - c.invite_at):5.1f},"
            f" published {1000 * (c.published_at - c.invite_at):5.1f}, shown {1000 * c.latency:5.1f})"
            f"  {c.caller_text!r}"
        )
    print(f"{len(calls)} calls, desktop on Qt {os.environ['QT_QPA_PLATFORM']}, DISPLAY {display}")
    print(summary("INVITE -> 200 OK (SIPp)", [c.ok_at - c.invite_at for c in calls]))
    print(summary("200 OK -> call.started", [c.published_at - c.ok_at for c in calls]))
    print(summary("call.started -> channel", [c.received_at - c.published_at for c in calls]))
    print(summary("channel -> Qt thread", [c.delivered_at - c.received_at for c in calls]))
    print(summary("Qt thread -> panel", [c.shown_at - c.delivered_at for c in calls]))
    print(summary("INVITE -> caller shown", [c.latency for c in calls]))
    p95 = percentile([c.latency * 1000 for c in calls], 95)
    ok = p95 <= args.target_ms
    print(f"p95 {p95:.1f} ms {'<=' if ok else '>'} {args.target_ms:g} ms: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    code = main()
    # PySide6 6.12 sometimes aborts while the interpreter finalizes after a window and the event
    # channel's threads lived here ("none_dealloc", exit 134) — after the results were printed.
    # Leave without finalizing so the exit status is the benchmark's verdict.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
