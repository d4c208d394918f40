"""Uploads finished captures from the spool to ``PUT /api/interactions/{id}/screen``.

A single worker thread (uploads are rare and large; one at a time keeps the agent's uplink
usable) with a due-time heap: network errors, 5xx, 408 and 429 are retried with capped
exponential backoff, 401 slowly (the token must be renewed with ``tandem-recorder login``),
other 4xx are final and recorded in the manifest with the server's message (the file is kept).
``409 already_uploaded`` carries the sha256 of what the server stores: when it is ours, an earlier
attempt succeeded but its answer was lost (done, the file may go); otherwise the server holds a
*different* screen recording for this interaction, and the file is kept, the manifest marked
``conflict`` and the fact logged as an error — never deleted on the server's word alone. ``409
upload_in_progress`` (another upload of it is under way) is retried. The body is streamed from
the file, never read whole into memory.
"""

from __future__ import annotations

import heapq
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import httpx

from recorder_service.errors import SpoolError
from recorder_service.spool import Spool, SpoolState
from tandem_protocol.backoff import backoff_delay
from tandem_protocol.payloads import UploadHeaders

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
UNAUTHORIZED_RETRY = 300.0
RETRY_CAP = 300.0


class Verdict(Enum):
    DONE = "done"
    RETRY = "retry"
    RETRY_SLOW = "retry_slow"  # credentials problem: a fast retry cannot help
    FINAL = "final"
    CONFLICT = "conflict"  # the server stores another file for this interaction: keep ours


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    message: str = ""


def classify(status: int, body: bytes, own_sha256: str | None = None) -> Outcome:
    """What an HTTP answer to an upload of the file whose digest is ``own_sha256`` means."""
    raw = _json_object(body)
    error, message = str(raw.get("error", "")), str(raw.get("message", ""))
    if not raw and body and status >= 400:
        message = body[:200].decode("utf-8", "replace")
    if status in (200, 201, 204):
        return Outcome(Verdict.DONE)
    if status == 409 and error == "already_uploaded":
        stored = str(raw.get("sha256", "")).lower()
        if own_sha256 is not None and stored == own_sha256.lower():
            return Outcome(Verdict.DONE, "server already had it")
        return Outcome(
            Verdict.CONFLICT,
            f"the server stores a different screen recording for this interaction "
            f"(sha256 {stored or 'not given'}, ours {own_sha256}); our file is kept",
        )
    if status == 409 and error == "upload_in_progress":
        return Outcome(Verdict.RETRY, "another upload of it is under way")
    if status == 401:
        return Outcome(
            Verdict.RETRY_SLOW, "token rejected, enrol again: `tandem-recorder login --enroll-code`"
        )
    if status in (408, 429) or status >= 500:
        return Outcome(Verdict.RETRY, f"HTTP {status} {error}".strip())
    return Outcome(Verdict.FINAL, f"HTTP {status} {error}: {message}".strip(": "))


def _json_object(body: bytes) -> dict[str, object]:
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            yield block


class Uploader:
    def __init__(
        self,
        spool: Spool,
        server_url: str,
        token: Callable[[], str],
        *,
        transport: httpx.BaseTransport | None = None,
        on_finished: Callable[[str, SpoolState], None] | None = None,
    ) -> None:
        self._spool = spool
        self._server = server_url.rstrip("/")
        self._token = token
        self._on_finished = on_finished
        self._heap: list[tuple[float, str]] = []
        self._queued: set[str] = set()
        self._cond = threading.Condition()
        self._stopping = False
        self._client = httpx.Client(
            timeout=httpx.Timeout(connect=10.0, read=120.0, write=120.0, pool=10.0),
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=1),
            transport=transport,
        )
        self._thread = threading.Thread(target=self._run, name="uploader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._client.close()

    def enqueue(self, interaction_id: str, delay: float = 0.0) -> None:
        with self._cond:
            if interaction_id in self._queued:
                return
            self._queued.add(interaction_id)
            heapq.heappush(self._heap, (time.monotonic() + delay, interaction_id))
            self._cond.notify_all()

    def requeue_spool(self) -> list[str]:
        """Start-up: close out crashed captures and queue every finished one."""
        queued: list[str] = []
        for manifest in self._spool.manifests():
            iid = manifest.interaction_id
            try:
                if manifest.state == SpoolState.CAPTURING:
                    manifest = self._spool.close_out_crashed(iid)
                    log.warning("recovered interrupted capture %s: %s", iid, manifest.state.value)
            except SpoolError as exc:
                log.error("cannot recover %s: %s", iid, exc)
                continue
            if manifest.state == SpoolState.FINISHED:
                self.enqueue(iid)
                queued.append(iid)
        return queued

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = None if not self._heap else max(0.0, self._heap[0][0] - time.monotonic())
                    self._cond.wait(wait)
                if self._stopping:
                    return
                _, iid = heapq.heappop(self._heap)
                self._queued.discard(iid)
            retry_in = self._attempt(iid)
            if retry_in is not None:
                self.enqueue(iid, retry_in)

    def _attempt(self, iid: str) -> float | None:
        """One upload attempt; returns the delay before the next one, or None when settled."""
        try:
            manifest = self._spool.read(iid)
            if manifest is None or manifest.state != SpoolState.FINISHED:
                return None
            manifest = self._spool.update(iid, attempts=manifest.attempts + 1)
        except SpoolError as exc:
            log.error("upload %s: spool unreadable: %s", iid, exc)
            return None
        if manifest.started_at is None or manifest.sha256 is None or manifest.size is None:
            self._settle(iid, SpoolState.FAILED, "manifest lacks start time or checksum")
            return None
        media = self._spool.media_path(iid)
        headers = {
            "Authorization": f"Bearer {self._token()}",
            UploadHeaders.STARTED_AT: repr(manifest.started_at),
            UploadHeaders.SHA256: manifest.sha256,
            "Content-Type": "video/mp4",
            "Content-Length": str(manifest.size),
        }
        url = f"{self._server}/api/interactions/{iid}/screen"
        try:
            response = self._client.put(url, content=_file_chunks(media), headers=headers)
            outcome = classify(response.status_code, response.content, manifest.sha256)
        except FileNotFoundError:
            self._settle(iid, SpoolState.FAILED, "media file missing")
            return None
        except httpx.HTTPError as exc:
            outcome = Outcome(Verdict.RETRY, f"network error: {exc.__class__.__name__}: {exc}")
        attempt = manifest.attempts - 1
        if outcome.verdict == Verdict.DONE:
            log.info("uploaded screen of %s (%d bytes)", iid, manifest.size)
            self._settle(iid, SpoolState.UPLOADED, "")
            return None
        if outcome.verdict == Verdict.FINAL:
            log.error("upload of %s refused, giving up (file kept): %s", iid, outcome.message)
            self._settle(iid, SpoolState.FAILED, outcome.message)
            return None
        if outcome.verdict == Verdict.CONFLICT:
            log.error(
                "UPLOAD CONFLICT for %s: %s. File %s kept for an administrator.",
                iid,
                outcome.message,
                media,
            )
            self._settle(iid, SpoolState.CONFLICT, outcome.message)
            return None
        delay = (
            UNAUTHORIZED_RETRY
            if outcome.verdict == Verdict.RETRY_SLOW
            else backoff_delay(attempt, base=1.0, cap=RETRY_CAP)
        )
        log.warning("upload of %s failed (%s); retry in %.0f s", iid, outcome.message, delay)
        return delay

    def _settle(self, iid: str, state: SpoolState, error: str) -> None:
        try:
            if state == SpoolState.UPLOADED:
                self._spool.mark_uploaded(iid)
            else:
                self._spool.update(iid, state=state, error=error)
        except SpoolError as exc:
            log.error("upload %s: cannot update manifest: %s", iid, exc)
        if self._on_finished is not None:
            self._on_finished(iid, state)
