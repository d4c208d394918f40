"""Reading a PATCH body into an upload's partial file (tus 1.0, docs/screen-segments.md).

* One request at a time works on an upload (:class:`WriterGate`). A newcomer — the client retrying
  after a cut the server has not noticed yet — takes over: the current request stops reading its
  body, keeps what it holds and lets go; the newcomer then sees the true offset.
* A chunk with an ``Upload-Checksum`` is appended whole or not at all (460 on a mismatch; cut
  short, it cannot be checked and is discarded). Without one, whatever reached the server before
  a cut is kept — fsynced, then the offset recorded.
* The body is gathered up to ``WRITE_BATCH`` on the event loop and written in worker threads:
  memory stays bounded and the loop (which also carries SIP) never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect, Request

from server.api.errors import ApiError
from server.api.routes_screen_upload import WRITE_BATCH
from server.calls.segment_uploads import PartialFile, SegmentUploads, Upload, UploadGone
from tandem_protocol.tus import CHECKSUM_MISMATCH

log = logging.getLogger(__name__)


class Cut(Exception):
    """The body stopped: the client went away, or a newer request took the upload over."""


class WriterGate:
    """One request at a time works on an upload. A newcomer (the client retrying after a cut the
    server has not noticed yet) takes over: the current writer is told to stop reading its body,
    keeps what it durably wrote, and lets go; the newcomer then sees the true offset."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._stops: dict[str, asyncio.Event] = {}
        self._users: dict[str, int] = {}

    def busy(self) -> frozenset[str]:
        return frozenset(self._users)

    @contextlib.asynccontextmanager
    async def hold(self, upload_id: str) -> AsyncIterator[asyncio.Event]:
        """Yields the event that is set when another request wants this upload."""
        lock = self._locks.setdefault(upload_id, asyncio.Lock())
        self._users[upload_id] = self._users.get(upload_id, 0) + 1
        try:
            current = self._stops.get(upload_id)
            if current is not None:
                current.set()
            async with lock:
                stop = asyncio.Event()
                self._stops[upload_id] = stop
                try:
                    yield stop
                finally:
                    if self._stops.get(upload_id) is stop:
                        del self._stops[upload_id]
        finally:
            self._users[upload_id] -= 1
            if not self._users[upload_id]:
                del self._users[upload_id]
                self._locks.pop(upload_id, None)


def check_room(upload: Upload, size: int) -> None:
    if upload.offset + size > upload.length:
        raise ApiError(
            413,
            "beyond_length",
            f"{size} bytes at offset {upload.offset} would pass Upload-Length {upload.length}",
        )


async def append_body(
    request: Request,
    uploads: SegmentUploads,
    upload: Upload,
    checksum: tuple[str, bytes] | None,
    stop: asyncio.Event,
) -> int:
    """Append the body; returns the offset durably held. A chunk with an ``Upload-Checksum`` is
    kept whole or not at all; without one, whatever arrived before a cut is kept."""
    try:
        partial = await asyncio.to_thread(uploads.open_append, upload)
    except UploadGone as exc:
        raise ApiError(404, "unknown_upload", "the upload's bytes were lost; start again with POST") from exc
    digest = hashlib.new(checksum[0]) if checksum else None
    batch = bytearray()
    received = 0
    try:
        try:
            async for chunk in _body(request, stop):
                received += len(chunk)
                check_room(upload, received)
                batch += chunk
                if len(batch) >= WRITE_BATCH:
                    data, batch = bytes(batch), bytearray()
                    await asyncio.to_thread(_write, partial, digest, data)
            if batch:
                await asyncio.to_thread(_write, partial, digest, bytes(batch))
        except Cut:
            if digest is not None:  # an incomplete chunk cannot be checked: it does not count
                await asyncio.shield(asyncio.to_thread(partial.rollback))
                log.info(
                    "segment upload %s: chunk cut after %d bytes, discarded (checksummed)",
                    upload.id,
                    received,
                )
                raise ApiError(400, "upload_cut", "the chunk was cut short; it was discarded") from None
            if batch:
                await asyncio.shield(asyncio.to_thread(_write, partial, None, bytes(batch)))
            held = await asyncio.shield(asyncio.to_thread(_commit, uploads, upload, partial))
            log.info("segment upload %s: body cut, %d bytes held", upload.id, held)
            raise ApiError(400, "upload_cut", f"the body was cut short; {held} bytes are held") from None
        except ApiError:
            await asyncio.shield(asyncio.to_thread(partial.rollback))  # 413: nothing appended
            raise
        if checksum is not None and digest is not None and digest.digest() != checksum[1]:
            await asyncio.to_thread(partial.rollback)
            raise ApiError(
                CHECKSUM_MISMATCH,
                "checksum_mismatch",
                f"the chunk's {checksum[0]} does not match its Upload-Checksum: discarded, "
                f"the offset stays {upload.offset}; send it again",
                {"Upload-Offset": str(upload.offset)},
            )
        return await asyncio.shield(asyncio.to_thread(_commit, uploads, upload, partial))
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ApiError(507, "storage_full", "the server's disk is full; retry later") from exc
        raise ApiError(500, "io_error", f"could not write the upload: {exc.strerror}") from exc
    finally:
        await asyncio.shield(asyncio.to_thread(partial.close))


def _write(partial: PartialFile, digest: Any, data: bytes) -> None:
    if digest is not None:
        digest.update(data)
    partial.write(data)


def _commit(uploads: SegmentUploads, upload: Upload, partial: PartialFile) -> int:
    held = partial.sync()
    uploads.record_offset(upload.id, held)
    return held


async def _body(request: Request, stop: asyncio.Event) -> AsyncIterator[bytes]:
    """The request body, until it ends, the client goes, or ``stop`` (a newer request) is set."""
    chunks = request.stream().__aiter__()
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while True:
            following = asyncio.ensure_future(chunks.__anext__())
            await asyncio.wait({following, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError, ClientDisconnect, StopAsyncIteration):
                    await following
                raise Cut("a newer request took this upload over")
            try:
                chunk = following.result()
            except StopAsyncIteration:
                return
            except ClientDisconnect as exc:
                raise Cut("the client went away") from exc
            if chunk:
                yield chunk
    finally:
        stopped.cancel()
