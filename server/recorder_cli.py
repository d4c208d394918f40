"""``tandem-server enroll-recorder --username AGENT``: IT pairs a recorder service with an agent.

Prints a one-time enrolment code (valid ``recorder_enrolment_ttl_hours``, 24 h by default) to give
to the agent's PC: ``tandem-recorder login --server URL --enroll-code CODE``. Audited as user "cli".
The same rules as ``POST /api/admin/recorders/enrolments`` (server/services/enrolment.py)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time

from server.cli_settings import settings_from_args

CLI_USER = "cli"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "enroll-recorder", help="issue a one-time code that enrols an agent's recorder service"
    )
    p.add_argument("--username", required=True, help="the agent whose PC runs the recorder")
    p.add_argument("--json", action="store_true", help="print {code, username, expires_at} as JSON")
    p.set_defaults(func=cmd_enroll_recorder)


def cmd_enroll_recorder(args: argparse.Namespace) -> int:
    from server.cli_db import existing_session
    from server.errors import EnrolmentError, NoDatabaseError
    from server.services.enrolment import issue_code

    settings = settings_from_args(args)
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    try:
        with existing_session(args, settings) as s:
            issued = issue_code(
                s,
                args.username,
                ttl_seconds=settings.recorder_enrolment_ttl_hours * 3600,
                by_user_id=None,
                by_username=CLI_USER,
                remote_addr=f"os user {who}"[:64],
            )
    except (EnrolmentError, NoDatabaseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"code": issued.code, "username": issued.username, "expires_at": issued.expires_at}))
        return 0
    until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(issued.expires_at))
    print(f"Recorder enrolment code for {issued.username} (one use, valid until {until}):")
    print(f"  {issued.code}")
    print("On the agent's PC: tandem-recorder login --server URL --enroll-code CODE")
    return 0
