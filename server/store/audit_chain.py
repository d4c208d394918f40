"""The audit log's hash chain, as pure logic: the canonical encoding of a record, its hash, and a
verifier that walks the records in sequence order and reports every break.

Each record carries ``seq`` (1, 2, 3, ... with no gaps), ``prev_hash`` (the hash of record
``seq - 1``; :data:`GENESIS_HASH` for the first) and ``hash``: SHA-256 over a canonical JSON
encoding of seq, prev_hash and every content column. Changing any column of a record breaks its
own hash; recomputing that hash breaks the next record's link; rewriting the whole tail from
there on is only caught by an *anchor* kept elsewhere — a signed checkpoint outside the database,
or the ``audit_head`` row — that says "the chain at seq S has hash H".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

GENESIS_HASH = "0" * 64
ENCODING_VERSION = 1
DEFAULT_TIME_TOLERANCE = 5.0  # seconds a record may be dated before its predecessor (clock steps)

# Finding kinds (stable strings: the CLI prints them and the API returns them).
EDITED = "edited"  # a record's contents do not match its own hash
DELETED = "deleted"  # sequence numbers missing: records deleted
INSERTED = "inserted"  # a record without a sequence number, a duplicate one, or beyond the head
LINK = "link"  # a record does not link to its predecessor: that one rewritten, or this one inserted
REORDERED = "reordered"  # row ids not increasing with seq: records moved
TRUNCATED = "truncated"  # an anchor names a seq the chain no longer reaches
REWRITTEN = "rewritten"  # the chain at an anchor's seq has another hash than the anchor saw
TIME = "time"  # a record dated earlier than its predecessor by more than the tolerance


@dataclass(frozen=True, slots=True)
class ChainRecord:
    """One audit record as stored (``seq``/hashes ``None`` when written outside the chain)."""

    id: int
    seq: int | None
    prev_hash: str | None
    hash: str | None
    at: float
    user_id: int | None
    username: str
    action: str
    target_type: str
    target_id: str
    outcome: str
    detail: str
    remote_addr: str

    def label(self) -> str:
        return f"record seq {self.seq} (id {self.id})"


@dataclass(frozen=True, slots=True)
class Anchor:
    """A claim made outside the chain: record ``seq`` has hash ``hash`` (seq 0: the empty chain)."""

    seq: int
    hash: str
    source: str  # where the claim comes from, for the message: a checkpoint file, audit_head


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    seq: int | None
    record_id: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "seq": self.seq, "id": self.record_id, "message": self.message}


def canonical(
    *,
    seq: int,
    prev_hash: str,
    at: float,
    user_id: int | None,
    username: str,
    action: str,
    target_type: str,
    target_id: str,
    outcome: str,
    detail: str,
    remote_addr: str,
) -> bytes:
    """Unambiguous bytes for one record: JSON with sorted keys and no free whitespace. JSON
    quotes every string, so no choice of field values can make two records encode the same;
    ``at`` is a float written with Python's shortest round-trip repr, which a REAL/double column
    gives back bit for bit."""
    if at != at or at in (float("inf"), float("-inf")):
        raise ValueError("audit time must be a finite number")
    body = {
        "v": ENCODING_VERSION,
        "seq": seq,
        "prev_hash": prev_hash,
        "at": at,
        "user_id": user_id,
        "username": username,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "outcome": outcome,
        "detail": detail,
        "remote_addr": remote_addr,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def record_hash(rec: ChainRecord) -> str:
    """The hash ``rec`` must carry, given its seq and prev_hash."""
    if rec.seq is None or rec.prev_hash is None:
        raise ValueError("a record outside the chain has no hash")
    return hashlib.sha256(
        canonical(
            seq=rec.seq,
            prev_hash=rec.prev_hash,
            at=rec.at,
            user_id=rec.user_id,
            username=rec.username,
            action=rec.action,
            target_type=rec.target_type,
            target_id=rec.target_id,
            outcome=rec.outcome,
            detail=rec.detail,
            remote_addr=rec.remote_addr,
        )
    ).hexdigest()


@dataclass
class ChainVerifier:
    """Feed records in ascending ``seq`` order (records without a seq may come anywhere), then
    call :meth:`finish`. Streaming, so a log of millions of rows needs no more memory than one."""

    anchors: Iterable[Anchor] = ()
    time_tolerance: float = DEFAULT_TIME_TOLERANCE
    findings: list[Finding] = field(default_factory=list)
    count: int = 0
    last: ChainRecord | None = None

    def __post_init__(self) -> None:
        self._pending: Iterator[Anchor] = iter(sorted(self.anchors, key=lambda a: a.seq))
        self._next: Anchor | None = next(self._pending, None)
        self.anchors_checked = 0

    def _add(self, kind: str, rec: ChainRecord | None, message: str) -> None:
        self.findings.append(Finding(kind, rec.seq if rec else None, rec.id if rec else None, message))

    def feed(self, rec: ChainRecord) -> None:
        self.count += 1
        if rec.seq is None or rec.prev_hash is None or rec.hash is None:
            self._add(
                INSERTED,
                rec,
                f"record id {rec.id} has no place in the chain: written outside the audit writer",
            )
            return
        if record_hash(rec) != rec.hash:
            self._add(
                EDITED, rec, f"{rec.label()}: its contents do not match its hash (the record was altered)"
            )
        last = self.last
        expected = 1 if last is None else (last.seq or 0) + 1
        prev_hash = GENESIS_HASH if last is None else last.hash
        if last is not None and rec.seq == last.seq:
            self._add(INSERTED, rec, f"{rec.label()}: a second record with the seq of id {last.id}")
            return  # keep walking from the first of the two
        if rec.seq > expected:
            missing = f"seq {expected}" if rec.seq == expected + 1 else f"seq {expected} to {rec.seq - 1}"
            self._add(DELETED, rec, f"{missing} missing before {rec.label()}: records were deleted")
        elif rec.prev_hash != prev_hash:
            before = "the start of the chain" if last is None else last.label()
            self._add(
                LINK,
                rec,
                f"{rec.label()} does not link to {before}: that record was rewritten, or this one inserted",
            )
        if last is not None and rec.id < last.id:
            self._add(
                REORDERED, rec, f"{rec.label()} has a lower row id than {last.label()}: records were moved"
            )
        if last is not None and rec.at < last.at - self.time_tolerance:
            self._add(
                TIME,
                rec,
                f"{rec.label()} is dated {last.at - rec.at:.3f} s before {last.label()}: "
                "back-dated, or the server clock was set back",
            )
        self._check_anchors(rec)
        self.last = rec

    def _check_anchors(self, rec: ChainRecord) -> None:
        assert rec.seq is not None
        while self._next is not None and self._next.seq <= rec.seq:
            anchor = self._next
            self.anchors_checked += 1
            if anchor.seq == 0:
                if anchor.hash != GENESIS_HASH:
                    self._add(
                        REWRITTEN,
                        None,
                        f"{anchor.source} names seq 0 with a hash other than the genesis hash",
                    )
            elif anchor.seq < rec.seq:
                self._add(
                    TRUNCATED, rec, f"{anchor.source} saw seq {anchor.seq}, which is no longer in the chain"
                )
            elif anchor.hash != rec.hash:
                self._add(
                    REWRITTEN,
                    rec,
                    f"{rec.label()} has another hash than {anchor.source} saw: the chain was rewritten",
                )
            self._next = next(self._pending, None)

    def finish(self, head_seq_after: int | None = None) -> list[Finding]:
        """Anchors beyond the last record are truncation. ``head_seq_after``: the head read after
        the records — a record beyond it was not written by the audit writer."""
        end = 0 if self.last is None else (self.last.seq or 0)
        while self._next is not None:
            anchor = self._next
            self.anchors_checked += 1
            if anchor.seq == 0:
                if anchor.hash != GENESIS_HASH:
                    self._add(
                        REWRITTEN,
                        None,
                        f"{anchor.source} names seq 0 with a hash other than the genesis hash",
                    )
            else:
                self._add(
                    TRUNCATED,
                    self.last,
                    f"the chain ends at seq {end} but {anchor.source} saw seq {anchor.seq}: "
                    "records at the end were deleted",
                )
            self._next = next(self._pending, None)
        if head_seq_after is not None and self.last is not None and end > head_seq_after:
            self._add(
                INSERTED,
                self.last,
                f"the chain runs to seq {end} but audit_head says {head_seq_after}: "
                "records appended outside the audit writer",
            )
        return self.findings


def verify(
    records: Iterable[ChainRecord],
    anchors: Iterable[Anchor] = (),
    *,
    time_tolerance: float = DEFAULT_TIME_TOLERANCE,
    head_seq_after: int | None = None,
) -> list[Finding]:
    """Every break in ``records`` (ascending seq) and against ``anchors``; empty when intact."""
    verifier = ChainVerifier(anchors, time_tolerance)
    for rec in records:
        verifier.feed(rec)
    return verifier.finish(head_seq_after)
