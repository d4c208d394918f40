"""A test pattern that draws the SERVER time into every frame, and its decoder.

The window (Tk) fills the X screen with the pattern of server/media/time_pattern_reader.py (an 8×8
grid of black/white blocks: 48 bits of milliseconds on the server clock and a CRC-16; a frame caught
between two redraws, or something else on screen, fails the check and reads as ``None``). It is
redrawn every ``period`` seconds (default 5 ms: ~200 Hz) on a monotonic schedule. Tk's canvas
draws into an off-screen pixmap and copies it to the window in one request, so a grab sees one
whole pattern, never half of two.

The server time comes from the same NTP-style exchange the recorder uses (``time.ping`` /
``time.pong`` on ``/api/events``, the lowest-round-trip sample of the last 8, refreshed every 2 s)
with an agent token of its own, so it is the server's clock and not this machine's by accident.

Each redraw appends to a log the drawn value and the server time once it was flushed to the X
server (two integers per line, in order): the next line's flush time is by when a frame's picture
had been replaced, which tells the test how long that picture was on screen (the pattern's own
lag on a loaded machine, as opposed to the recorder's stamping error).

Run: ``python -m tests.e2e.time_pattern --server URL --token-file F --log F`` with ``DISPLAY`` set.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from server.media.time_pattern_reader import (  # the pattern itself lives with its reader
    BITS,
    COLS,
    ROWS,
    decode_bits,
    encode,
    read_frame,
    read_gray,
    render,
)
from tests.e2e.harness import wait_started

__all__ = [
    "BITS",
    "COLS",
    "ROWS",
    "Draws",
    "decode_bits",
    "draw_log",
    "encode",
    "pattern_window",
    "read_frame",
    "read_gray",
    "render",
]


@dataclass
class Draws:
    """The window's draw log: per redraw, the value drawn (ms) and the server time (ms) by which
    its picture had been handed to the X server (after the flush)."""

    drawn: list[int]
    flushed: list[int]

    def replaced_at(self, ms: int) -> float | None:
        """Server time (s) by which the picture showing ``ms`` was gone from the screen: when the
        next picture was flushed. None if ``ms`` was never drawn."""
        i = bisect.bisect_left(self.drawn, ms)
        if i + 1 >= len(self.drawn) or self.drawn[i] != ms:
            return None
        return self.flushed[i + 1] / 1000


def draw_log(path: Path) -> Draws:
    """The window's draw log (a torn last line from a live writer is left out)."""
    drawn, flushed = [], []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            d, f = (int(v) for v in line.split())
            drawn.append(d)
            flushed.append(f)
    return Draws(drawn, flushed)


# -- the window process -------------------------------------------------------------------------


class ServerClock:
    """Server time from ``time.ping``/``time.pong`` on the event channel, refreshed in a thread."""

    def __init__(self, server_url: str, token: str) -> None:
        from recorder_service.clock import ClockSync, MonotonicWallClock

        self._url = server_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        self._token = token
        self.sync = ClockSync(MonotonicWallClock())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="time-ping", daemon=True)

    def start(self, timeout: float = 20.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.sync.synced:
            if time.monotonic() > deadline:
                raise SystemExit("time pattern: no time.pong from the server")
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        from websockets.sync.client import connect

        from tandem_protocol.events import Envelope, TimePing, parse_envelope

        with connect(
            f"{self._url}/api/events?client=desktop",
            additional_headers={"Authorization": f"Bearer {self._token}"},
            open_timeout=10,
        ) as ws:
            sent = 0
            while not self._stop.is_set():
                ping = TimePing(t0=self.sync.local_now())
                ws.send(Envelope(type="time.ping", data=asdict(ping), at=ping.t0).to_json())
                sent += 1
                deadline = time.monotonic() + (0.05 if sent < 8 else 2.0)
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        text = ws.recv(timeout=left)
                    except TimeoutError:
                        break
                    t3 = self.sync.local_now()
                    env = parse_envelope(text)
                    if env.type == "time.pong":
                        d = env.data
                        self.sync.add_sample(float(d["t0"]), float(d["t1"]), float(d["t2"]), t3)


def run_window(server_url: str, token: str, log_path: Path, period: float) -> None:
    import tkinter as tk

    clock = ServerClock(server_url, token)
    clock.start()
    root = tk.Tk()
    width, height = root.winfo_screenwidth(), root.winfo_screenheight()
    root.overrideredirect(True)  # no decoration; there is no window manager on Xvfb anyway
    root.geometry(f"{width}x{height}+0+0")
    canvas = tk.Canvas(root, width=width, height=height, highlightthickness=0, bd=0, bg="black")
    canvas.pack()
    bw, bh = width / COLS, height / ROWS
    ids = [
        canvas.create_rectangle(c * bw, r * bh, (c + 1) * bw, (r + 1) * bh, fill="black", width=0)
        for r in range(ROWS)
        for c in range(COLS)
    ]
    shown: list[bool | None] = [None] * BITS
    log = log_path.open("w", buffering=1 << 16)
    state = {"next": time.monotonic(), "flushed": time.monotonic()}

    def tick() -> None:
        ms = int(clock.sync.server_now() * 1000)
        for i, bit in enumerate(encode(ms)):
            if bit != shown[i]:
                canvas.itemconfigure(ids[i], fill="white" if bit else "black")
                shown[i] = bit
        # Draw now and flush to the X server (``update`` runs Tk's idle redraw, then its event
        # loop's XFlush); the time after it bounds when this picture replaced the last one.
        root.update()
        log.write(f"{ms} {int(clock.sync.server_now() * 1000)}\n")
        now = time.monotonic()
        if now - state["flushed"] > 0.2:
            log.flush()
            state["flushed"] = now
        state["next"] += period
        if state["next"] < now:  # fell behind (a loaded machine): no catching up
            state["next"] = now + period
        root.after(max(1, round((state["next"] - now) * 1000)), tick)

    root.after(1, tick)
    # SIGTERM ends the loop (the handler runs between Tk callbacks) so the log is complete.
    signal.signal(signal.SIGTERM, lambda *_: root.quit())
    try:
        root.mainloop()
    finally:
        log.close()
        clock.stop()


@contextlib.contextmanager
def pattern_window(
    display: str, server_url: str, token: str, workdir: Path, period: float = 0.005
) -> Iterator[Path]:
    """Run the window on ``display`` until the block ends; yields its draw log once it draws."""
    workdir.mkdir(parents=True, exist_ok=True)
    token_file = workdir / "pattern-token"
    token_file.write_text(token)
    log_path = workdir / "pattern-draws.log"
    out_path = workdir / "pattern.out"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DISPLAY": display, "PYTHONPATH": str(root)}
    cmd = [sys.executable, "-m", "tests.e2e.time_pattern", "--server", server_url]
    cmd += ["--token-file", str(token_file), "--log", str(log_path), "--period", str(period)]
    with out_path.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_started(
            proc,
            lambda: log_path.exists() and len(draw_log(log_path).drawn) > 20,
            "the time pattern window's first draws",
            lambda: out_path.read_text(errors="replace")[-3000:],
            step=0.05,
        )
        yield log_path
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--server", required=True)
    parser.add_argument("--token-file", required=True, type=Path)
    parser.add_argument("--log", required=True, type=Path)
    parser.add_argument("--period", type=float, default=0.005)
    args = parser.parse_args(argv)
    run_window(args.server, args.token_file.read_text().strip(), args.log, args.period)
    return 0


if __name__ == "__main__":
    sys.exit(main())
