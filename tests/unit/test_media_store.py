"""Storage never overwrites and never costs the caller its file; the media claim protocol leaves
nothing that recovery cannot finish (server/store/storage.py, server/calls/media_store.py)."""

from __future__ import annotations

import errno
import hashlib
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from server.calls.media_store import MediaStore
from server.errors import MediaBusyError, MediaExistsError, StorageError, StorageKeyExistsError
from server.store import models
from server.store.db import make_engine, make_session_factory, migrate, session_scope
from server.store.storage import LocalStorage


def test_put_file_refuses_an_existing_key_and_keeps_both_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(b"evidence")
    second.write_bytes(b"forgery")
    assert storage.put_file("k/screen.mp4", first) == 8 and not first.exists()
    with pytest.raises(StorageKeyExistsError):
        storage.put_file("k/screen.mp4", second)
    assert second.read_bytes() == b"forgery"  # the caller keeps its file
    with storage.open_read("k/screen.mp4") as fh:
        assert fh.read() == b"evidence"
    assert sorted(p.name for p in (tmp_path / "store" / "k").iterdir()) == ["screen.mp4"]


def test_put_file_loses_the_race_for_a_key_without_overwriting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer creates the key between the existence check and the link: link refuses."""
    storage = LocalStorage(tmp_path / "store")
    src = tmp_path / "mine"
    src.write_bytes(b"mine")
    real_fsync = os.fsync

    def racing_fsync(fd: int) -> None:
        real_fsync(fd)
        target = tmp_path / "store" / "k" / "f"
        if not target.exists():
            target.write_bytes(b"theirs")

    monkeypatch.setattr(os, "fsync", racing_fsync)
    with pytest.raises(StorageKeyExistsError):
        storage.put_file("k/f", src)
    assert (tmp_path / "store" / "k" / "f").read_bytes() == b"theirs"
    assert src.read_bytes() == b"mine"
    assert not (tmp_path / "store" / "k" / "f.partial").exists()


@pytest.mark.parametrize("cross_device", [False, True])
def test_a_failed_put_gives_the_source_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cross_device: bool
) -> None:
    storage = LocalStorage(tmp_path / "store")
    src = tmp_path / "voice.wav"
    src.write_bytes(b"the only copy")
    if cross_device:
        real_replace = os.replace

        def no_rename_across(a: object, b: object) -> None:
            if Path(str(a)) == src:
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            real_replace(a, b)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "replace", no_rename_across)

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StorageError):
        storage.put_file("k/voice.wav", src)
    assert src.read_bytes() == b"the only copy"
    assert [p for p in (tmp_path / "store").rglob("*") if p.is_file()] == []


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate(url)
    factory = make_session_factory(make_engine(url))
    with session_scope(factory) as s:
        s.add(models.User(id=1, username="a", role="agent", password_hash="x", created_at=0))
        s.add(
            models.Interaction(
                id="i1",
                call_id="c",
                dn="1",
                agent_id=1,
                state="done",
                started_at=time.time(),
                screen_decision=True,
                screen_percentage=100,
                voice_state="stopped",
                screen_state="stopped",
            )
        )
    return MediaStore(factory, LocalStorage(tmp_path / "store"))


def _rows(store: MediaStore) -> list[tuple[str, str]]:
    with session_scope(store._factory) as s:
        return [(m.kind, m.state) for m in s.execute(select(models.MediaFile)).scalars()]


def test_store_twice_evidence_refused_pending_claim_busy(store: MediaStore, tmp_path: Path) -> None:
    wav = tmp_path / "v.wav"
    wav.write_bytes(b"voice")
    store.store("i1", "voice", wav, "voice.wav", "audio/wav", 1.0, 1.0, hashlib.sha256(b"voice").hexdigest())
    again = tmp_path / "v2.wav"
    again.write_bytes(b"other voice")
    with pytest.raises(MediaExistsError) as info:
        store.store("i1", "voice", again, "voice.wav", "audio/wav", 1.0, 1.0, "00" * 32)
    assert info.value.sha256 == hashlib.sha256(b"voice").hexdigest() and again.exists()
    store.claim("i1", "screen", "screen.mp4", "video/mp4", 1.0, "ab" * 32)
    with pytest.raises(MediaBusyError):
        store.claim("i1", "screen", "screen.mp4", "video/mp4", 1.0, "cd" * 32)
    assert sorted(_rows(store)) == [("screen", "pending"), ("voice", "complete")]


def test_row_not_completed_after_the_put_is_left_for_recovery(
    store: MediaStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The source is gone into storage: abandoning would delete the only copy of the voice."""
    wav = tmp_path / "v.wav"
    wav.write_bytes(b"voice")

    def db_down(*args: object) -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(store, "complete", db_down)
    with pytest.raises(RuntimeError):
        store.store(
            "i1", "voice", wav, "voice.wav", "audio/wav", 1.0, 1.0, hashlib.sha256(b"voice").hexdigest()
        )
    assert _rows(store) == [("voice", "pending")]
    assert [p.read_bytes() for p in (tmp_path / "store").rglob("*") if p.is_file()] == [b"voice"]
    monkeypatch.undo()
    assert store.recover_pending() == (1, 0)
    assert _rows(store) == [("voice", "complete")]


def test_a_failed_put_releases_the_claim_and_keeps_the_source(
    store: MediaStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wav = tmp_path / "v.wav"
    wav.write_bytes(b"voice")

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StorageError):
        store.store(
            "i1", "voice", wav, "voice.wav", "audio/wav", 1.0, 1.0, hashlib.sha256(b"voice").hexdigest()
        )
    monkeypatch.undo()
    assert wav.read_bytes() == b"voice" and _rows(store) == []
    store.store("i1", "voice", wav, "voice.wav", "audio/wav", 1.0, 1.0, hashlib.sha256(b"voice").hexdigest())
    assert _rows(store) == [("voice", "complete")]
