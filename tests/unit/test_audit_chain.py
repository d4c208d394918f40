"""The audit hash chain as pure logic: encoding, hashing, and every kind of break the verifier
must report — edit, deletion, insertion, reordering, back-dating, truncation and a whole-chain
rewrite against an anchor."""

from __future__ import annotations

import dataclasses

import pytest

from server.store import audit_chain
from server.store.audit_chain import GENESIS_HASH, Anchor, ChainRecord, record_hash, verify


def chain(n: int, start_at: float = 1_000_000.0) -> list[ChainRecord]:
    """``n`` correctly chained records (ids 10, 20, ... so an id can be reused in between)."""
    out: list[ChainRecord] = []
    prev = GENESIS_HASH
    for i in range(1, n + 1):
        rec = ChainRecord(
            id=10 * i,
            seq=i,
            prev_hash=prev,
            hash=None,
            at=start_at + i * 0.5,
            user_id=i % 3 or None,
            username=f"user{i % 3}",
            action="recording.read" if i % 2 else "auth.login",
            target_type="interaction",
            target_id=f"iid-{i}",
            outcome="allowed" if i % 4 else "denied",
            detail=f"detail {i}",
            remote_addr="10.0.0.1",
        )
        rec = dataclasses.replace(rec, hash=record_hash(rec))
        out.append(rec)
        prev = rec.hash or ""
    return out


def rehash(rec: ChainRecord, prev_hash: str | None = None) -> ChainRecord:
    """What a forger with the code does: put the record in order again after changing it."""
    rec = dataclasses.replace(rec, prev_hash=rec.prev_hash if prev_hash is None else prev_hash, hash=None)
    return dataclasses.replace(rec, hash=record_hash(rec))


def kinds(findings: list[audit_chain.Finding]) -> list[tuple[str, int | None]]:
    return [(f.kind, f.seq) for f in findings]


def test_an_intact_chain_has_no_findings() -> None:
    records = chain(20)
    assert verify(records) == []
    assert verify([]) == []
    assert verify(records, [Anchor(20, records[-1].hash or "", "cp"), Anchor(0, GENESIS_HASH, "cp0")]) == []


def test_encoding_is_unambiguous_and_covers_every_column() -> None:
    rec = chain(1)[0]
    base = record_hash(rec)
    changes: dict[str, object] = {
        "seq": 2,
        "prev_hash": "1" * 64,
        "at": rec.at + 1e-6,
        "user_id": 99,
        "username": "someone",
        "action": "x",
        "target_type": "y",
        "target_id": "z",
        "outcome": "failed",
        "detail": "other",
        "remote_addr": "10.0.0.2",
    }
    for name, value in changes.items():
        assert record_hash(dataclasses.replace(rec, **{name: value})) != base, name  # type: ignore[arg-type]
    # Moving text from one field to its neighbour changes the hash (no plain concatenation).
    a = dataclasses.replace(rec, username="ab", action="c")
    b = dataclasses.replace(rec, username="a", action="bc")
    assert record_hash(a) != record_hash(b)
    # user_id None and 0 are different records.
    assert record_hash(dataclasses.replace(rec, user_id=None)) != record_hash(
        dataclasses.replace(rec, user_id=0)
    )
    with pytest.raises(ValueError):
        record_hash(dataclasses.replace(rec, at=float("nan")))


def test_an_edited_record_is_named() -> None:
    records = chain(10)
    records[4] = dataclasses.replace(records[4], detail="nothing to see here")
    findings = verify(records)
    assert kinds(findings) == [("edited", 5)]
    assert "record seq 5 (id 50)" in findings[0].message


def test_an_edited_record_with_its_hash_recomputed_breaks_the_next_link() -> None:
    records = chain(10)
    records[4] = rehash(dataclasses.replace(records[4], outcome="allowed", detail="rewritten"))
    findings = verify(records)
    assert kinds(findings) == [("link", 6)]
    assert "record seq 5 (id 50)" in findings[0].message


def test_deleted_records_leave_a_gap() -> None:
    records = chain(10)
    del records[3:5]  # seq 4 and 5
    findings = verify(records)
    assert kinds(findings) == [("deleted", 6)]
    assert "seq 4 to 5 missing" in findings[0].message


def test_records_without_a_place_in_the_chain_are_insertions() -> None:
    records = chain(6)
    stray = dataclasses.replace(records[2], id=35, seq=None, prev_hash=None, hash=None, detail="forged")
    findings = verify([stray, *records])
    assert kinds(findings) == [("inserted", None)]
    assert "record id 35" in findings[0].message
    duplicate = rehash(dataclasses.replace(records[2], id=35, detail="forged"))
    assert kinds(verify([*records[:3], duplicate, *records[3:]])) == [("inserted", 3)]


def test_an_insertion_renumbering_the_rest_breaks_a_link() -> None:
    records = chain(6)
    forged = rehash(dataclasses.replace(records[2], id=35, seq=4, detail="forged"), prev_hash=records[2].hash)
    renumbered = [dataclasses.replace(r, seq=(r.seq or 0) + 1) for r in records[3:]]
    findings = verify([*records[:3], forged, *renumbered])
    # The renumbered records' hashes no longer match, and the first one does not link to the forgery.
    assert ("link", 5) in kinds(findings)
    assert ("edited", 5) in kinds(findings)


def test_reordered_rows_are_reported() -> None:
    records = chain(6)
    # Swap everything but the row ids of seq 3 and 4: each record's hash still holds.
    a, b = records[2], records[3]
    records[2], records[3] = dataclasses.replace(a, id=b.id), dataclasses.replace(b, id=a.id)
    assert kinds(verify(records)) == [("reordered", 4)]


def test_back_dating_beyond_the_tolerance_is_reported() -> None:
    records = chain(6)
    records[3] = rehash(dataclasses.replace(records[3], at=records[2].at - 3600))
    findings = verify(records)
    assert ("time", 4) in kinds(findings)
    records = chain(6)
    records[3] = rehash(dataclasses.replace(records[3], at=records[2].at - 1))  # a small clock step
    assert ("time", 4) not in kinds(verify(records))
    assert ("time", 4) in kinds(verify(records, time_tolerance=0.5))


def test_a_rewritten_chain_verifies_alone_but_not_against_an_earlier_anchor() -> None:
    records = chain(8)
    anchor = Anchor(5, records[4].hash or "", "checkpoint cp-5.json")
    forged: list[ChainRecord] = []
    prev = GENESIS_HASH
    for rec in records:
        detail = "harmless" if rec.seq == 3 else rec.detail
        rec = rehash(dataclasses.replace(rec, detail=detail), prev_hash=prev)
        forged.append(rec)
        prev = rec.hash or ""
    assert verify(forged) == []
    findings = verify(forged, [anchor])
    assert kinds(findings) == [("rewritten", 5)]
    assert "cp-5.json" in findings[0].message


def test_truncation_against_an_anchor_and_the_head() -> None:
    records = chain(8)
    anchor = Anchor(8, records[7].hash or "", "checkpoint cp-8.json")
    findings = verify(records[:6], [anchor])
    assert kinds(findings) == [("truncated", 6)]
    assert "ends at seq 6" in findings[0].message and "cp-8.json" in findings[0].message
    # Everything deleted: the anchor still shows it.
    assert kinds(verify([], [anchor])) == [("truncated", None)]
    # Records beyond what the head counted were not written by the audit writer.
    assert kinds(verify(records, head_seq_after=7)) == [("inserted", 8)]


def test_an_anchor_inside_a_gap_is_truncation() -> None:
    records = chain(8)
    anchor = Anchor(4, records[3].hash or "", "cp-4")
    findings = verify([*records[:3], *records[5:]], [anchor])
    assert kinds(findings) == [("deleted", 6), ("truncated", 6)]
