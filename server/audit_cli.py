"""``tandem-server audit ...``: verify the audit chain, write a signed checkpoint, print the key.

``verify`` only reads: it neither migrates nor audits itself, so it runs on a read-only copy or
snapshot of a database as well as on the live one."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from server.cli_settings import settings_from_args
from server.settings import Settings
from server.store.audit_chain import DEFAULT_TIME_TOLERANCE

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from server.store.audit import VerifyResult

CLI_USER = "cli"


def _trusted_key(settings: Settings, given: str | None) -> Ed25519PublicKey:
    from server.errors import CheckpointError
    from server.store.audit_checkpoint import KEY_FILE, load_or_create_key, parse_public_key

    if given:
        path = Path(given)
        return parse_public_key(path.read_text() if path.is_file() else given)
    if not (settings.data_dir / KEY_FILE).is_file():
        raise CheckpointError(
            f"no signing key in {settings.data_dir} to check checkpoints against: "
            "give --public-key (the output of `tandem-server audit public-key` on the server)"
        )
    return load_or_create_key(settings.data_dir).public_key()


def run_verify(
    settings: Settings, checkpoints: Path | None, public_key: str | None, tolerance: float
) -> VerifyResult:
    from sqlalchemy.orm import Session

    from server.store import audit
    from server.store.audit_chain import Finding
    from server.store.audit_checkpoint import read_checkpoints
    from server.store.db import make_engine

    problems: list[str] = []
    anchors = []
    if checkpoints is not None:
        read = read_checkpoints(checkpoints, _trusted_key(settings, public_key))
        anchors, problems = read.anchors, read.problems
    engine = make_engine(settings.resolved_database_url)
    try:
        with Session(engine) as session:
            result = audit.verify(session, anchors, time_tolerance=tolerance)
    finally:
        engine.dispose()
    result.findings[:0] = [Finding("checkpoint", None, None, p) for p in problems]
    return result


def cmd_verify(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import OperationalError

    from server.errors import CheckpointError

    settings = settings_from_args(args)
    if settings.resolved_database_url.startswith("sqlite:///"):
        db = Path(settings.resolved_database_url.removeprefix("sqlite:///"))
        if not db.is_file():  # SQLite would create an empty one, which "verifies"
            print(f"error: no database at {db}", file=sys.stderr)
            return 2
    try:
        result = run_verify(settings, args.checkpoints, args.public_key, args.time_tolerance)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OperationalError as exc:
        print(
            f"error: cannot read the audit chain ({exc.orig}); a database older than schema "
            "revision 0004 has none yet: run `tandem-server migrate`",
            file=sys.stderr,
        )
        return 2
    for finding in result.findings:
        print(finding)
    print(result.summary())
    return 0 if result.intact else 1


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from server.errors import CheckpointError
    from server.store import audit
    from server.store.audit_checkpoint import load_or_create_key, write_checkpoint
    from server.store.db import make_engine, make_session_factory, migrate, session_scope

    settings = settings_from_args(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        key = load_or_create_key(settings.data_dir)
        with session_scope(make_session_factory(engine)) as s:
            # Recorded first, so the checkpoint covers its own record.
            audit.record(
                s,
                action="audit.checkpoint",
                outcome="allowed",
                username=CLI_USER,
                target_type="audit",
                detail=f"to {args.out} (OS user {getpass.getuser()})",
            )
            s.flush()
            head = audit.read_head(s)
        assert head is not None  # record() refuses to write without one
        path = write_checkpoint(Path(args.out), key, head.seq, head.hash)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"checkpoint at seq {head.seq} written to {path}")
    return 0


def cmd_public_key(args: argparse.Namespace) -> int:
    from server.store.audit_checkpoint import load_or_create_key, public_key_hex

    settings = settings_from_args(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    print(public_key_hex(load_or_create_key(settings.data_dir)))
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit_p = sub.add_parser("audit", help="verify the tamper-evident audit log; signed checkpoints")
    commands = audit_p.add_subparsers(dest="audit_command", required=True)
    p = commands.add_parser("verify", help="recompute the hash chain; exit 1 on any finding")
    p.add_argument(
        "--checkpoints", type=Path, help="directory of signed checkpoints to hold the chain against"
    )
    p.add_argument(
        "--public-key", help="trusted checkpoint key (hex, or a file holding it); default: the data dir's"
    )
    p.add_argument(
        "--time-tolerance",
        type=float,
        default=DEFAULT_TIME_TOLERANCE,
        help=(
            f"seconds a record may be dated before its predecessor (default {DEFAULT_TIME_TOLERANCE:g}; "
            "records written before schema revision 0004 were not timed under the chain's lock, "
            "so an old log may need more)"
        ),
    )
    p.set_defaults(func=cmd_verify)
    p = commands.add_parser("checkpoint", help="write a signed checkpoint of the chain's head to a directory")
    p.add_argument("--out", required=True, help="directory outside the database (e.g. a WORM share)")
    p.set_defaults(func=cmd_checkpoint)
    p = commands.add_parser("public-key", help="print the checkpoint signing key's public half (hex)")
    p.set_defaults(func=cmd_public_key)
