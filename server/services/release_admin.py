"""The admin's release use cases (publish, change the rollout, the fleet-wide pin or off switch,
list): role check and audit around ``server.services.releases``. Publishing is serialised by a
lock: the repository's metadata versions must go up one at a time.

The fleet-wide policy (``server.services.release_policy``) and the admin's own percentage for
each release live in ``<releases>/fleet-policy.json`` next to the TUF repository (never served:
only ``metadata/`` and ``targets/`` are); what the recorders act on is the signed offer each
release gets under that policy."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from server.services.actor import Actor, record, refuse
from server.services.release_policy import (
    FleetPolicy,
    ReleasePolicyError,
    offered_percent,
    parse_policy,
    plan,
    policy_from_state,
)
from server.services.releases import Release, ReleaseError, ReleaseRepository, describe
from server.store import models

ACTION = "release.publish"
READ_ACTION = "release.list"
POLICY_ACTION = "release.policy"
STATE_FILE = "fleet-policy.json"
_publish_lock = threading.Lock()


def require_admin(session: Session, actor: Actor, action: str, version: str = "") -> None:
    if actor.role != "admin":
        error = Forbidden("forbidden", "only an administrator may see or publish agent software releases")
        raise refuse(session, actor, error, action=action, target_type="release", target_id=version)


def _refuse(session: Session, actor: Actor, error: DomainError, action: str, version: str) -> DomainError:
    return refuse(session, actor, error, action=action, target_type="release", target_id=version)


def _percent(session: Session, actor: Actor, raw: object, version: str) -> int:
    """The rollout share from a query string, a JSON body or the CLI, checked after the role."""
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= 100:
        error = InvalidInput("bad_release", f"rollout_percent must be a whole number 0..100, got {raw!r}")
        raise _refuse(session, actor, error, ACTION, version)
    return raw


def _keys(session: Session, actor: Actor, keys_dir: Path | None, action: str, version: str) -> Path:
    if keys_dir is None:
        error = Conflict(
            "no_release_keys",
            "this server has no release signing keys: run `tandem-server releases init-keys DIR`, "
            "`tandem-server releases init-repo --keys DIR` and set release_keys_dir",
        )
        raise _refuse(session, actor, error, action, version)
    return keys_dir


# --- the policy file ------------------------------------------------------------------------------
def _read_state(repo: ReleaseRepository) -> tuple[FleetPolicy, dict[str, int]]:
    path = repo.root_dir / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return FleetPolicy(), {}
    except (OSError, ValueError) as exc:
        # not "follow the rollout" by default: that could widen offers IT had narrowed
        raise ReleaseError(f"{path} cannot be read ({exc}); fix or remove it") from exc
    chosen = data.get("chosen", {}) if isinstance(data, dict) else {}
    return policy_from_state(data if isinstance(data, dict) else {}), {
        str(v): p for v, p in chosen.items() if isinstance(p, int) and 0 <= p <= 100
    }


def _write_state(repo: ReleaseRepository, policy: FleetPolicy, chosen: dict[str, int]) -> None:
    path = repo.root_dir / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.tmp")
    tmp.write_text(json.dumps({**policy.describe(), "chosen": chosen}, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _published(repo: ReleaseRepository) -> dict[str, Release]:
    return {r.version: r for r in (repo.releases() if repo.exists() else [])}


def _stored(repo: ReleaseRepository, release: Release) -> Path:
    return repo.targets_dir / f"{release.sha256}.{release.target}"


def _uploads(session: Session) -> dict[str, tuple[float, str]]:
    """When and by whom each version was first published, from the audit log."""
    rows = session.execute(
        select(models.AuditRecord.target_id, models.AuditRecord.at, models.AuditRecord.username)
        .where(
            models.AuditRecord.action == ACTION,
            models.AuditRecord.outcome == "allowed",
            models.AuditRecord.target_type == "release",
        )
        .order_by(models.AuditRecord.seq.desc())
    ).all()
    return {version: (at, username) for version, at, username in rows}  # the oldest wins


# --- use cases ------------------------------------------------------------------------------------
def overview(
    session: Session, actor: Actor, repo: ReleaseRepository, keys_dir: Path | None
) -> dict[str, Any]:
    """The releases (offered and chosen percentages, first upload) and the fleet-wide policy."""
    require_admin(session, actor, READ_ACTION)
    try:
        policy, chosen = _read_state(repo)
    except ReleaseError as exc:
        raise _refuse(session, actor, Conflict("bad_release_state", str(exc)), READ_ACTION, "") from exc
    uploads = _uploads(session)
    releases = []
    for release in _published(repo).values():
        at, by = uploads.get(release.version, (None, ""))
        releases.append(
            {
                **describe(release),
                "chosen_percent": chosen.get(release.version, release.rollout_percent),
                "uploaded_at": at,
                "uploaded_by": by,
            }
        )
    return {
        "releases": releases,
        "policy": policy.describe(),
        "repository": repo.exists(),
        "signing_keys": keys_dir is not None,
    }


def chosen_percent(repo: ReleaseRepository, version: str) -> int | None:
    return _read_state(repo)[1].get(version)


def publish(
    session: Session,
    actor: Actor,
    repo: ReleaseRepository,
    keys_dir: Path | None,
    version: str,
    archive: Path,
    rollout: object,
) -> Release:
    """Publish (or re-offer with another percentage) a release; every refusal is audited. Under a
    fleet-wide pin or off switch the percentage is kept for later and the offer follows the policy."""
    require_admin(session, actor, ACTION, version)
    rollout_percent = _percent(session, actor, rollout, version)
    keys = _keys(session, actor, keys_dir, ACTION, version)
    with _publish_lock:
        try:
            policy, chosen = _read_state(repo)
            published = _published(repo)
            known = published.get(version)
            before = chosen.get(version, known.rollout_percent) if known else None
            offered = offered_percent(version, rollout_percent, policy)
            release = repo.add_release(keys, version, archive, offered)
            chosen = {v: chosen.get(v, r.rollout_percent) for v, r in published.items()}
            _write_state(repo, policy, {**chosen, version: rollout_percent})
        except ReleaseError as exc:
            raise _refuse(session, actor, InvalidInput("bad_release", str(exc)), ACTION, version) from exc
    after = {"rollout_percent": rollout_percent, "offered_percent": offered}
    detail = {
        "before": None
        if known is None
        else {"rollout_percent": before, "offered_percent": known.rollout_percent},
        "after": after,
        "sha256": release.sha256,
    }
    record(session, actor, action=ACTION, target_type="release", target_id=version, detail=json.dumps(detail))
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
    known = _published(repo).get(version)
    if known is None:
        error = NotFound("no_such_release", f"release {version} is not published")
        raise _refuse(session, actor, error, ACTION, version)
    return publish(session, actor, repo, keys_dir, version, _stored(repo, known), rollout)


def set_policy(
    session: Session, actor: Actor, repo: ReleaseRepository, keys_dir: Path | None, raw: object
) -> dict[str, Any]:
    """Pin the fleet to a published release, turn updates off, or go back to the rollout: the
    offers are re-signed to match, narrowings first; audited with the policy and offers before
    and after."""
    require_admin(session, actor, POLICY_ACTION)
    try:
        policy = parse_policy(raw)
    except ReleasePolicyError as exc:
        raise _refuse(
            session, actor, InvalidInput("bad_release_policy", str(exc)), POLICY_ACTION, ""
        ) from exc
    keys = _keys(session, actor, keys_dir, POLICY_ACTION, policy.pin)
    if not repo.exists():
        error: DomainError = Conflict(
            "no_release_repository",
            f"there is no release repository at {repo.root_dir} (tandem-server releases init-repo)",
        )
        raise _refuse(session, actor, error, POLICY_ACTION, policy.pin)
    with _publish_lock:
        published = _published(repo)
        if policy.pin and policy.pin not in published:
            error = NotFound("no_such_release", f"release {policy.pin} is not published: upload it first")
            raise _refuse(session, actor, error, POLICY_ACTION, policy.pin)
        try:
            old, chosen = _read_state(repo)
            chosen = {v: chosen.get(v, r.rollout_percent) for v, r in published.items()}
            signed = {v: r.rollout_percent for v, r in published.items()}
            _write_state(
                repo, policy, chosen
            )  # the intent first: a crash midway is finished by the next change
            changes = plan(signed, chosen, policy)
            for version, _now, then in changes:
                repo.add_release(keys, version, _stored(repo, published[version]), then)
        except ReleaseError as exc:
            error = Conflict("bad_release_state", str(exc))
            raise _refuse(session, actor, error, POLICY_ACTION, policy.pin) from exc
    detail = {
        "before": old.describe(),
        "after": policy.describe(),
        "offers": {v: {"before": now, "after": then} for v, now, then in changes},
    }
    record(
        session,
        actor,
        action=POLICY_ACTION,
        target_type="release",
        target_id=policy.pin,
        detail=json.dumps(detail),
    )
    return policy.describe()
