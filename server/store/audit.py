"""Writing the append-only, hash-chained audit log (every read of a recording and every refusal),
and checking it.

``record`` is the one writer. It works in the caller's transaction and session, so the record
commits (or rolls back) with the change it describes, from the web API, the SIP side or the CLI.
Writers are put in one order by the ``audit_head`` row: the first statement bumps its ``seq``,
which in SQLite takes the database write lock (pysqlite begins the transaction at the first DML)
and in PostgreSQL the row lock; a concurrent writer in any thread or process waits there until
this transaction ends, then reads the head this one left. So seq has no gaps or duplicates and
each record's ``prev_hash`` is its predecessor's hash.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from server.errors import AuditChainError
from server.store import audit_chain
from server.store.audit_chain import Anchor, ChainRecord, Finding
from server.store.models import AuditHead, AuditRecord

OUTCOMES = ("allowed", "denied", "failed")
HEAD_ID = 1


def record(
    session: Session,
    *,
    action: str,
    outcome: str,
    user_id: int | None = None,
    username: str = "",
    target_type: str = "",
    target_id: str = "",
    detail: str = "",
    remote_addr: str = "",
) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"bad audit outcome {outcome!r}")
    bumped = cast(
        CursorResult[Any],
        session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID).values(seq=AuditHead.seq + 1)),
    )
    if bumped.rowcount != 1:
        raise AuditChainError(
            "the audit_head row is missing, so no audit record can be chained; "
            "run `tandem-server audit verify` and restore the database"
        )
    seq, prev_hash = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == HEAD_ID)
    ).one()
    # Values cut to their column sizes here, so the hash covers exactly what is stored.
    row = ChainRecord(
        id=0,
        seq=seq,
        prev_hash=prev_hash,
        hash=None,
        at=time.time(),  # taken under the lock: times rise with seq unless the clock steps back
        user_id=user_id,
        username=username[:100],
        action=action[:50],
        target_type=target_type[:30],
        target_id=target_id[:64],
        outcome=outcome,
        detail=detail[:2000],
        remote_addr=remote_addr[:64],
    )
    digest = audit_chain.record_hash(row)
    session.add(
        AuditRecord(
            seq=seq,
            prev_hash=prev_hash,
            hash=digest,
            at=row.at,
            user_id=row.user_id,
            username=row.username,
            action=row.action,
            target_type=row.target_type,
            target_id=row.target_id,
            outcome=row.outcome,
            detail=row.detail,
            remote_addr=row.remote_addr,
        )
    )
    session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID).values(hash=digest))


def read_head(session: Session) -> Anchor | None:
    row = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == HEAD_ID)).first()
    return None if row is None else Anchor(int(row.seq), str(row.hash), f"audit_head (seq {row.seq})")


def chain_records(session: Session, batch: int = 2000) -> Iterator[ChainRecord]:
    """Every record in seq order (records without a seq first), streamed in one statement so
    it reads one consistent snapshot."""
    a = AuditRecord
    query = (
        select(
            a.id,
            a.seq,
            a.prev_hash,
            a.hash,
            a.at,
            a.user_id,
            a.username,
            a.action,
            a.target_type,
            a.target_id,
            a.outcome,
            a.detail,
            a.remote_addr,
        )
        .order_by(a.seq.is_not(None), a.seq, a.id)
        .execution_options(yield_per=batch)
    )
    for r in session.execute(query):
        yield ChainRecord(**r._asdict())


@dataclass(frozen=True)
class VerifyResult:
    records: int
    last_seq: int
    last_hash: str
    anchors_checked: int
    findings: list[Finding]

    @property
    def intact(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        if not self.intact:
            return f"audit log NOT intact: {len(self.findings)} finding(s) in {self.records} records"
        return (
            f"audit log intact: {self.records} records, seq 1..{self.last_seq}, "
            f"last hash {self.last_hash[:16]}…, {self.anchors_checked} anchor(s) matched"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "intact": self.intact,
            "summary": self.summary(),
            "records": self.records,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "anchors_checked": self.anchors_checked,
            "findings": [f.as_dict() for f in self.findings],
        }


def verify(
    session: Session,
    checkpoints: Iterable[Anchor] = (),
    *,
    time_tolerance: float = audit_chain.DEFAULT_TIME_TOLERANCE,
) -> VerifyResult:
    """Recompute the whole chain and hold it against ``checkpoints`` and the head row.

    The head is read before the records (everything it counts was committed, so the records
    must reach it with the same hash: a shortened or rewritten tail shows) and again after
    (records beyond that second reading were not written by ``record``). Writers that commit
    meanwhile only add records between the two readings, which is no finding."""
    before = read_head(session)
    extra: list[Finding] = []
    anchors = list(checkpoints)
    if before is None:
        extra.append(Finding(audit_chain.TRUNCATED, None, None, "the audit_head row is missing"))
    else:
        anchors.append(before)
    verifier = audit_chain.ChainVerifier(anchors, time_tolerance)
    for rec in chain_records(session):
        verifier.feed(rec)
    after = read_head(session)
    findings = extra + verifier.finish(None if after is None else after.seq)
    last = verifier.last
    return VerifyResult(
        records=verifier.count,
        last_seq=0 if last is None else last.seq or 0,
        last_hash=audit_chain.GENESIS_HASH if last is None else last.hash or "",
        anchors_checked=verifier.anchors_checked - (0 if before is None else 1),
        findings=findings,
    )
