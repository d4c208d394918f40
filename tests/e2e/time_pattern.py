"""A test pattern that draws the SERVER time into every frame, and its decoder.

The window (Tk) fills the X screen with an 8×8 grid of black/white blocks: 48 bits of
milliseconds since the Unix epoch on the server clock, then a CRC-16 of them (a frame caught
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
import binascii
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

import numpy as np

COLS, ROWS = 8, 8
MS_BITS = 48
CRC_BITS = 16
BITS = MS_BITS + CRC_BITS
assert COLS * ROWS == BITS
# A block's mean luma must be clearly dark or clearly light; anything between (a blend of two
# patterns, another picture) makes the frame unreadable rather than misread.
DARK, LIGHT = 80, 176


def _crc(ms: int) -> int:
    return binascii.crc_hqx(ms.to_bytes(6, "big"), 0xFFFF)


def encode(ms: int) -> list[bool]:
    """The 64 blocks, row by row, True = white: ``ms`` (most significant bit first), then its CRC."""
    if not 0 <= ms < 1 << MS_BITS:
        raise ValueError(f"{ms} does not fit in {MS_BITS} bits")
    word = (ms << CRC_BITS) | _crc(ms)
    return [bool((word >> (BITS - 1 - i)) & 1) for i in range(BITS)]


def decode_bits(bits: Sequence[bool]) -> int | None:
    """``ms`` from 64 blocks, or None when the check value does not match."""
    if len(bits) != BITS:
        raise ValueError(f"{BITS} bits expected, got {len(bits)}")
    word = 0
    for bit in bits:
        word = (word << 1) | int(bit)
    ms, crc = word >> CRC_BITS, word & ((1 << CRC_BITS) - 1)
    return ms if _crc(ms) == crc else None


def render(ms: int, width: int, height: int) -> np.ndarray:
    """The pattern for ``ms`` as a luma image (what the window shows), for tests of the decoder."""
    image = np.zeros((height, width), dtype=np.uint8)
    for i, bit in enumerate(encode(ms)):
        r, c = divmod(i, COLS)
        if bit:
            y0, y1 = round(r * height / ROWS), round((r + 1) * height / ROWS)
            x0, x1 = round(c * width / COLS), round((c + 1) * width / COLS)
            image[y0:y1, x0:x1] = 255
    return image


def read_gray(gray: np.ndarray) -> int | None:
    """The drawn server time (ms) in a luma image of the whole screen (any size: the grid is in
    proportions, so a downscaled recording reads too), or None. Each block is judged by the mean
    of its middle half, away from the edges where a lossy encoder smears neighbours together."""
    h, w = gray.shape[:2]
    bits: list[bool] = []
    for r in range(ROWS):
        y0, y1 = int((r + 0.25) * h / ROWS), int((r + 0.75) * h / ROWS)
        for c in range(COLS):
            x0, x1 = int((c + 0.25) * w / COLS), int((c + 0.75) * w / COLS)
            mean = float(gray[y0:y1, x0:x1].mean())
            if DARK < mean < LIGHT:
                return None
            bits.append(mean >= LIGHT)
    return decode_bits(bits)


def read_frame(frame: object) -> int | None:
    """The drawn server time (ms) in a decoded PyAV ``VideoFrame``, or None."""
    gray = frame.to_ndarray(format="gray")  # type: ignore[attr-defined]
    return read_gray(gray)


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
        deadline = time.monotonic() + 30
        while not (log_path.exists() and len(draw_log(log_path).drawn) > 20):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"time pattern window did not start:\n{out_path.read_text()[-3000:]}")
            time.sleep(0.05)
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
