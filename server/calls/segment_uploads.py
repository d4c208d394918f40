"""Resumable screen-segment uploads (tus 1.0, docs/screen-segments.md): the upload state, the
partial files, the offset, expiry, and the step that stores a finished segment.

* An upload is a ``screen_uploads`` row (what was declared, and ``offset``: the bytes durably
  held) plus a partial file ``<data_dir>/uploads/<id>.part``. The row's offset is the truth: it
  is written only after the bytes up to it are fsynced, and the file is cut back to it before
  every append (server/calls/partial_file.py), so bytes of a chunk that failed its checksum, or
  that a crash left unsynced, never count.
* Finishing checks the whole file's SHA-256 against the declared one, validates it
  (server/media/segment_validation.py), moves it into storage under a key that must not exist
  (``recordings/YYYY/MM/DD/<interaction>/screen/<run>-<seq:05d>.mp4``) and then, in one
  transaction, inserts the ``screen_segments`` row and deletes the upload. A crash between the
  move and the row leaves the upload row and the stored file: finishing again (an empty PATCH)
  finds the file under the key with the declared digest and completes the row — nothing is
  stored twice, nothing replaced.
* A refused segment leaves nothing: its partial file and row are removed.

Everything here is blocking (files, SQLite): the routes call it in worker threads. One writer per
upload at a time is the route's job (server/api/segment_body.py's WriterGate, on the event loop).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from server.calls.partial_file import PartialFile as PartialFile  # re-exported: segment_body uses it
from server.errors import ScreenRejected, StorageError, StorageKeyExistsError
from server.media.segment_validation import (
    InteractionWindow,
    SegmentMedia,
    Span,
    check_segment_times,
    validate_segment_file,
)
from server.store import models
from server.store.db import session_scope
from server.store.storage import Storage, recording_key, sha256_file
from tandem_protocol.tus import SegmentDeclaration

log = logging.getLogger(__name__)
PART_SUFFIX = ".part"


class AlreadyStored(Exception):
    """The segment (interaction, run, seq) is stored; it is never replaced."""

    def __init__(self, sha256: str) -> None:
        super().__init__(f"segment already stored (sha256 {sha256})")
        self.sha256 = sha256


class DeclaredOtherwise(Exception):
    """An unfinished upload of the same segment was declared with another digest or length."""

    def __init__(self, upload_id: str) -> None:
        super().__init__(f"upload {upload_id} declared the segment otherwise")
        self.upload_id = upload_id


class UploadGone(Exception):
    """No such upload any more (unknown, finished, refused, expired, or its bytes were lost)."""


@dataclass(frozen=True, slots=True)
class Upload:
    id: str
    interaction_id: str
    user_id: int
    run: str
    seq: int
    length: int
    offset: int
    sha256: str
    started_at: float
    final: bool


@dataclass(frozen=True, slots=True)
class StoredSegment:
    interaction_id: str
    key: str
    size: int
    sha256: str
    first_frame_at: float
    last_frame_at: float
    frames: int
    final: bool


def _upload(row: models.ScreenUpload) -> Upload:
    return Upload(
        row.id,
        row.interaction_id,
        row.user_id,
        row.run,
        row.seq,
        row.length,
        row.offset,
        row.sha256,
        row.started_at,
        row.final,
    )


class SegmentUploads:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        storage: Storage,
        uploads_dir: Path,
        *,
        expiry_seconds: float = 24 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._storage = storage
        self.uploads_dir = uploads_dir
        self._expiry = expiry_seconds
        self._clock = clock

    def path(self, upload_id: str) -> Path:
        return self.uploads_dir / f"{upload_id}{PART_SUFFIX}"

    # -- creation, lookup, termination -----------------------------------------------------
    def create(
        self, interaction_id: str, user_id: int, token_id: int | None, decl: SegmentDeclaration
    ) -> tuple[Upload, bool]:
        """The upload for (interaction, run, seq): (it, True) when new, (it, False) for a retried
        identical create. Raises AlreadyStored, or DeclaredOtherwise for an unfinished upload of
        the same segment with another digest or length (the caller removes it under its writer
        gate — the recorder cut the segment again — and creates anew)."""
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            with session_scope(self._sessions) as s:
                stored = self._segment(s, interaction_id, decl.run, decl.seq)
                if stored is not None:
                    raise AlreadyStored(stored.sha256)
                row = self._upload_row(s, interaction_id, decl.run, decl.seq)
                if row is not None:
                    if (row.sha256, row.length) != (decl.sha256, decl.length):
                        raise DeclaredOtherwise(row.id)
                    row.final = row.final or decl.final
                    return _upload(row), False
            upload_id = str(uuid.uuid4())
            now = self._clock()
            fd = os.open(self.path(upload_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            try:
                with session_scope(self._sessions) as s:
                    row = models.ScreenUpload(
                        id=upload_id,
                        interaction_id=interaction_id,
                        user_id=user_id,
                        token_id=token_id,
                        run=decl.run,
                        seq=decl.seq,
                        length=decl.length,
                        offset=0,
                        sha256=decl.sha256,
                        started_at=decl.started_at,
                        final=decl.final,
                        created_at=now,
                        updated_at=now,
                    )
                    s.add(row)
                    s.flush()
                    return _upload(row), True
            except IntegrityError:  # a simultaneous identical create won: answer with its upload
                self.path(upload_id).unlink(missing_ok=True)
        raise StorageError(f"could not create the upload of segment {decl.run}/{decl.seq}: busy, retry")

    def get(self, upload_id: str) -> Upload | None:
        with session_scope(self._sessions) as s:
            row = s.get(models.ScreenUpload, upload_id)
            return None if row is None else _upload(row)

    def terminate(self, upload_id: str) -> None:
        """Remove the upload's bytes, then its row (a crash in between leaves a row whose file is
        gone: the next append finds it broken and removes it)."""
        self.path(upload_id).unlink(missing_ok=True)
        with session_scope(self._sessions) as s:
            row = s.get(models.ScreenUpload, upload_id)
            if row is not None:
                s.delete(row)

    # -- appending ---------------------------------------------------------------------------
    def open_append(self, upload: Upload) -> PartialFile:
        path = self.path(upload.id)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = -1
        if size < upload.offset:  # the durable bytes are gone: nothing to resume from
            log.warning("upload %s lost its partial file; removed", upload.id)
            self.terminate(upload.id)
            raise UploadGone(upload.id)
        self.touch(upload.id)
        return PartialFile(path, upload.offset)

    def record_offset(self, upload_id: str, offset: int) -> None:
        """After the bytes up to ``offset`` are fsynced."""
        with session_scope(self._sessions) as s:
            row = s.get(models.ScreenUpload, upload_id)
            if row is None:
                raise UploadGone(upload_id)
            row.offset = offset
            row.updated_at = self._clock()

    def touch(self, upload_id: str) -> None:
        with session_scope(self._sessions) as s:
            row = s.get(models.ScreenUpload, upload_id)
            if row is not None:
                row.updated_at = self._clock()

    # -- expiry --------------------------------------------------------------------------------
    def expire(self, busy: frozenset[str] = frozenset()) -> int:
        """Remove uploads untouched for the expiry time (and partial files no row names, as old).
        ``busy``: uploads a request is writing right now. Returns how many were removed."""
        cutoff = self._clock() - self._expiry
        with session_scope(self._sessions) as s:
            stale = [
                upload_id
                for upload_id in s.execute(
                    select(models.ScreenUpload.id).where(models.ScreenUpload.updated_at < cutoff)
                ).scalars()
                if upload_id not in busy
            ]
        for upload_id in stale:
            self.terminate(upload_id)
        with session_scope(self._sessions) as s:
            known = set(s.execute(select(models.ScreenUpload.id)).scalars())
        orphans = 0
        if self.uploads_dir.is_dir():
            for path in self.uploads_dir.glob(f"*{PART_SUFFIX}"):
                upload_id = path.name[: -len(PART_SUFFIX)]
                with contextlib.suppress(FileNotFoundError):
                    if upload_id not in known and upload_id not in busy and path.stat().st_mtime < cutoff:
                        path.unlink()
                        orphans += 1
        if stale or orphans:
            log.info(
                "expired %d unfinished segment upload(s), %d orphan partial file(s)", len(stale), orphans
            )
        return len(stale) + orphans

    # -- finishing ---------------------------------------------------------------------------
    def window(self, interaction_id: str, live_pauses: Sequence[Span] = ()) -> InteractionWindow:
        """The interaction's span and every pause span the server knows of: stored ones and the
        live call's (a pause whose row is still queued behind a busy database counts too)."""
        with session_scope(self._sessions) as s:
            inter = s.get(models.Interaction, interaction_id)
            if inter is None:
                raise UploadGone(interaction_id)
            spans = [Span(p.started_at, p.ended_at) for p in inter.pauses]
            end = inter.acw_ended_at if inter.acw_ended_at is not None else self._clock()
            return InteractionWindow(inter.started_at, end, [*spans, *live_pauses])

    def finish(
        self,
        upload: Upload,
        token_id: int | None,
        *,
        live_pauses: Sequence[Span] = (),
        start_slack: float,
        end_slack: float,
    ) -> StoredSegment:
        """Check and store a complete upload. Raises ScreenRejected (the upload is removed: a
        refused segment leaves nothing), AlreadyStored, UploadGone or StorageError."""
        with session_scope(self._sessions) as s:
            inter = s.get(models.Interaction, upload.interaction_id)
            if inter is None:
                raise UploadGone(upload.id)
            key = recording_key(
                upload.interaction_id, inter.started_at, f"screen/{upload.run}-{upload.seq:05d}.mp4"
            )
        source = self.path(upload.id)
        stored_before = not source.exists()
        if stored_before:  # moved into storage by an attempt that stopped before its row
            local = self._storage.local_path(key)
            if local is None or not self._storage.exists(key) or sha256_file(local) != upload.sha256:
                self.terminate(upload.id)
                raise UploadGone(upload.id)
            source = local
        try:
            media, times = self._check(upload, source, live_pauses, start_slack, end_slack)
        except ScreenRejected:
            if not stored_before:
                self.terminate(upload.id)
            raise
        if not stored_before:
            try:
                size = self._storage.put_file(key, source)
            except StorageKeyExistsError:
                # Under this key already: ours (an earlier attempt's) if the digest matches.
                local = self._storage.local_path(key)
                if local is None or sha256_file(local) != upload.sha256:
                    raise
                source.unlink(missing_ok=True)
        size = self._storage.size(key)
        return self._insert(upload, key, size, media, times, token_id)

    def _check(
        self,
        upload: Upload,
        path: Path,
        live_pauses: Sequence[Span],
        start_slack: float,
        end_slack: float,
    ) -> tuple[SegmentMedia, tuple[float, float]]:
        digest = sha256_file(path)
        if digest != upload.sha256:
            raise ScreenRejected(
                "checksum_mismatch",
                f"the segment's sha256 is {digest}, not the declared {upload.sha256}: "
                "corrupted on the way (or declared wrong); upload it again",
            )
        media = validate_segment_file(path)
        times = check_segment_times(
            upload.started_at,
            media,
            self.window(upload.interaction_id, live_pauses),
            start_slack=start_slack,
            end_slack=end_slack,
        )
        return media, (times.first_frame_at, times.last_frame_at)

    def _insert(
        self,
        upload: Upload,
        key: str,
        size: int,
        media: SegmentMedia,
        times: tuple[float, float],
        token_id: int | None,
    ) -> StoredSegment:
        try:
            with session_scope(self._sessions) as s:
                s.add(
                    models.ScreenSegment(
                        interaction_id=upload.interaction_id,
                        run=upload.run,
                        seq=upload.seq,
                        storage_key=key,
                        size=size,
                        sha256=upload.sha256,
                        started_at=upload.started_at,
                        first_frame_at=times[0],
                        last_frame_at=times[1],
                        frames=media.frames,
                        width=media.width,
                        height=media.height,
                        has_audio=media.has_audio,
                        final=upload.final,
                        uploaded_by_token_id=token_id,
                        created_at=self._clock(),
                    )
                )
                row = s.get(models.ScreenUpload, upload.id)
                if row is not None:
                    s.delete(row)
        except IntegrityError as exc:  # stored meanwhile (cannot be another file: the key is taken)
            with session_scope(self._sessions) as s:
                other = self._segment(s, upload.interaction_id, upload.run, upload.seq)
            self.terminate(upload.id)  # its bytes (if not moved) and row; the stored file stays
            raise AlreadyStored(other.sha256 if other is not None else upload.sha256) from exc
        self.path(upload.id).unlink(missing_ok=True)
        return StoredSegment(
            upload.interaction_id, key, size, upload.sha256, times[0], times[1], media.frames, upload.final
        )

    # -- queries -------------------------------------------------------------------------------
    @staticmethod
    def _segment(s: Session, interaction_id: str, run: str, seq: int) -> models.ScreenSegment | None:
        return s.execute(
            select(models.ScreenSegment).where(
                models.ScreenSegment.interaction_id == interaction_id,
                models.ScreenSegment.run == run,
                models.ScreenSegment.seq == seq,
            )
        ).scalar_one_or_none()

    @staticmethod
    def _upload_row(s: Session, interaction_id: str, run: str, seq: int) -> models.ScreenUpload | None:
        return s.execute(
            select(models.ScreenUpload).where(
                models.ScreenUpload.interaction_id == interaction_id,
                models.ScreenUpload.run == run,
                models.ScreenUpload.seq == seq,
            )
        ).scalar_one_or_none()
