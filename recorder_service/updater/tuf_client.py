"""Fetch and verify releases with python-tuf's ngclient -- a thin adapter.

Why python-tuf directly and not tufup: tufup 0.10 (the newest) pins ``tuf==4.0.*`` and
``bsdiff4==1.2.*`` and brings its own install step (it unpacks an archive over the install
directory); we need the current python-tuf (7.x) and an install that keeps the old version beside
the new one until the new one passed its self-test (``system``). What TUF gives us is the part that is
hard to get right: signed metadata with expiry (a stale or replayed repository is refused),
version numbers that never go back (rollback protection), and every downloaded byte checked
against the signed length and hash.

The client is installed with the repository's ``root.json`` (the trust anchor, bundled beside the
recorder); everything else comes from the server under ``<base>/metadata/`` and ``<base>/targets/``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from tuf.api.exceptions import DownloadError, RepositoryError
from tuf.api.metadata import Metadata, Targets
from tuf.ngclient import Updater

from recorder_service.updater.policy import Offer

log = logging.getLogger(__name__)


class UpdateRefused(Exception):
    """The repository or a download failed verification (or could not be reached): nothing is
    installed and the running version keeps running. The message says why."""


def target_name(version: str) -> str:
    # Same name as server.services.releases.target_name (the client does not import the server).
    return f"tandem-agent-{version}.tar.gz"


@dataclass(frozen=True)
class Downloaded:
    version: str
    path: Path
    sha256: str


class ReleaseClient:
    def __init__(self, cache_dir: Path, base_url: str, trusted_root: bytes) -> None:
        self.metadata_dir = cache_dir / "metadata"
        self.download_dir = cache_dir / "downloads"
        self.base_url = base_url.rstrip("/")
        self.trusted_root = trusted_root

    def _updater(self) -> Updater:
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        self.download_dir.mkdir(parents=True, exist_ok=True)
        # bootstrap with the bundled root every time: the metadata cache (which keeps the version
        # numbers seen so far, the rollback protection) is in metadata_dir either way
        return Updater(
            metadata_dir=str(self.metadata_dir),
            metadata_base_url=f"{self.base_url}/metadata/",
            target_dir=str(self.download_dir),
            target_base_url=f"{self.base_url}/targets/",
            bootstrap=self.trusted_root,
        )

    def offers(self) -> list[Offer]:
        """Refresh the metadata (root, timestamp, snapshot, targets: each verified) and list the
        releases with their signed rollout percentage."""
        updater = self._updater()
        try:
            updater.refresh()
        except (RepositoryError, DownloadError, OSError) as exc:
            raise UpdateRefused(
                f"release metadata from {self.base_url} refused: {type(exc).__name__}: {exc}"
            ) from exc
        # ngclient writes targets.json to its cache only after verifying it, and lists no targets
        # itself; reading the verified copy is the documented way to enumerate them.
        targets: Metadata[Targets] = Metadata.from_file(str(self.metadata_dir / "targets.json"))
        offers = []
        for info in targets.signed.targets.values():
            custom = info.custom
            version, percent = custom.get("version"), custom.get("rollout_percent")
            if isinstance(version, str) and isinstance(percent, int) and info.path == target_name(version):
                offers.append(Offer(version, percent))
            else:
                log.warning(
                    "ignoring release target %s: no version/rollout_percent that match its name", info.path
                )
        return offers

    def download(self, version: str) -> Downloaded:
        """Download the release's archive and check it against the signed length and sha256."""
        updater = self._updater()
        try:
            info = updater.get_targetinfo(target_name(version))
            if info is None:
                raise UpdateRefused(f"release {version} is not in the signed release list")
            path = updater.download_target(info, str(self.download_dir / target_name(version)))
        except (RepositoryError, DownloadError, OSError) as exc:
            # ngclient writes the file only after the hash matched: a refused download leaves nothing
            raise UpdateRefused(f"release {version} refused: {type(exc).__name__}: {exc}") from exc
        return Downloaded(version, Path(path), info.hashes["sha256"])
