"""``tandem-server codes show|set|require-disposition``: the admin's reason codes (Not Ready) and
disposition codes (ACW). The same use case as ``/api/admin/codes`` and the admin page
(``server.services.dispositions``), audited as user "cli" with the OS account that ran it."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from server.cli_settings import settings_from_args


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "codes",
        help="show or change reason codes (Not Ready) and disposition codes (after-call work)",
        description="Codes are never deleted (history names them): set one --inactive instead.",
    )
    actions = p.add_subparsers(dest="codes_action", required=True)
    actions.add_parser("show", help="print every code and the disposition rule as JSON").set_defaults(
        func=cmd_show
    )
    s = actions.add_parser("set", help="create or change a code")
    s.add_argument("kind", choices=["reason", "disposition", "pause"])
    s.add_argument("code", help="1-32 letters, digits, '.', '_' or '-', e.g. LUNCH")
    s.add_argument("label", help="what agents see, e.g. 'Lunch break'")
    s.add_argument("--inactive", action="store_true", help="no longer offered to agents")
    s.set_defaults(func=cmd_set)
    r = actions.add_parser("require-disposition", help="whether Done needs a disposition code")
    r.add_argument("value", choices=["on", "off"])
    r.set_defaults(func=cmd_require)


def cmd_show(args: argparse.Namespace) -> int:
    from server.cli_db import existing_session
    from server.services import dispositions

    with existing_session(args, settings_from_args(args)) as s:
        codes = [asdict(c) for c in dispositions.list_codes(s)]
        print(json.dumps({"codes": codes, "disposition_required": dispositions.disposition_required(s)}))
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    from server.cli_db import existing_session
    from server.services import dispositions
    from server.services.actor import Actor

    with existing_session(args, settings_from_args(args)) as s:
        code = dispositions.set_code(s, Actor.cli(), args.kind, args.code, args.label, not args.inactive)
    print(json.dumps(asdict(code)))
    return 0


def cmd_require(args: argparse.Namespace) -> int:
    from server.cli_db import existing_session
    from server.services import dispositions
    from server.services.actor import Actor

    with existing_session(args, settings_from_args(args)) as s:
        required = dispositions.set_disposition_required(s, Actor.cli(), args.value == "on")
    print(json.dumps({"disposition_required": required}))
    return 0
