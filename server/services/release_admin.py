"""The admin's release use cases (publish, change the rollout, list): role check and audit around
``server.services.releases``. Publishing is serialised by a lock: the repository's metadata
versions must go up one at a time."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy.orm import Session

from server.errors import Conflict, Forbidden, InvalidInput, NotFound
from server.services.actor import Actor, record, refuse
from server.services.releases import Release, ReleaseError, ReleaseRepository

ACTION = "release.publish"
READ_ACTION = "release.list"
_publish_lock = threading.Lock()


def require_admin(session: Session, actor: Actor, action: str, version: str = "") -> None:
    if actor.role != "admin":
        error = Forbidden("forbidden", "only an administrator may see or publish agent software releases")
        raise refuse(session, actor, error, action=action, target_type="release", target_id=version)


def _percent(session: Session, actor: Actor, raw: object, version: str) -> int:
    """The rollout share from a query string, a JSON body or the CLI, checked after the role."""
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= 100:
        error = InvalidInput("bad_release", f"rollout_percent must be a whole number 0..100, got {raw!r}")
        raise refuse(session, actor, error, action=ACTION, target_type="release", target_id=version)
    return raw


def _keys(session: Session, actor: Actor, keys_dir: Path | None, version: str) -> Path:
    if keys_dir is None:
        error = Conflict(
            "no_release_keys",
            "this server has no release signing keys: run `tandem-server releases init-keys DIR`, "
            "`tandem-server releases init-repo --keys DIR` and set release_keys_dir",
        )
        raise refuse(session, actor, error, action=ACTION, target_type="release", target_id=version)
    return keys_dir


def list_releases(session: Session, actor: Actor, repo: ReleaseRepository) -> list[Release]:
    require_admin(session, actor, READ_ACTION)
    return repo.releases() if repo.exists() else []


def publish(
    session: Session,
    actor: Actor,
    repo: ReleaseRepository,
    keys_dir: Path | None,
    version: str,
    archive: Path,
    rollout: object,
) -> Release:
    """Publish (or re-offer with another percentage) a release; every refusal is audited."""
    require_admin(session, actor, ACTION, version)
    rollout_percent = _percent(session, actor, rollout, version)
    keys = _keys(session, actor, keys_dir, version)
    with _publish_lock:
        try:
            release = repo.add_release(keys, version, archive, rollout_percent)
        except ReleaseError as exc:
            raise refuse(
                session,
                actor,
                InvalidInput("bad_release", str(exc)),
                action=ACTION,
                target_type="release",
                target_id=version,
            ) from exc
    record(
        session,
        actor,
        action=ACTION,
        target_type="release",
        target_id=version,
        detail=f"rollout {rollout_percent}%, sha256 {release.sha256}",
    )
    return release


def set_rollout(
    session: Session,
    actor: Actor,
    repo: ReleaseRepository,
    keys_dir: Path | None,
    version: str,
    rollout: object,
) -> Release:
    """Change a published release's share of the fleet (same bytes, re-signed)."""
    require_admin(session, actor, ACTION, version)
    known = {r.version: r for r in (repo.releases() if repo.exists() else [])}
    if version not in known:
        raise refuse(
            session,
            actor,
            NotFound("no_such_release", f"release {version} is not published"),
            action=ACTION,
            target_type="release",
            target_id=version,
        )
    stored = repo.targets_dir / f"{known[version].sha256}.{known[version].target}"
    return publish(session, actor, repo, keys_dir, version, stored, rollout)
