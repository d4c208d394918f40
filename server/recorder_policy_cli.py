"""``tandem-server recorder-policy show|set``: the admin's recorder policy from the server's shell.
The same use case as ``PUT /api/admin/recorder-policy`` and the admin page
(``server.services.recorder_policy``), audited as user "cli" with the OS account that ran it. A
running server picks the change up within a few seconds and pushes it to connected recorders."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from server.cli_settings import settings_from_args
from server.errors import InvalidInput


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "recorder-policy",
        help="show or change what every agent PC's screen recorder does",
        description="The recorder policy: frame rate, segment length, monitors, downscale, masking "
        "rules, upload window and bandwidth cap, endpoint audio, spool thresholds, heartbeat.",
    )
    actions = p.add_subparsers(dest="policy_action", required=True)
    actions.add_parser("show", help="print the policy in force as JSON").set_defaults(func=cmd_show)
    s = actions.add_parser(
        "set",
        help="change it: a whole policy from a JSON file, and/or single fields",
        description="With --json the file is the whole policy (fields left out take their defaults); "
        "each --set key=value then changes one field (the value read as JSON, else as text).",
    )
    s.add_argument("--json", metavar="FILE", help="a JSON file holding the whole policy ('-' for stdin)")
    s.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help='e.g. --set fps=2 --set monitors=primary --set upload_window=["18:00","07:00"]',
    )
    s.set_defaults(func=cmd_set)


def cmd_show(args: argparse.Namespace) -> int:
    from server.cli_db import existing_session
    from server.services import recorder_policy
    from server.services.actor import Actor

    settings = settings_from_args(args)
    defaults = recorder_policy.initial(settings.screen_fps)
    with existing_session(args, settings) as s:
        policy = recorder_policy.read(s, Actor.cli(), defaults)
    print(json.dumps(policy.to_dict(), indent=2))
    return 0


def _read_json(name: str) -> Any:
    import sys

    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput("invalid_recorder_policy", f"{name}: {exc.strerror or exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput("invalid_recorder_policy", f"{name}: not JSON ({exc})") from exc


def cmd_set(args: argparse.Namespace) -> int:
    from server.cli_db import existing_session
    from server.services import recorder_policy
    from server.services.actor import Actor

    if args.json is None and not args.set:
        raise InvalidInput(
            "invalid_recorder_policy", "nothing to set: give --json FILE and/or --set key=value"
        )
    settings = settings_from_args(args)
    defaults = recorder_policy.initial(settings.screen_fps)
    with existing_session(args, settings) as s:
        actor = Actor.cli()
        if args.json is not None:
            base = _read_json(args.json)
            if not isinstance(base, dict):
                raise InvalidInput(
                    "invalid_recorder_policy", f"{args.json}: the policy must be a JSON object"
                )
        else:
            base = recorder_policy.read(s, actor, defaults).to_dict()
        policy = recorder_policy.set_policy(s, actor, recorder_policy.assignments(base, args.set), defaults)
    print(json.dumps(policy.to_dict(), indent=2))
    return 0
