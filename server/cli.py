"""``tandem-server``: run the server and the operator's tasks."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import secrets
import sys

from server.cli_db import existing_session, new_or_existing_session
from server.cli_settings import settings_from_args
from server.errors import ConfigError, DomainError, NoDatabaseError

DEMO_USERS: tuple[tuple[str, str, str, str | None, list[str]], ...] = (
    # username, role, full name, team, supervises
    ("admin", "admin", "Ada Admin", None, []),
    ("supervisor", "supervisor", "Sam Supervisor", None, ["Blue"]),
    ("supervisor2", "supervisor", "Rita Red-Team", None, ["Red"]),
    ("agent1", "agent", "Alex Agent", "Blue", []),
)


def event_loop_name() -> str:
    """uvicorn's ``loop`` setting: uvloop (libuv), which costs less CPU per RTP datagram than
    asyncio's selector loop; plain asyncio only where uvloop cannot be imported (e.g. Windows)."""
    try:
        import uvloop  # noqa: F401
    except ImportError as exc:
        if sys.platform != "win32":  # uvloop has no Windows build: expected there, a fault here
            logging.getLogger(__name__).warning("uvloop unavailable (%s): running on asyncio's loop", exc)
        return "asyncio"
    return "uvloop"


def cmd_run(args: argparse.Namespace) -> int:
    import uvicorn

    from server.api.app import create_app
    from server.api.bounded_http import bounded_h11
    from server.api.log_redaction import install as install_log_redaction

    settings = settings_from_args(args)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from server.rlimits import raise_open_files_limit

    raise_open_files_limit()  # before any worker starts: children inherit the limit
    from server.datadir_lock import acquire
    from server.errors import DataDirInUseError

    try:  # before create_app: its start-up recovery must never touch another server's calls
        datadir_lock = acquire(settings.data_dir)
    except DataDirInUseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        loop=event_loop_name(),
        log_level=settings.log_level,
        ws="websockets-sansio",  # uvicorn deprecates the legacy "websockets" implementation
        lifespan="on",
        # Bounds on what an anonymous client can make the process (and SIP, on the same event
        # loop) do; see server/api/bounded_http.py. h11, not httptools, for the header bound.
        http=bounded_h11(settings.http_header_timeout_seconds, settings.http_body_idle_timeout_seconds),
        h11_max_incomplete_event_size=settings.http_max_header_bytes,
        limit_concurrency=settings.http_max_concurrency,
    )
    install_log_redaction()  # after uvicorn.Config: it sets up uvicorn's loggers
    from server.drain import DrainingServer

    with datadir_lock:  # held until the process is done with the data directory
        DrainingServer(config, app.state.ctx.coordinator, settings.drain_seconds).run()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from server.store.db import migrate

    settings = settings_from_args(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.resolved_database_url)
    print(f"database is at the newest schema: {settings.resolved_database_url}")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    return sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Password: ")


def cmd_create_user(args: argparse.Namespace) -> int:
    from server.services import users
    from server.services.actor import Actor

    settings = settings_from_args(args)
    password = _read_password(args)
    with existing_session(args, settings) as s:
        users.create_user(
            s,
            Actor.cli(),
            args.username,
            password,
            args.role,
            full_name=args.full_name,
            team=args.team,
            supervises=args.supervises,
        )
    print(f"created {args.role} {args.username}")
    return 0


def cmd_set_password(args: argparse.Namespace) -> int:
    from server.services import users
    from server.services.actor import Actor

    settings = settings_from_args(args)
    password = _read_password(args)
    with existing_session(args, settings) as s:
        users.reset_password(s, Actor.cli(), args.username, password)
    print(f"password of {args.username} changed")
    return 0


def cmd_password_policy(args: argparse.Namespace) -> int:
    """Show the password policy; with options, change those fields (the others stay)."""
    from dataclasses import asdict

    from server.policy.password_rules import describe
    from server.services import users
    from server.services.actor import Actor

    settings = settings_from_args(args)
    changes = {
        name: value
        for name, value in (
            ("min_length", args.min_length),
            ("require_lowercase", args.require_lowercase),
            ("require_uppercase", args.require_uppercase),
            ("require_digit", args.require_digit),
            ("require_symbol", args.require_symbol),
            ("forbid_username", args.forbid_username),
        )
        if value is not None
    }
    with existing_session(args, settings) as s:
        policy = users.read_policy(s)
        if changes:
            policy = users.set_policy(s, Actor.cli(), {**asdict(policy), **changes})
    print(f"password policy: {describe(policy)}")
    return 0


def cmd_demo_setup(args: argparse.Namespace) -> int:
    """Create demo users once (random passwords, kept 0600 in the data dir) and print them."""
    from server.services import users
    from server.services.actor import Actor

    settings = settings_from_args(args)
    creds_file = settings.data_dir / "demo-credentials.json"
    if creds_file.exists():
        creds = json.loads(creds_file.read_text())
    else:
        creds = {}
        actor = Actor.cli()
        with new_or_existing_session(settings) as s:
            for username, role, full_name, team, supervises in DEMO_USERS:
                password = secrets.token_urlsafe(18)  # 24 characters: past any sane length policy
                users.create_user(
                    s, actor, username, password, role, full_name=full_name, team=team, supervises=supervises
                )
                creds[username] = {"password": password, "role": role}
        fd = os.open(creds_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(creds, fh, indent=2)
    if args.json:
        print(json.dumps(creds))
    else:
        for username, info in creds.items():
            print(f"  {info['role']:<11} {username:<12} password: {info['password']}")
    return 0


def cmd_set_full_time_dn(args: argparse.Namespace) -> int:
    from server.services import full_time_dn
    from server.services.actor import Actor

    settings = settings_from_args(args)
    with existing_session(args, settings) as s:
        dn = full_time_dn.set_dn(s, Actor.cli(), args.username, args.dn)
    print(f"{args.username}: full-time recording DN {'set to ' + dn if dn else 'cleared'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tandem-server", description="Tandem recording server")
    parser.add_argument("--config", help="TOML settings file (or TANDEM_SERVER_CONFIG)")
    parser.add_argument("--data-dir", help="data directory (database, recordings)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the server (HTTP, WebSocket, SIP)").set_defaults(func=cmd_run)
    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(func=cmd_migrate)
    p = sub.add_parser("create-user", help="create a user")
    p.add_argument("--username", required=True)
    p.add_argument(
        "--role", required=True, choices=["agent", "supervisor", "evaluator", "compliance", "admin"]
    )
    p.add_argument("--full-name", default="")
    p.add_argument("--team", help="team the user belongs to (created if new)")
    p.add_argument(
        "--supervises", action="append", default=[], help="team a supervisor oversees (repeatable)"
    )
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_create_user)
    p = sub.add_parser("demo-setup", help="create demo users (once) and print their credentials")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo_setup)
    from server import policy_cli

    policy_cli.add_parser(sub)
    p = sub.add_parser("set-full-time-dn", help="record every call on a DN for an agent, logged in or not")
    p.add_argument("--username", required=True)
    p.add_argument("--dn", default="", help="the DN; empty clears it")
    p.set_defaults(func=cmd_set_full_time_dn)
    p = sub.add_parser("set-password", help="set a user's password (under the password policy)")
    p.add_argument("--username", required=True)
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_set_password)
    p = sub.add_parser("password-policy", help="show the password policy; with options, change it")
    p.add_argument("--min-length", type=int, help="at least 8")
    for flag in ("lowercase", "uppercase", "digit", "symbol"):
        p.add_argument(f"--require-{flag}", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument(
        "--forbid-username",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the password may not contain the username",
    )
    p.set_defaults(func=cmd_password_policy)
    from server import audit_cli

    audit_cli.add_parser(sub)
    from server import dn_matching_cli

    dn_matching_cli.add_parser(sub)
    from server import recorder_cli

    recorder_cli.add_parser(sub)
    from server import recorder_policy_cli

    recorder_policy_cli.add_parser(sub)
    from server import agent_playback_cli

    agent_playback_cli.add_parser(sub)
    from server import codes_cli

    codes_cli.add_parser(sub)
    from server import devices_cli

    devices_cli.add_parser(sub)
    from server import releases_cli

    releases_cli.add_parser(sub)
    from server import user_admin_cli

    user_admin_cli.add_parser(sub)
    try:
        from server.sim import cli as sim_cli
    except ImportError:
        sim_cli = None  # type: ignore[assignment]
    if sim_cli is not None:
        p = sub.add_parser("simulate-call", help="place a real SIP call with speech-like RTP audio")
        sim_cli.add_arguments(p)
        p.set_defaults(func=sim_cli.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except (DomainError, NoDatabaseError) as exc:  # refused (and audited) by the rules: no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
