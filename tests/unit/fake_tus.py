"""Fakes for the segment uploader's two sides: a small tus 1.0 server on a real socket (the
subset of docs/screen-segments.md, with knobs to cut, damage, forget and refuse) and an in-memory
SegmentQueue. The server does not validate MP4: it stands in for the protocol, not the media checks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import uuid
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from recorder_service.segment_queue import SegmentRef

SegmentKey = tuple[str, str, int]


@dataclass
class FakeUpload:
    interaction_id: str
    meta: dict[str, str]
    length: int
    data: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    offset: int | None  # Upload-Offset of a PATCH
    body: int  # body bytes the server read


class FakeTusServer:
    """Use as a context manager; ``url`` is where it listens (a port the OS picked)."""

    def __init__(self, token: str = "tok") -> None:
        self.token = token
        self.lock = threading.Lock()
        self.uploads: dict[str, FakeUpload] = {}
        self.stored: dict[SegmentKey, bytes] = {}
        self.seen: list[Seen] = []
        self.metadata: list[dict[str, str]] = []  # of every POST, as decoded
        self.received = 0  # PATCH body bytes read, kept or not
        # knobs, consumed in order by the requests they apply to
        self.patch_count = 0
        self.cuts: dict[int, int] = {}  # PATCH number (1, 2, …) → read this many bytes, drop the line
        self.keep_partial = True  # a cut chunk's bytes that arrived are kept (the doc's rule)
        self.lose_after_patch = 0  # forget every upload once this PATCH (1, 2, …) is answered
        self.forget_tail: list[int] = []  # after the next PATCHes: lose this many bytes (a crash)
        self.corrupt_patches = 0  # flip a bit in this many next PATCH bodies (→ 460)
        self.forced: list[tuple[int, dict[str, Any]]] = []  # answer the next requests so
        self.pause_spans: dict[SegmentKey, list[list[float | None]]] = {}  # 422 at completion
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> FakeTusServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def lose_uploads(self) -> None:
        """The server lost its partial uploads (restored from a backup, expired)."""
        with self.lock:
            self.uploads.clear()

    def cut_patch(self, after: int, skip: int = 0) -> None:
        """Cut the PATCH after next ``skip`` ones once ``after`` of its body bytes arrived."""
        with self.lock:
            self.cuts[self.patch_count + 1 + skip] = after

    def patches(self) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method == "PATCH"]


def _handler(fake: FakeTusServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def answer(self, status: int, headers: dict[str, str] | None = None, body: Any = None) -> None:
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Tus-Resumable", "1.0.0")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if payload:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def gate(self) -> bool:
            """The checks every request passes; False when answered already."""
            offset = self.headers.get("Upload-Offset")
            length = int(self.headers.get("Content-Length") or 0) if self.command == "PATCH" else 0
            with fake.lock:
                fake.seen.append(Seen(self.command, self.path, int(offset) if offset else None, length))
                forced = fake.forced.pop(0) if fake.forced else None
            if forced is not None:
                self.rfile.read(length)
                self.answer(
                    forced[0],
                    {k: str(v) for k, v in forced[1].get("headers", {}).items()},
                    forced[1].get("body"),
                )
                return False
            if self.headers.get("Tus-Resumable") != "1.0.0":
                self.answer(412, body={"error": "tus_version", "message": "Tus-Resumable: 1.0.0"})
                return False
            if self.headers.get("Authorization") != f"Bearer {fake.token}":
                self.answer(401, body={"error": "invalid_token", "message": "bad token"})
                return False
            return True

        def upload(self) -> tuple[str, FakeUpload] | None:
            uid = self.path.rsplit("/", 1)[-1]
            with fake.lock:
                up = fake.uploads.get(uid)
            if up is None:
                if self.command == "PATCH":
                    self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.answer(404, body={"error": "unknown_upload", "message": "start again with POST"})
                return None
            return uid, up

        def do_POST(self) -> None:
            if not self.gate():
                return
            parts = self.path.strip("/").split("/")  # api/interactions/{id}/screen/segments
            meta = {}
            for pair in (self.headers.get("Upload-Metadata") or "").split(","):
                if pair.strip():
                    k, _, v = pair.strip().partition(" ")
                    meta[k] = base64.b64decode(v).decode()
            iid, length = parts[2], int(self.headers["Upload-Length"])
            key = (iid, meta["run"], int(meta["seq"]))
            with fake.lock:
                fake.metadata.append(meta)
                stored = fake.stored.get(key)
                existing = next(
                    (u for u, up in fake.uploads.items() if up.interaction_id == iid and up.meta == meta),
                    None,
                )
                if stored is None and existing is None:
                    existing = uuid.uuid4().hex
                    fake.uploads[existing] = FakeUpload(iid, meta, length)
                offset = len(fake.uploads[existing].data) if existing else 0
            if stored is not None:
                self.answer(
                    409,
                    body={
                        "error": "already_uploaded",
                        "message": "stored",
                        "sha256": hashlib.sha256(stored).hexdigest(),
                    },
                )
                return
            self.answer(201, {"Location": f"/api/uploads/{existing}", "Upload-Offset": str(offset)})

        def do_HEAD(self) -> None:
            if not self.gate() or (found := self.upload()) is None:
                return
            up = found[1]
            self.answer(
                200,
                {
                    "Upload-Offset": str(len(up.data)),
                    "Upload-Length": str(up.length),
                    "Cache-Control": "no-store",
                },
            )

        def do_DELETE(self) -> None:
            if not self.gate() or (found := self.upload()) is None:
                return
            with fake.lock:
                fake.uploads.pop(found[0], None)
            self.answer(204)

        def do_PATCH(self) -> None:
            if not self.gate() or (found := self.upload()) is None:
                return
            uid, up = found
            length = int(self.headers["Content-Length"])
            offset = int(self.headers["Upload-Offset"])
            with fake.lock:
                fake.patch_count += 1
                cut = fake.cuts.pop(fake.patch_count, None)
                corrupt = fake.corrupt_patches > 0
                fake.corrupt_patches -= 1 if corrupt else 0
            if offset != len(up.data):
                self.rfile.read(length)
                self.answer(
                    409,
                    {"Upload-Offset": str(len(up.data))},
                    {"error": "offset_mismatch", "message": f"the server holds {len(up.data)} bytes"},
                )
                return
            if offset + length > up.length:
                self.answer(413, body={"error": "too_large", "message": "beyond Upload-Length"})
                self.close_connection = True
                return
            body = bytearray(self.rfile.read(length if cut is None else min(cut, length)))
            with fake.lock:
                fake.received += len(body)
            if cut is not None or len(body) < length:  # we cut the line, or the client did
                with fake.lock:
                    if fake.keep_partial:
                        up.data += body
                self.close_connection = True
                if cut is not None:
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if corrupt and body:
                body[len(body) // 2] ^= 0x01
            algo, _, digest = (self.headers.get("Upload-Checksum") or "").partition(" ")
            if algo == "sha256" and base64.b64decode(digest) != hashlib.sha256(body).digest():
                self.answer(460, body={"error": "checksum_mismatch", "message": "chunk damaged"})
                return
            with fake.lock:
                up.data += body
                offset = len(up.data)
            headers = {"Upload-Offset": str(offset)}
            with fake.lock:
                if fake.patch_count == fake.lose_after_patch:  # before the answer: no race
                    fake.uploads.clear()
            if offset < up.length:
                with fake.lock:
                    if fake.forget_tail:  # answered as held, then lost before it reached the disk
                        del up.data[len(up.data) - fake.forget_tail.pop(0) :]
            if offset == up.length:
                key = (up.interaction_id, up.meta["run"], int(up.meta["seq"]))
                with fake.lock:
                    fake.uploads.pop(uid, None)
                    spans = fake.pause_spans.pop(key, None)
                if spans is not None:
                    self.answer(
                        422,
                        body={
                            "error": "frames_in_pause",
                            "message": "paused frames",
                            "spans": [
                                {"started_at": a, "ended_at": b} for a, b in spans
                            ],  # the server's shape
                        },
                    )
                    return
                whole = hashlib.sha256(up.data).hexdigest()
                if whole != up.meta["sha256"]:
                    self.answer(422, body={"error": "checksum_mismatch", "message": "whole file"})
                    return
                with fake.lock:
                    fake.stored[key] = bytes(up.data)
                headers["X-Tandem-Sha256"] = whole
            self.answer(204, headers)

    return Handler


class ListQueue:
    """An in-memory SegmentQueue over files in a directory."""

    def __init__(self, refs: list[SegmentRef] | None = None) -> None:
        self.lock = threading.Lock()
        self.pending: list[SegmentRef] = list(refs or [])
        self.done: list[tuple[SegmentRef, str]] = []
        self.refusals: list[tuple[SegmentRef, str, str]] = []
        self.pause_cuts: list[tuple[SegmentRef, list[tuple[float, float | None]]]] = []

    def add(self, ref: SegmentRef) -> None:
        with self.lock:
            self.pending.append(ref)

    def ready(self) -> list[SegmentRef]:
        with self.lock:
            return sorted(self.pending, key=lambda r: (r.started_at, r.run, r.seq))

    def uploaded(self, ref: SegmentRef, server_sha256: str) -> None:
        assert server_sha256 == ref.sha256
        with self.lock:
            self.pending.remove(ref)
            self.done.append((ref, server_sha256))

    def refused(self, ref: SegmentRef, code: str, message: str) -> None:
        with self.lock:
            self.pending.remove(ref)
            self.refusals.append((ref, code, message))

    def cut_pauses(self, ref: SegmentRef, spans: list[tuple[float, float | None]]) -> SegmentRef | None:
        """Stands in for the spool's cut: keeps the first half of the file."""
        data = ref.path.read_bytes()[: ref.size // 2]
        with self.lock:
            self.pending.remove(ref)
            self.pause_cuts.append((ref, spans))
        if not data:
            return None
        path = ref.path.with_name(ref.path.stem + "-cut.mp4")
        path.write_bytes(data)
        new = replace(ref, path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest())
        self.add(new)
        return new


def segment(
    directory: Path, iid: str, seq: int, data: bytes, *, run: str = "run1", final: bool = False
) -> SegmentRef:
    """A segment file with these bytes, as the spool would hand it out."""
    path = directory / f"{iid}-{run}-{seq:05d}.mp4"
    path.write_bytes(data)
    return SegmentRef(iid, run, seq, path, 1000.0 + seq, hashlib.sha256(data).hexdigest(), len(data), final)
