"""``tandem-server devices``: IT's enrolment tokens and enrolled devices from the command line.

    tandem-server devices token-create --scope site:HQ [--hours 24] [--max-uses 500] [--json]
    tandem-server devices token-revoke ID
    tandem-server devices tokens | list
    tandem-server devices revoke ID

The same rules as ``/api/admin/devices`` (server/services/devices.py), audited as user "cli"
with the OS account that ran it."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING

from server.cli_settings import settings_from_args

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from server.services.devices import Who

CLI_USER = "cli"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("devices", help="enrolment tokens and enrolled recorder devices (agent PCs)")
    actions = p.add_subparsers(dest="devices_action", required=True)
    c = actions.add_parser("token-create", help="a token that enrols recorders (shown once)")
    c.add_argument("--scope", required=True, help="team:NAME or site:LABEL")
    c.add_argument("--hours", type=float, default=24.0, help="valid for (default 24)")
    c.add_argument("--max-uses", type=int, default=1, help="how many PCs may enrol with it")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_token_create)
    r = actions.add_parser("token-revoke", help="no more enrolments with this token")
    r.add_argument("id", type=int)
    r.set_defaults(func=cmd_token_revoke)
    actions.add_parser("tokens", help="every enrolment token and its state, as JSON").set_defaults(
        func=cmd_tokens
    )
    actions.add_parser("list", help="every device and its state, as JSON").set_defaults(func=cmd_list)
    d = actions.add_parser("revoke", help="revoke a device: its next connection and upload are refused")
    d.add_argument("id", type=int)
    d.set_defaults(func=cmd_revoke)


def _who() -> Who:
    from server.services.devices import Who

    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):
        os_user = "unknown"
    return Who(None, CLI_USER, f"os user {os_user}"[:64])


def _run(args: argparse.Namespace, work: Callable[[Session], object]) -> int:
    from server.cli_db import existing_session
    from server.errors import EnrolmentError, NoDatabaseError

    try:
        with existing_session(args, settings_from_args(args)) as s:
            work(s)
    except (EnrolmentError, NoDatabaseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from server.services import devices

    made: list[devices.NewEnrolmentToken] = []

    def work(s: Session) -> None:
        made.append(
            devices.create_enrolment_token(
                s,
                _who(),
                scope=args.scope,
                ttl_seconds=args.hours * 3600,
                max_uses=args.max_uses,
            )
        )

    rc = _run(args, work)
    if rc == 0:
        token = made[0]
        if args.json:
            print(json.dumps(asdict(token)))
        else:
            until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(token.expires_at))
            uses = f"{token.max_uses} use(s)"
            print(f"Enrolment token {token.id} for {token.scope} ({uses}, valid until {until}):")
            print(f"  {token.token}")
            print("Preseed it as enroll_token in /etc/tandem/agent.toml (or ENROLLTOKEN= for the MSI).")
    return rc


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from server.services import devices

    return _run(args, lambda s: devices.revoke_enrolment_token(s, _who(), args.id))


def cmd_tokens(args: argparse.Namespace) -> int:
    from server.services import device_listing

    return _run(args, lambda s: print(json.dumps(device_listing.list_enrolment_tokens(s), indent=2)))


def cmd_list(args: argparse.Namespace) -> int:
    from server.services import device_listing

    return _run(args, lambda s: print(json.dumps(device_listing.list_devices(s), indent=2)))


def cmd_revoke(args: argparse.Namespace) -> int:
    from server.services import devices

    # Its tokens are revoked at once, so uploads and reconnections are refused; a channel a running
    # server holds open stays until it reconnects (the web UI and API close it at once).
    return _run(args, lambda s: devices.revoke_device(s, _who(), args.id))
