"""``tandem-server set-sampling | acw-limit | pause-policy``: the admin's call policies from the
command line (screen sampling, the after-call-work limit, who may pause, how long, and whether a
pause needs a reason). The same use cases as the admin page and API (``server.services``),
validated and audited as user "cli"."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from server.cli_db import existing_session
from server.cli_settings import settings_from_args

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("set-sampling", help="set the share of calls that get a screen recording")
    p.add_argument("--percentage", type=float)
    p.add_argument("--team", help="set this team's override (by team name) instead of the global share")
    p.add_argument("--clear", action="store_true", help="with --team: remove the team's override")
    p.set_defaults(func=cmd_set_sampling)
    p = sub.add_parser("acw-limit", help="show or set how long after-call work may last")
    p.add_argument("--seconds", type=float, help="the new limit (5 s to 4 h); without it, show it")
    p.set_defaults(func=cmd_acw_limit)
    p = sub.add_parser(
        "pause-policy", help="show or set the teams whose agents may not pause, and the pause reason rule"
    )
    p.add_argument("action", choices=["show", "set", "reason"])
    p.add_argument("teams", nargs="*", default=[], help="with set: team names (none: every team may pause)")
    p.add_argument("--max-seconds", type=float, help="with set: the maximum pause length (5-3600 s)")
    p.add_argument("--no-max", action="store_true", help="with set: no maximum pause length")
    p.add_argument(
        "--required", choices=["on", "off"], help="with reason: whether agents must give a pause reason"
    )
    p.add_argument(
        "--team",
        action="append",
        default=[],
        type=_team_rule,
        help="with reason: a team's own rule, NAME=on|off (repeatable)",
    )
    p.add_argument("--clear-teams", action="store_true", help="with reason: drop every team's own rule")
    p.set_defaults(func=cmd_pause_policy)


def cmd_set_sampling(args: argparse.Namespace) -> int:
    from server.services import sampling
    from server.services.actor import Actor

    if args.clear == (args.percentage is not None) or (args.clear and args.team is None):
        print("error: give --percentage, or --team NAME --clear to remove a team's override", file=sys.stderr)
        return 2
    settings = settings_from_args(args)
    with existing_session(args, settings) as s:
        if args.team is None:
            sampling.set_percentage(s, Actor.cli(), args.percentage, settings.screen_percentage)
        else:
            pct = None if args.clear else args.percentage
            sampling.set_team_percentage(s, Actor.cli(), args.team, pct, settings.screen_percentage)
    who = "screen sampling" if args.team is None else f"team {args.team}'s screen sampling"
    what = "cleared (the global percentage applies)" if args.clear else f"set to {args.percentage:g} %"
    print(f"{who} {what} in {settings.resolved_database_url}")
    return 0


def cmd_acw_limit(args: argparse.Namespace) -> int:
    from server.services import acw_policy
    from server.services.actor import Actor

    settings = settings_from_args(args)
    with existing_session(args, settings) as s:
        if args.seconds is None:
            print(f"ACW limit: {acw_policy.read(s, settings.acw_limit_seconds):g} s")
            return 0
        acw_policy.set_limit(s, Actor.cli(), args.seconds, settings.acw_limit_seconds)
    print(f"ACW limit set to {args.seconds:g} s (from the next call that ends)")
    return 0


def cmd_pause_policy(args: argparse.Namespace) -> int:
    from server.services import pause_policy, pause_reasons
    from server.services.actor import Actor

    settings = settings_from_args(args)
    with existing_session(args, settings) as s:
        if args.action == "set":
            pause_policy.set_denied(s, Actor.cli(), args.teams)
            if args.max_seconds is not None or args.no_max:
                pause_policy.set_max(s, Actor.cli(), None if args.no_max else args.max_seconds)
        elif args.action == "reason":
            _set_pause_reason_rule(s, args)
        teams = pause_policy.denied_team_names(s)
        limit = pause_policy.max_seconds(s)
        rule = pause_reasons.rule(s)
    print("no pause for: " + (", ".join(teams) if teams else "nobody (every team may pause)"))
    print(
        "maximum pause length: " + ("none" if limit is None else f"{limit:g} s, then resumed by the server")
    )
    exceptions = ", ".join(f"{t}: {'yes' if v else 'no'}" for t, v in rule.teams.items())
    print(
        f"pause reason required: {'yes' if rule.default else 'no'}"
        + (f" ({exceptions})" if exceptions else "")
    )
    return 0


def _team_rule(text: str) -> tuple[str, bool]:
    """``NAME=on|off`` (argparse refuses anything else before the database is touched)."""
    name, _, value = text.rpartition("=")
    if not name.strip() or value not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"wants NAME=on or NAME=off, got {text!r}")
    return name.strip(), value == "on"


def _set_pause_reason_rule(s: Session, args: argparse.Namespace) -> None:
    """``pause-policy reason [--required on|off] [--team NAME=on|off ...] [--clear-teams]``."""
    from server.services import pause_reasons
    from server.services.actor import Actor

    now = pause_reasons.rule(s)
    teams = {} if args.clear_teams else dict(now.teams)
    teams.update(dict(args.team))
    default = now.default if args.required is None else args.required == "on"
    pause_reasons.set_rule(s, Actor.cli(), default, teams)
