"""Putting a recording's file into storage together with its ``media_files`` row, so that nothing
stored is ever replaced, two writers for one (interaction, kind) never both win, and a crash at any
point leaves nothing that start-up recovery cannot finish or roll back.

The protocol, for every kind:

1. **claim** — a ``media_files`` row in state ``pending`` is inserted and committed in its own
   transaction. The unique constraint on (interaction_id, kind) makes this the atomic choice of a
   winner: a second writer gets :class:`MediaBusyError` (pending) or :class:`MediaExistsError`.
2. the file goes into storage under the row's key; the backend refuses to overwrite a key.
3. **complete** — the row becomes ``complete``; only complete rows are visible to the rest of the
   server (``Interaction.media``, ``CallRepository.media``).
4. on failure the file (or its partial) is discarded, then the row deleted (that order: a crash in
   between leaves a pending row without a file, which recovery removes; never a file without a row).

Recovery (``recover_pending``, at start-up, before requests are served): a pending row whose file
is in storage with the row's sha256 is completed (the file was fully written and checked before the
put); any other pending row is rolled back (partial file discarded, row deleted).

Evidence — ``voice`` (the WAV master) and ``screen`` — is never replaced: storing it again raises
:class:`MediaExistsError`. Files the server derives from evidence (``muxed``, ``voice:<format>``)
may be regenerated: the old row is turned into a pending claim for the new file (so a crash while
replacing rolls it back like any unfinished write), the old file discarded, the new one stored.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from server.errors import MediaBusyError, MediaExistsError, StorageError
from server.store import models
from server.store.db import session_scope
from server.store.storage import Storage, recording_key

log = logging.getLogger(__name__)

EVIDENCE_KINDS = frozenset({"voice", "screen"})
PENDING = "pending"
COMPLETE = "complete"


@dataclass(frozen=True, slots=True)
class Claim:
    row_id: int
    interaction_id: str
    kind: str
    key: str
    started_at: float


class MediaStore:
    def __init__(self, factory: sessionmaker[Session], storage: Storage) -> None:
        self._factory = factory
        self._storage = storage

    # -- the protocol's steps ------------------------------------------------------------------
    def claim(
        self,
        interaction_id: str,
        kind: str,
        name: str,
        content_type: str,
        started_at: float,
        sha256: str,
        *,
        size: int = 0,
        duration: float | None = None,
    ) -> Claim:
        """Step 1. Raises LookupError (no such interaction), MediaExistsError or MediaBusyError."""
        discard: str | None = None
        try:
            with session_scope(self._factory) as s:
                inter = s.get(models.Interaction, interaction_id)
                if inter is None:
                    raise LookupError(f"unknown interaction {interaction_id}")
                key = recording_key(interaction_id, inter.started_at, name)
                row = self._row(s, interaction_id, kind)
                if row is not None:
                    if row.state == PENDING:
                        raise MediaBusyError(f"the {kind} of {interaction_id} is being stored right now")
                    if kind in EVIDENCE_KINDS:
                        raise MediaExistsError(interaction_id, kind, row.sha256)
                    discard = row.storage_key  # a derived file being regenerated
                else:
                    row = models.MediaFile(interaction_id=interaction_id, kind=kind, created_at=time.time())
                    s.add(row)
                row.state = PENDING
                row.storage_key = key
                row.content_type = content_type
                row.sha256 = sha256
                row.size = size
                row.started_at = started_at
                row.duration = duration
                s.flush()
                claim = Claim(row.id, interaction_id, kind, key, started_at)
        except IntegrityError as exc:  # lost the race for the unique (interaction, kind)
            with session_scope(self._factory) as s:
                row = self._row(s, interaction_id, kind)
                if row is not None and row.state == COMPLETE:
                    raise MediaExistsError(interaction_id, kind, row.sha256) from exc
            raise MediaBusyError(f"the {kind} of {interaction_id} is being stored right now") from exc
        if discard is not None:
            self._storage.discard(discard)
        return claim

    def annotate(self, claim: Claim, size: int, duration: float | None) -> None:
        """What the file is, recorded before it goes into storage (recovery needs nothing else)."""
        with session_scope(self._factory) as s:
            row = s.get(models.MediaFile, claim.row_id)
            if row is None or row.state != PENDING:
                raise StorageError(f"the claim on the {claim.kind} of {claim.interaction_id} was lost")
            row.size = size
            row.duration = duration

    def put(self, claim: Claim, source: Path) -> int:
        """Step 2: move ``source`` into storage under the claimed key."""
        return self._storage.put_file(claim.key, source)

    def complete(self, claim: Claim, size: int) -> None:
        """Step 3."""
        with session_scope(self._factory) as s:
            row = s.get(models.MediaFile, claim.row_id)
            if row is None or row.state != PENDING:
                raise StorageError(f"the claim on the {claim.kind} of {claim.interaction_id} was lost")
            row.state = COMPLETE
            row.size = size
            row.created_at = time.time()
            if claim.kind == "muxed":
                inter = s.get(models.Interaction, claim.interaction_id)
                if inter is not None:
                    inter.media_started_at = claim.started_at

    def abandon(self, claim: Claim) -> None:
        """Step 4: undo a claim whose file did not make it (file first, then the row)."""
        self._storage.discard(claim.key)
        with session_scope(self._factory) as s:
            row = s.get(models.MediaFile, claim.row_id)
            if row is not None and row.state == PENDING:
                s.delete(row)

    # -- all in one, for the server's own files ------------------------------------------------
    def store(
        self,
        interaction_id: str,
        kind: str,
        source: Path,
        name: str,
        content_type: str,
        started_at: float,
        duration: float | None,
        sha256: str,
    ) -> Claim:
        size = source.stat().st_size
        claim = self.claim(
            interaction_id, kind, name, content_type, started_at, sha256, size=size, duration=duration
        )
        try:
            size = self.put(claim, source)
        except BaseException:
            self._abandon_logged(claim)  # the put gave ``source`` back: the caller still has it
            raise
        try:
            self.complete(claim, size)
        except BaseException:
            # The file is stored and its source gone: discarding it would lose the recording.
            # The pending row stays; start-up recovery completes it (the sha256 matches).
            log.error(
                "the %s of %s is stored but its row could not be completed; recovery at the next "
                "start will complete it",
                kind,
                interaction_id,
            )
            raise
        return claim

    def _abandon_logged(self, claim: Claim) -> None:
        try:
            self.abandon(claim)
        except Exception:  # recovery at the next start removes what is left
            log.exception("could not undo the claim on the %s of %s", claim.kind, claim.interaction_id)

    # -- start-up ------------------------------------------------------------------------------
    def recover_pending(self) -> tuple[int, int]:
        """Finish or roll back every pending row a previous process left. Returns (completed,
        rolled back). Run before requests are served: a pending row is then never a live writer."""
        completed = rolled_back = 0
        with session_scope(self._factory) as s:
            rows = list(
                s.execute(select(models.MediaFile).where(models.MediaFile.state == PENDING)).scalars()
            )
            for row in rows:
                if self._stored_intact(row.storage_key, row.sha256):
                    row.state = COMPLETE
                    row.size = self._storage.size(row.storage_key)
                    if row.kind == "muxed":
                        inter = s.get(models.Interaction, row.interaction_id)
                        if inter is not None:
                            inter.media_started_at = row.started_at
                    completed += 1
                    log.warning(
                        "recovery: %s of %s was stored; its row is completed", row.kind, row.interaction_id
                    )
                else:
                    self._storage.discard(row.storage_key)
                    s.delete(row)
                    rolled_back += 1
                    log.warning("recovery: unfinished %s of %s rolled back", row.kind, row.interaction_id)
        return completed, rolled_back

    def _stored_intact(self, key: str, sha256: str) -> bool:
        if not sha256 or not self._storage.exists(key):
            return False
        digest = hashlib.sha256()
        with self._storage.open_read(key) as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest() == sha256

    @staticmethod
    def _row(s: Session, interaction_id: str, kind: str) -> models.MediaFile | None:
        return s.execute(
            select(models.MediaFile).where(
                models.MediaFile.interaction_id == interaction_id, models.MediaFile.kind == kind
            )
        ).scalar_one_or_none()
