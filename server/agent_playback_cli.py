"""``tandem-server agent-playback show|set``: which teams' agents may play their own recordings.
The same use case as ``PUT /api/admin/agent-playback`` and the admin page
(``server.services.agent_playback``), audited as user "cli" with the OS account that ran it."""

from __future__ import annotations

import argparse
import json

from server.cli_settings import settings_from_args


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "agent-playback",
        help="show or set which teams' agents may play their own recordings",
        description="Agents always see their own calls listed; they play them only where their team "
        "is named here.",
    )
    actions = p.add_subparsers(dest="playback_action", required=True)
    actions.add_parser("show", help="print the teams as JSON").set_defaults(func=cmd_show)
    s = actions.add_parser("set", help="set the teams (by name; none given: no agent plays)")
    s.add_argument("teams", nargs="*", metavar="TEAM")
    s.set_defaults(func=cmd_set)


def cmd_show(args: argparse.Namespace) -> int:
    from server.cli_db import existing_session
    from server.services import agent_playback

    with existing_session(args, settings_from_args(args)) as s:
        print(json.dumps({"teams": agent_playback.team_names(s)}))
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    from server.cli_db import existing_session
    from server.services import agent_playback
    from server.services.actor import Actor

    with existing_session(args, settings_from_args(args)) as s:
        teams = agent_playback.set_teams(s, Actor.cli(), list(args.teams))
    print(json.dumps({"teams": teams}))
    return 0
