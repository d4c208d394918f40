"""``tandem-server dn-matching``: show the DN matching policy; with options, change it. The same
use case as ``PUT /api/admin/dn-matching`` and the admin page (``server.services.dn_matching``),
audited as user "cli" with the OS account that ran it."""

from __future__ import annotations

import argparse
import json

from server.cli_settings import settings_from_args


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dn-matching",
        help="show how call numbers are matched to DNs; with options, change it",
        description="Numbers a call names are matched to agents' DNs exactly first; this rule adds "
        "matches: strip a prefix from both sides, compare only the last N digits.",
    )
    p.add_argument(
        "--strip-prefixes",
        help='comma-separated prefixes stripped before comparing, e.g. "+1,1,9" ("" for none)',
    )
    p.add_argument("--last-digits", type=int, help="compare only the last N digits (0: the whole number)")
    p.add_argument(
        "--record-unassigned",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="record a call naming no known party as an unassigned interaction (else refuse it)",
    )
    p.set_defaults(func=cmd_dn_matching)


def cmd_dn_matching(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from server.cli_db import existing_session
    from server.services import dn_matching
    from server.services.actor import Actor

    settings = settings_from_args(args)
    with existing_session(args, settings) as s:
        policy = dn_matching.read(s)
        if (
            args.strip_prefixes is not None
            or args.last_digits is not None
            or args.record_unassigned is not None
        ):
            prefixes = (
                [p for p in args.strip_prefixes.split(",") if p.strip()]
                if args.strip_prefixes is not None
                else policy.strip_prefixes
            )
            policy = dn_matching.set_policy(
                s,
                Actor.cli(),
                prefixes,
                args.last_digits if args.last_digits is not None else policy.last_digits,
                args.record_unassigned if args.record_unassigned is not None else policy.record_unassigned,
            )
    print(json.dumps(asdict(policy)))
    return 0
