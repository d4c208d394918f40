"""The agent-software release repository: a TUF repository (python-tuf) in the server's data dir.

Layout under ``<data_dir>/releases/``: ``metadata/`` (``N.root.json``, ``N.targets.json``,
``N.snapshot.json``, ``timestamp.json`` -- consistent snapshots, so a client refreshing while the
admin publishes never sees a mix) and ``targets/<sha256>.<name>`` (the bundle archives). The
server serves both directories as they are; every byte a client acts on is checked by its TUF
client against signatures and expiry.

Keys: ``init_keys`` makes one Ed25519 key per role in a directory the admin names. The **root**
key signs only the root metadata (who may sign what); the admin keeps it offline (a USB stick in
a safe) and needs it only to create the repository and to replace a key. The **targets**,
**snapshot** and **timestamp** keys stay on the server (``TANDEM_RELEASE_KEYS``): the server signs
each release the admin uploads and re-signs the short-lived timestamp so clients can tell a
fresh repository from a replayed one. A stolen server can therefore sign a release; keeping the
targets key offline too (signing on the admin's PC) is not built.

Each release is one target ``tandem-agent-<version>.tar.gz`` whose signed ``custom`` field holds
``{"version": ..., "rollout_percent": ...}``: the staged-rollout share is signed as well, so a
man in the middle cannot widen it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

ROLES = ("root", "targets", "snapshot", "timestamp")
ONLINE_ROLES = ("targets", "snapshot", "timestamp")
# How long each role's signature is good for: the timestamp is re-signed often (the server does
# it when it publishes and on ``refresh_timestamp``); a client refuses metadata past its expiry,
# which is what stops a replay of an old repository (a "freeze attack").
EXPIRY = {
    "root": timedelta(days=365),
    "targets": timedelta(days=90),
    "snapshot": timedelta(days=30),
    "timestamp": timedelta(days=1),
}
VERSION_RE = re.compile(r"^[0-9][0-9A-Za-z.+\-]{0,63}$")


class ReleaseError(ValueError):
    """A release or repository request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Release:
    version: str
    rollout_percent: int
    target: str
    length: int
    sha256: str


def target_name(version: str) -> str:
    return f"tandem-agent-{version}.tar.gz"


def _key_path(keys_dir: Path, role: str) -> Path:
    return keys_dir / f"{role}.pem"


def init_keys(keys_dir: Path) -> list[Path]:
    """Make one Ed25519 private key per role (PEM, 0600) in ``keys_dir``; refuse to overwrite."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    existing = [p for r in ROLES if (p := _key_path(keys_dir, r)).exists()]
    if existing:
        raise ReleaseError(f"{existing[0]} already exists: refusing to replace a signing key")
    made = []
    for role in ROLES:
        signer = CryptoSigner.generate_ed25519()
        path = _key_path(keys_dir, role)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(signer.private_bytes)
        made.append(path)
    return made


def load_signer(keys_dir: Path, role: str) -> CryptoSigner:
    path = _key_path(keys_dir, role)
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise ReleaseError(f"no {role} signing key at {path} (tandem-server releases init-keys)") from exc
    return CryptoSigner(key)


def _expiry(role: str, now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).replace(microsecond=0) + EXPIRY[role]


class ReleaseRepository:
    """The TUF repository on disk. Not thread-safe: the caller serialises publishing."""

    def __init__(self, root_dir: Path) -> None:
        self.root_dir = root_dir
        self.metadata_dir = root_dir / "metadata"
        self.targets_dir = root_dir / "targets"

    # --- reading -----------------------------------------------------------------------------
    def _current(self, role: str) -> Metadata[Any]:
        if role == "timestamp":
            return Metadata.from_file(str(self.metadata_dir / "timestamp.json"))
        versions = sorted(int(p.name.split(".", 1)[0]) for p in self.metadata_dir.glob(f"*.{role}.json"))
        if not versions:
            raise ReleaseError(f"no release repository at {self.root_dir} (tandem-server releases init-repo)")
        return Metadata.from_file(str(self.metadata_dir / f"{versions[-1]}.{role}.json"))

    def exists(self) -> bool:
        return (self.metadata_dir / "timestamp.json").exists()

    def root_json(self) -> bytes:
        """The trusted root a client is installed with (bundled next to the recorder)."""
        versions = sorted(int(p.name.split(".", 1)[0]) for p in self.metadata_dir.glob("*.root.json"))
        if not versions:
            raise ReleaseError(f"no release repository at {self.root_dir}")
        return (self.metadata_dir / f"{versions[-1]}.root.json").read_bytes()

    def releases(self) -> list[Release]:
        targets: Targets = self._current("targets").signed
        out = []
        for name, info in targets.targets.items():
            custom = info.custom
            out.append(
                Release(
                    str(custom.get("version", "")),
                    int(custom.get("rollout_percent", 0)),
                    name,
                    info.length,
                    info.hashes["sha256"],
                )
            )
        return sorted(out, key=lambda r: r.target)

    # --- writing -----------------------------------------------------------------------------
    def _write(self, md: Metadata[Any], filename: str) -> None:
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.metadata_dir / f".{filename}.tmp"
        md.to_file(str(tmp), JSONSerializer(compact=False))
        os.replace(tmp, self.metadata_dir / filename)  # readers see the old file or the new one

    def create(self, keys_dir: Path, now: datetime | None = None) -> None:
        """A new, empty repository signed with the keys in ``keys_dir`` (root key needed once)."""
        if self.exists():
            raise ReleaseError(f"{self.root_dir} already holds a release repository")
        signers: dict[str, Signer] = {role: load_signer(keys_dir, role) for role in ROLES}
        root = Root(expires=_expiry("root", now), consistent_snapshot=True)
        for role, signer in signers.items():
            root.add_key(signer.public_key, role)
        root_md = Metadata(root)
        root_md.sign(signers["root"])
        self._write(root_md, "1.root.json")
        targets_md = Metadata(Targets(expires=_expiry("targets", now)))
        self._publish(targets_md, signers, now)

    def _publish(
        self, targets_md: Metadata[Targets], signers: dict[str, Signer], now: datetime | None
    ) -> None:
        targets_md.signatures.clear()
        targets_md.sign(signers["targets"])
        self._write(targets_md, f"{targets_md.signed.version}.targets.json")
        try:
            snapshot_version = self._current("snapshot").signed.version
        except ReleaseError:
            snapshot_version = 0
        snapshot = Snapshot(version=snapshot_version + 1, expires=_expiry("snapshot", now))
        snapshot.meta["targets.json"] = MetaFile(version=targets_md.signed.version)
        snapshot_md = Metadata(snapshot)
        snapshot_md.sign(signers["snapshot"])
        self._write(snapshot_md, f"{snapshot.version}.snapshot.json")
        self._sign_timestamp(snapshot.version, signers["timestamp"], now)

    def _sign_timestamp(self, snapshot_version: int, signer: Signer, now: datetime | None) -> None:
        version = self._current("timestamp").signed.version + 1 if self.exists() else 1
        timestamp = Timestamp(version=version, expires=_expiry("timestamp", now))
        timestamp.snapshot_meta = MetaFile(version=snapshot_version)
        md = Metadata(timestamp)
        md.sign(signer)
        self._write(md, "timestamp.json")

    def refresh_timestamp(self, keys_dir: Path, now: datetime | None = None) -> None:
        """Re-sign the timestamp (it expires in a day): run it daily, e.g. from a timer."""
        snapshot_version = self._current("snapshot").signed.version
        self._sign_timestamp(snapshot_version, load_signer(keys_dir, "timestamp"), now)

    def add_release(
        self, keys_dir: Path, version: str, archive: Path, rollout_percent: int, now: datetime | None = None
    ) -> Release:
        """Publish ``archive`` (a .tar.gz of the one-folder bundle) as ``version`` offered to
        ``rollout_percent`` % of the fleet; publishing the same version again changes only its
        percentage (the bytes of a published release never change: clients have verified them)."""
        if not VERSION_RE.match(version):
            raise ReleaseError(f"{version!r} is not a release version (e.g. 0.2.0 or 0.2.0+g1dfa7b7)")
        if not 0 <= rollout_percent <= 100:
            raise ReleaseError(f"rollout percentage must be 0..100, got {rollout_percent}")
        signers: dict[str, Signer] = {role: load_signer(keys_dir, role) for role in ONLINE_ROLES}
        targets_md: Metadata[Targets] = self._current("targets")
        name = target_name(version)
        data = archive.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        known = targets_md.signed.targets.get(name)
        if known is not None and known.hashes.get("sha256") != digest:
            raise ReleaseError(
                f"release {version} is already published with other bytes; give the new bundle a new version"
            )
        info = TargetFile.from_data(name, data, ["sha256"])
        info.unrecognized_fields["custom"] = {"version": version, "rollout_percent": rollout_percent}
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        stored = self.targets_dir / f"{digest}.{name}"
        if not stored.exists():
            tmp = self.targets_dir / f".{stored.name}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, stored)
        targets_md.signed.targets[name] = info
        targets_md.signed.version += 1
        targets_md.signed.expires = _expiry("targets", now)
        self._publish(targets_md, signers, now)
        return Release(version, rollout_percent, name, len(data), digest)


def describe(release: Release) -> dict[str, object]:
    return {
        "version": release.version,
        "rollout_percent": release.rollout_percent,
        "target": release.target,
        "length": release.length,
        "sha256": release.sha256,
    }


def dump(releases: list[Release]) -> str:
    return json.dumps([describe(r) for r in releases], indent=2)
