"""The tus 1.0.0 headers of the screen segment upload (docs/screen-segments.md), parsed and checked.

Pure: strings in, values or :class:`TusHeaderError` (status, code, a sentence) out, so the rules
are tested directly and the route stays about HTTP and storage.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
from dataclasses import dataclass

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,checksum,termination"
CHECKSUM_ALGORITHMS = ("sha256", "sha1")  # sha1: the one tus requires (tuspy sends it)
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
CHECKSUM_MISMATCH = 460  # tus checksum extension: "Checksum Mismatch"

_RUN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KEY = re.compile(r"^[^\s,]+$")
_INTEGER = re.compile(r"^[0-9]{1,18}$")


class TusHeaderError(ValueError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class SegmentDeclaration:
    """What the recorder declares when it creates an upload."""

    run: str
    seq: int
    started_at: float
    sha256: str
    length: int
    final: bool


def check_version(value: str | None) -> None:
    if value != TUS_VERSION:
        raise TusHeaderError(
            412, "tus_version", f"Tus-Resumable must be {TUS_VERSION} (got {(value or 'none')[:20]!r})"
        )


def parse_int(name: str, value: str | None) -> int:
    """A non-negative decimal integer header (Upload-Length, Upload-Offset)."""
    if value is None:
        raise TusHeaderError(400, "bad_upload", f"the {name} header is required")
    if not _INTEGER.match(value.strip()):
        raise TusHeaderError(400, "bad_upload", f"{name} must be a non-negative integer, not {value[:30]!r}")
    return int(value.strip())


def parse_metadata(value: str | None) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64(value)`` pairs (a value may be absent)."""
    pairs: dict[str, str] = {}
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, _, encoded = item.partition(" ")
        if not _KEY.match(key) or key in pairs:
            raise TusHeaderError(
                400, "bad_metadata", f"Upload-Metadata has a bad or repeated key {key[:40]!r}"
            )
        try:
            pairs[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise TusHeaderError(
                400, "bad_metadata", f"Upload-Metadata value of {key!r} is not base64 of UTF-8 text"
            ) from exc
    return pairs


def parse_declaration(metadata: dict[str, str], length: int, max_size: int) -> SegmentDeclaration:
    """The segment's run, seq, started_at, sha256 (required) and final (optional "1")."""
    missing = [key for key in ("run", "seq", "started_at", "sha256") if key not in metadata]
    if missing:
        raise TusHeaderError(400, "bad_metadata", f"Upload-Metadata lacks {', '.join(missing)}")
    run = metadata["run"]
    if not _RUN.match(run):
        raise TusHeaderError(400, "bad_metadata", "run must be 1-64 characters of A-Z a-z 0-9 . _ -")
    if not _INTEGER.match(metadata["seq"]) or int(metadata["seq"]) > 99_999:
        raise TusHeaderError(
            400, "bad_metadata", f"seq must be an integer 0..99999, not {metadata['seq'][:20]!r}"
        )
    try:
        started_at = float(metadata["started_at"])
    except ValueError:
        started_at = math.nan
    if not math.isfinite(started_at) or started_at <= 0:
        raise TusHeaderError(
            400, "bad_started_at", f"started_at must be Unix seconds, not {metadata['started_at'][:40]!r}"
        )
    sha = metadata["sha256"].strip().lower()
    if not _SHA256.match(sha):
        raise TusHeaderError(400, "bad_metadata", "sha256 must be 64 hex digits")
    final = metadata.get("final", "")
    if final not in ("", "0", "1"):
        raise TusHeaderError(400, "bad_metadata", f"final must be 1 (or absent), not {final[:10]!r}")
    if length == 0:
        raise TusHeaderError(400, "bad_upload", "Upload-Length is 0: a segment is never empty")
    if length > max_size:
        raise TusHeaderError(413, "too_large", f"Upload-Length {length} exceeds Tus-Max-Size {max_size}")
    return SegmentDeclaration(run, int(metadata["seq"]), started_at, sha, length, final == "1")


def parse_checksum(value: str | None) -> tuple[str, bytes] | None:
    """``Upload-Checksum: <algorithm> <base64 digest>``; None when absent."""
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise TusHeaderError(
            400,
            "bad_checksum_algorithm",
            f"Upload-Checksum algorithm {algorithm[:20]!r} is not one of {', '.join(CHECKSUM_ALGORITHMS)}",
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error as exc:
        raise TusHeaderError(400, "bad_checksum", "Upload-Checksum digest is not base64") from exc
    if len(digest) != hashlib.new(algorithm).digest_size:
        raise TusHeaderError(400, "bad_checksum", f"Upload-Checksum digest is not a {algorithm} digest")
    return algorithm, digest
