"""Screen thumbnails for the search results, made once per interaction and kept as a derived file
(``<data_dir>/derived/thumbnails/``): never written next to, or over, the recording itself."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from server.media.thumbnail import ThumbnailError, first_keyframe_jpeg
from server.store.storage import Storage


def cache_path(data_dir: Path, interaction_id: str) -> Path:
    # Hashed: an interaction id is not trusted as a file name.
    name = hashlib.sha256(interaction_id.encode()).hexdigest()[:32]
    return data_dir / "derived" / "thumbnails" / f"{name}.jpg"


def thumbnail(data_dir: Path, storage: Storage, interaction_id: str, key: str) -> bytes:
    """The cached JPEG, or a new one from the recording under ``key`` (written atomically)."""
    path = cache_path(data_dir, interaction_id)
    if path.is_file():
        return path.read_bytes()
    source = storage.local_path(key)
    if source is None:
        raise ThumbnailError("the recording is not on local storage")
    jpeg = first_keyframe_jpeg(source)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.part")
    partial.write_bytes(jpeg)
    os.replace(partial, path)
    return jpeg
