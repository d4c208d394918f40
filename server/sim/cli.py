"""``tandem-server simulate-call``: place one simulated call against a running server."""

from __future__ import annotations

import argparse
import asyncio
import sys

from server.errors import SimulatedCallError
from server.sim.call import simulate_call


def _hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dn", required=True, help="the agent DN to call (Request-URI user part)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the call's audio")
    parser.add_argument(
        "--server",
        type=_hostport,
        default=("127.0.0.1", 5060),
        help="the recorder's SIP address, HOST:PORT (default 127.0.0.1:5060)",
    )
    parser.add_argument("--codec", choices=("PCMU", "PCMA"), default="PCMU")
    parser.add_argument("--caller", default="+15550100", help="From user part")
    parser.add_argument("--local-host", default="127.0.0.1", help="local address for SIP and RTP")


def run(args: argparse.Namespace) -> int:
    if args.seconds <= 0:
        print("simulate-call: --seconds must be positive", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(
            simulate_call(
                args.server,
                args.dn,
                args.seconds,
                codec=args.codec,
                caller=args.caller,
                local_host=args.local_host,
            )
        )
    except SimulatedCallError as exc:
        print(f"simulate-call: failed: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"simulate-call: network error: {exc}", file=sys.stderr)
        return 1
    print(
        f"call {result.call_id} to DN {args.dn}: {result.codec}, "
        f"{result.ended_at - result.answered_at:.2f} s, {result.packets_sent} RTP packets, "
        f"ended by {result.ended_by}"
    )
    return 0
