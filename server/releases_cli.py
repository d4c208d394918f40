"""``tandem-server releases init-keys|init-repo|add|rollout|policy|list|refresh-timestamp``: the
agent-software release repository from the server's shell (``server.services.releases``).

First time, on the admin's own PC or the server: ``init-keys DIR`` makes the four signing keys;
``init-repo --keys DIR`` creates the repository in the server's data dir (the only step that needs
the root key). Then move ``DIR/root.pem`` somewhere offline and point ``release_keys_dir`` at a
directory holding the other three. ``add`` publishes a bundle archive (audited as user "cli");
``refresh-timestamp`` re-signs the one-day timestamp and belongs in a daily timer. ``rollout`` and
``policy`` (pin every PC to a version, updates off, back to the rollout) are the web page's changes,
made through the same service, so the same checks, offers and audit records."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from server.cli_settings import settings_from_args

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from server.services.actor import Actor
    from server.services.releases import ReleaseRepository

T = TypeVar("T")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("releases", help="the signed agent-software releases the recorders update from")
    actions = p.add_subparsers(dest="releases_action", required=True)
    s = actions.add_parser(
        "init-keys", help="make the root, targets, snapshot and timestamp signing keys in DIR"
    )
    s.add_argument("dir", type=Path)
    s.set_defaults(func=cmd_init_keys)
    s = actions.add_parser(
        "init-repo", help="create the release repository in the data dir (needs the root key)"
    )
    s.add_argument("--keys", type=Path, required=True)
    s.set_defaults(func=cmd_init_repo)
    s = actions.add_parser(
        "add", help="publish a bundle archive (.tar.gz) as a version, offered to a share of the fleet"
    )
    s.add_argument("--version", required=True)
    s.add_argument("--bundle", type=Path, required=True)
    s.add_argument(
        "--percent", type=int, default=100, help="staged rollout: share of the PCs it is offered to (0..100)"
    )
    s.add_argument("--keys", type=Path, help="the signing keys (default: the release_keys_dir setting)")
    s.set_defaults(func=cmd_add)
    s = actions.add_parser("rollout", help="change a published release's share of the fleet (re-signed)")
    s.add_argument("version")
    s.add_argument("percent", help="0..100")
    s.add_argument("--keys", type=Path, help="the signing keys (default: the release_keys_dir setting)")
    s.set_defaults(func=cmd_rollout)
    s = actions.add_parser(
        "policy", help="fleet-wide: follow each release's rollout, pin every PC to one version, or off"
    )
    s.add_argument("mode", choices=["rollout", "pinned", "off"])
    s.add_argument("--pin", default="", help="the version, with mode pinned")
    s.add_argument("--keys", type=Path, help="the signing keys (default: the release_keys_dir setting)")
    s.set_defaults(func=cmd_policy)
    actions.add_parser("list", help="the published releases").set_defaults(func=cmd_list)
    s = actions.add_parser("refresh-timestamp", help="re-sign the timestamp (expires after a day: run daily)")
    s.add_argument("--keys", type=Path, help="the signing keys (default: the release_keys_dir setting)")
    s.set_defaults(func=cmd_refresh)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def cmd_init_keys(args: argparse.Namespace) -> int:
    from server.services.releases import ReleaseError, init_keys

    try:
        made = init_keys(args.dir)
    except ReleaseError as exc:
        return _fail(str(exc))
    print("made " + ", ".join(str(p) for p in made))
    print(
        "after init-repo keep root.pem offline; the server needs targets.pem, snapshot.pem and timestamp.pem"
    )
    return 0


def cmd_init_repo(args: argparse.Namespace) -> int:
    from server.services.releases import ReleaseError, ReleaseRepository

    repo = ReleaseRepository(settings_from_args(args).releases_dir)
    try:
        repo.create(args.keys)
    except ReleaseError as exc:
        return _fail(str(exc))
    print(f"release repository created in {repo.root_dir}; its root.json (bundle it with the recorder):")
    print(repo.metadata_dir / "1.root.json")
    return 0


_AdminChange = Callable[["Session", "Actor", "ReleaseRepository", "Path | None"], T]


def _as_admin(args: argparse.Namespace, change: _AdminChange[T]) -> T | int:
    """Run one release_admin use case as the CLI actor on the server's database: the service the
    web page and the API call, so the same checks, signed offers and audit records. A refusal
    prints its sentence and gives exit status 1."""
    from server.cli_db import existing_session
    from server.errors import DomainError
    from server.services.actor import Actor
    from server.services.releases import ReleaseRepository

    settings = settings_from_args(args)
    repo = ReleaseRepository(settings.releases_dir)
    keys = args.keys or settings.release_keys_dir
    try:
        with existing_session(args, settings) as s:
            return change(s, Actor.cli(), repo, keys)
    except DomainError as exc:
        return _fail(str(exc))


def cmd_add(args: argparse.Namespace) -> int:
    from server.services import release_admin

    release = _as_admin(
        args,
        lambda s, actor, repo, keys: release_admin.publish(
            s, actor, repo, keys, args.version, args.bundle, args.percent
        ),
    )
    if isinstance(release, int):
        return release
    print(f"published {release.version} to {release.rollout_percent}% of the fleet (sha256 {release.sha256})")
    return 0


def cmd_rollout(args: argparse.Namespace) -> int:
    from server.services import release_admin

    release = _as_admin(
        args,
        lambda s, actor, repo, keys: release_admin.set_rollout(
            s, actor, repo, keys, args.version, args.percent
        ),
    )
    if isinstance(release, int):
        return release
    print(f"{release.version} offered to {release.rollout_percent}% of the fleet")
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    from server.services import release_admin

    raw = {"mode": args.mode, "pin": args.pin}
    policy = _as_admin(args, lambda s, actor, repo, keys: release_admin.set_policy(s, actor, repo, keys, raw))
    if isinstance(policy, int):
        return policy
    print(f"release policy: {policy['mode']}" + (f" {policy['pin']}" if policy.get("pin") else ""))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from server.services.releases import ReleaseRepository

    repo = ReleaseRepository(settings_from_args(args).releases_dir)
    if not repo.exists():
        return _fail(f"no release repository at {repo.root_dir} (tandem-server releases init-repo)")
    for r in repo.releases():
        print(f"{r.version}\t{r.rollout_percent}%\t{r.length} bytes\tsha256 {r.sha256}")
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    from server.services.releases import ReleaseError, ReleaseRepository

    settings = settings_from_args(args)
    keys = args.keys or settings.release_keys_dir
    if keys is None:
        return _fail("give --keys DIR or set release_keys_dir")
    try:
        ReleaseRepository(settings.releases_dir).refresh_timestamp(keys)
    except ReleaseError as exc:
        return _fail(str(exc))
    print("timestamp re-signed")
    return 0
