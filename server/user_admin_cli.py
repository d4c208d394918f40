"""``tandem-server user-list | user-update | team-list | team-create | team-rename``: the admin's
people page on the host. The same use cases as ``/api/admin/users`` and ``/api/admin/teams``
(``server.services.user_admin``, ``server.services.teams``): the same refusals with the same
sentences, audited as user "cli" with the OS account that ran it."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from server.cli_settings import settings_from_args


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("user-list", help="list users as JSON (filters: role, team, text, active)")
    p.add_argument("--role")
    p.add_argument("--team", help="team name (any case)")
    p.add_argument("--text", help="part of the username or full name")
    p.add_argument(
        "--active", action=argparse.BooleanOptionalAction, default=None, help="only (in)active users"
    )
    p.set_defaults(func=cmd_user_list)
    p = sub.add_parser(
        "user-update",
        help="change a user's role, team, supervised teams, full name, active flag or full-time DN",
        description="Only the options given change. Teams must exist (team-create makes one).",
    )
    p.add_argument("username")
    p.add_argument("--full-name")
    p.add_argument("--role")
    p.add_argument("--team", help='an existing team; "" for no team')
    p.add_argument(
        "--supervises", action="append", help="a team he supervises (repeatable; replaces the list)"
    )
    p.add_argument("--no-supervises", action="store_true", help="supervises no team")
    p.add_argument(
        "--active", action=argparse.BooleanOptionalAction, default=None, help="--no-active deactivates"
    )
    p.add_argument("--full-time-dn", help='agents only; "" clears it')
    p.set_defaults(func=cmd_user_update)
    sub.add_parser("team-list", help="list teams as JSON").set_defaults(func=cmd_team_list)
    p = sub.add_parser("team-create", help="create a team (names are unique regardless of case)")
    p.add_argument("name")
    p.set_defaults(func=cmd_team_create)
    p = sub.add_parser("team-rename", help="rename a team (its settings and members stay)")
    p.add_argument("old")
    p.add_argument("new")
    p.set_defaults(func=cmd_team_rename)


def cmd_user_list(args: argparse.Namespace) -> int:
    from server.cli_db import existing_session
    from server.services import user_admin

    with existing_session(args, settings_from_args(args)) as s:
        rows = user_admin.list_users(s, role=args.role, team=args.team, text=args.text, active=args.active)
        print(json.dumps([asdict(u) for u in rows]))
    return 0


def cmd_user_update(args: argparse.Namespace) -> int:
    from server.cli_db import existing_session
    from server.services import user_admin
    from server.services.actor import Actor

    supervises = [] if args.no_supervises else args.supervises
    changes = user_admin.UserChanges(
        full_name=args.full_name,
        role=args.role,
        team=args.team,
        supervises=supervises,
        active=args.active,
        full_time_dn=args.full_time_dn,
    )
    with existing_session(args, settings_from_args(args)) as s:
        user = user_admin.update_user(s, Actor.cli(), args.username, changes)
    print(json.dumps(asdict(user)))
    return 0


def cmd_team_list(args: argparse.Namespace) -> int:
    from server.cli_db import existing_session
    from server.services import teams

    with existing_session(args, settings_from_args(args)) as s:
        print(json.dumps([asdict(t) for t in teams.list_teams(s)]))
    return 0


def cmd_team_create(args: argparse.Namespace) -> int:
    from server.cli_db import existing_session
    from server.services import teams
    from server.services.actor import Actor

    with existing_session(args, settings_from_args(args)) as s:
        name = teams.create_team(s, Actor.cli(), args.name).name
    print(f"created team {name}")
    return 0


def cmd_team_rename(args: argparse.Namespace) -> int:
    from server.cli_db import existing_session
    from server.services import teams
    from server.services.actor import Actor

    with existing_session(args, settings_from_args(args)) as s:
        name = teams.rename_team(s, Actor.cli(), args.old, args.new).name
    print(f"renamed team {args.old} to {name}")
    return 0
