"""``tandem-recorder self-test``: can this version run on this PC? The updater runs it on a newly
unpacked version before making it ``current`` (``system.py``); IT can run it by hand.

Three checks, each a line of output: the recorder's modules import (a bundle missing a library
fails here), the capture backend opens and grabs one frame where a display is open (the updater
runs as root without one: then it says so and skips), and the server answers ``/healthz``.
"""

from __future__ import annotations

import importlib
import os
import sys

import httpx

from recorder_service.updater.in_recorder import running_version

MODULES = (
    "recorder_service.service",
    "recorder_service.device_session",
    "recorder_service.encoder",
    "recorder_service.frame_pipeline",
    "recorder_service.segment_uploader",
    "recorder_service.updater.tuf_client",
)


def _has_display() -> bool:
    return sys.platform == "win32" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def self_test(server_url: str | None) -> tuple[bool, list[str]]:
    version = running_version()
    lines: list[str] = []
    ok = True
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # ImportError, or a library failing as it loads
            ok = False
            lines.append(f"FAIL import {name}: {type(exc).__name__}: {exc}")
    if ok:
        lines.append(f"ok   {len(MODULES)} modules import")
    if ok and _has_display():
        try:
            from recorder_service.frame_pipeline import build_grabber
            from tandem_protocol.recorder_policy import RecorderPolicy

            grabber = build_grabber(RecorderPolicy())
            try:
                frame = grabber.grab()
            finally:
                grabber.close()
            lines.append(f"ok   capture backend grabbed a {frame.shape[1]}x{frame.shape[0]} frame")
        except Exception as exc:
            ok = False
            lines.append(f"FAIL capture backend: {type(exc).__name__}: {exc}")
    elif ok:
        lines.append("skip capture backend: no display open here (the updater runs without one)")
    if server_url:
        try:
            status = httpx.get(f"{server_url.rstrip('/')}/healthz", timeout=10).status_code
            if status != 200:
                raise httpx.HTTPError(f"HTTP {status}")
            lines.append(f"ok   server {server_url} answers")
        except httpx.HTTPError as exc:
            ok = False
            lines.append(f"FAIL server {server_url}: {exc}")
    else:
        lines.append("skip server: no server URL configured")
    who = f" (uid {os.getuid()})" if hasattr(os, "getuid") else ""
    lines.append(f"{'healthy' if ok else 'UNHEALTHY'}: tandem-recorder {version}{who}")
    return ok, lines
