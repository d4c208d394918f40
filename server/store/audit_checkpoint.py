"""Signed audit checkpoints: small JSON files, written outside the database (any directory — a
WORM share, another host's mount), each saying "the audit chain at seq S had hash H", signed with
the server's Ed25519 key. A chain rewritten from some record to the end, head included, verifies
on its own; it cannot match a checkpoint written before the rewrite, and deleting records at the
end leaves a checkpoint whose seq the chain no longer reaches.

File: ``{"checkpoint": {"seq", "hash", "at", "public_key"}, "signature"}``; the signature (hex)
is over the canonical JSON of ``checkpoint`` (sorted keys, no free whitespace).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from server.errors import CheckpointError
from server.store.audit_chain import Anchor

KEY_FILE = "audit-signing-key.pem"
FILE_PREFIX = "tandem-audit-checkpoint-"


def load_or_create_key(data_dir: Path) -> Ed25519PrivateKey:
    """The server's signing key, created (mode 0600) in ``data_dir`` on first use."""
    path = data_dir / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    return key


def _read_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read the audit signing key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path} is not an Ed25519 private key")
    return key


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def parse_public_key(text: str) -> Ed25519PublicKey:
    try:
        raw = bytes.fromhex(text.strip())
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise CheckpointError(f"not an Ed25519 public key (64 hex digits): {text.strip()[:80]!r}") from exc


def _canonical(body: dict[str, object]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def write_checkpoint(out_dir: Path, key: Ed25519PrivateKey, seq: int, chain_hash: str) -> Path:
    """A new signed checkpoint file in ``out_dir``. Created with O_EXCL and never rewritten, so
    an append-only (WORM) directory is enough."""
    at = time.time()
    body: dict[str, object] = {"seq": seq, "hash": chain_hash, "at": at, "public_key": public_key_hex(key)}
    doc = {"checkpoint": body, "signature": key.sign(_canonical(body)).hex()}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{FILE_PREFIX}{seq:012d}-{int(at * 1000):d}.json"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:
        raise CheckpointError(f"cannot create {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=1, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    return path


@dataclass(frozen=True)
class CheckpointRead:
    anchors: list[Anchor]  # from the files whose signature holds under the trusted key
    problems: list[str]  # one line per file that is unreadable, unsigned or signed by another key


def read_checkpoints(directory: Path, trusted: Ed25519PublicKey) -> CheckpointRead:
    """Every checkpoint file in ``directory``, checked against ``trusted`` (not against the key a
    file carries: anyone can sign a file with a key of their own)."""
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {directory} does not exist")
    trusted_hex = public_key_hex(trusted)
    anchors: list[Anchor] = []
    problems: list[str] = []
    for path in sorted(directory.glob(f"{FILE_PREFIX}*.json")):
        try:
            doc = json.loads(path.read_text())
            body = doc["checkpoint"]
            seq, chain_hash = int(body["seq"]), str(body["hash"])
            signature = bytes.fromhex(str(doc["signature"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"checkpoint {path.name} is unreadable: {exc}")
            continue
        if body.get("public_key") != trusted_hex:
            problems.append(
                f"checkpoint {path.name} is signed by another key ({str(body.get('public_key'))[:16]}…)"
            )
            continue
        try:
            trusted.verify(signature, _canonical(body))
        except InvalidSignature:
            problems.append(f"checkpoint {path.name}: the signature does not match its contents (altered)")
            continue
        anchors.append(Anchor(seq, chain_hash, f"checkpoint {path.name}"))
    return CheckpointRead(anchors, problems)
