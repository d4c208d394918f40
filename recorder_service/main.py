"""``tandem-recorder``: enrol, run the screen recorder service, log out.

    tandem-recorder login --server URL (--enroll-code CODE | --enroll-code-stdin)
    tandem-recorder run [--server URL] [--fps N] [--spool DIR] [--monitor N]
    tandem-recorder logout [--server URL]
    tandem-recorder update-check          (as root, from tandem-update.timer: see updater/system.py)
    tandem-recorder self-test [--server URL]
    tandem-recorder install-package VERSION  (as root, from the package's postinst: updater/package.py)
    tandem-recorder device-broker         (as root, from tandem-device.socket: see device_broker.py)

``login`` exchanges a one-time enrolment code from IT (``tandem-server enroll-recorder --username
AGENT``, or the admin API) for this PC's recorder token: a password never yields one, so an agent
cannot act as his own recorder.

Common options: ``--keyring-file PATH`` (plaintext token file, see credentials.py) and
``--log-level``. Each has a ``TANDEM_RECORDER_*`` environment variable.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import re
import sys
from collections.abc import Sequence

import httpx

from recorder_service import host_identity, problem_report
from recorder_service.config import RecorderConfig, load_config
from recorder_service.credentials import TokenStore
from recorder_service.errors import (
    CredentialsError,
    EnrolmentRefusedError,
    RecorderError,
    ServerUnreachableError,
)
from recorder_service.machine_config import AgentSettings, load_agent_settings
from recorder_service.spool import Spool
from recorder_service.updater.in_recorder import SelfUpdate
from recorder_service.updater.policy import UpdatePolicyError
from tandem_protocol.payloads import RecorderEnrollRequest

log = logging.getLogger("recorder_service")

_TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=30.0, pool=10.0)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", help="server URL, e.g. https://tandem.example (TANDEM_RECORDER_SERVER)")
    common.add_argument("--keyring-file", help="store the token in this PLAINTEXT file (no desktop keyring)")
    common.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    parser = argparse.ArgumentParser(prog="tandem-recorder", description="Tandem screen recorder service")
    sub = parser.add_subparsers(dest="command", required=True)
    login = sub.add_parser(
        "login",
        parents=[common],
        help="enrol with a one-time code from IT and store the token in the keyring",
    )
    code = login.add_mutually_exclusive_group()
    code.add_argument("--enroll-code", help="the one-time enrolment code (tandem-server enroll-recorder)")
    code.add_argument("--enroll-code-stdin", action="store_true", help="read the enrolment code from stdin")
    run = sub.add_parser("run", parents=[common], help="run the recorder service")
    run.add_argument("--fps", help="frames per second (default 5; screen.start may override)")
    run.add_argument("--spool", help="spool directory for captures awaiting upload")
    run.add_argument("--monitor", help="0 = all monitors (default), 1 = primary, n = n-th")
    sub.add_parser("logout", parents=[common], help="revoke and forget the token")
    sub.add_parser(
        "update-check",
        parents=[common],
        help="install a newer signed release if one is offered and every recorder is idle (run as root)",
    )
    sub.add_parser(
        "self-test",
        parents=[common],
        help="check this version can run here: modules, capture backend, server (the updater runs it)",
    )
    package = sub.add_parser(
        "install-package",
        help="stage the package's VERSION under versions/ and switch to it now or when idle (postinst)",
    )
    package.add_argument("version", help="the package version dpkg configures")
    package.add_argument("--root", help="the install root (default /opt/tandem)")
    broker = sub.add_parser(
        "device-broker",
        help="hold this PC's device credential for every user's recorder (root; tandem-device.socket)",
    )
    broker.add_argument("--socket", help="listen here when not socket-activated (/run/tandem/device.sock)")
    broker.add_argument("--state-dir", help="where the device credential is kept (/var/lib/tandem)")
    broker.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    broker.add_argument("--idle-exit", help="exit after N seconds without a client (socket activation)")
    return parser


def _config(args: argparse.Namespace, settings: AgentSettings) -> RecorderConfig:
    # The config files (/etc/tandem/agent.toml, the user's) sit under flags and the environment.
    return load_config(
        env={**settings.as_env(), **os.environ},
        server=args.server,
        spool=getattr(args, "spool", None),
        fps=getattr(args, "fps", None),
        monitor=getattr(args, "monitor", None),
        keyring_file=args.keyring_file,
        log_level=args.log_level,
    )


def _server(config: RecorderConfig, store: TokenStore) -> str:
    server = config.server_url or store.default_server()
    if not server:
        raise CredentialsError("no server given and no earlier login: pass --server URL")
    return server


def cmd_login(args: argparse.Namespace, config: RecorderConfig) -> int:
    if not config.server_url:
        raise CredentialsError("login needs --server URL (or TANDEM_RECORDER_SERVER)")
    store = TokenStore(config.keyring_file)
    if args.enroll_code is not None:
        code = args.enroll_code
    elif args.enroll_code_stdin:
        code = sys.stdin.readline()
    else:
        code = getpass.getpass("Enrolment code: ")
    code = code.strip()
    if not code:
        raise CredentialsError("no enrolment code given: ask IT for one (tandem-server enroll-recorder)")
    who = _enroll(config.server_url, code, store)
    print(f"Enrolled: this recorder uploads to {config.server_url} for {who}")
    return 0


def _enroll(server_url: str, code: str, store: TokenStore) -> str:
    """Exchange the enrolment code for this PC's recorder token and store it; returns who it is for."""
    body = RecorderEnrollRequest(
        code=code, hostname=host_identity.hostname(), os_user=host_identity.os_user()
    )
    try:
        with httpx.Client(timeout=_TIMEOUT) as client:
            response = client.post(f"{server_url}/api/recorders/enroll", json=body.__dict__)
    except httpx.HTTPError as exc:
        raise ServerUnreachableError(f"cannot reach {server_url}: {exc}") from exc
    if response.status_code != 200:
        raise EnrolmentRefusedError(f"enrolment refused (HTTP {response.status_code}): {_message(response)}")
    try:
        payload = response.json()
        token = str(payload["token"])
        user = payload["user"]
        who = f"{user.get('full_name') or user['username']} ({user['username']}, {user['role']})"
    except (ValueError, KeyError, TypeError) as exc:
        raise CredentialsError(f"unexpected login answer from the server: {exc}") from exc
    store.save(server_url, token)
    return who


def cmd_logout(config: RecorderConfig) -> int:
    store = TokenStore(config.keyring_file)
    server = _server(config, store)
    try:
        token: str | None = store.token(server)
    except CredentialsError:
        token = None
    if token:
        try:
            with httpx.Client(timeout=_TIMEOUT) as client:
                client.post(f"{server}/api/auth/logout", headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:  # forget it locally anyway; the server expires it later
            log.warning("could not revoke the token on the server: %s", exc)
    store.delete(server)
    print(f"Logged out of {server}")
    return 0


def cmd_run(config: RecorderConfig, settings: AgentSettings) -> int:
    from recorder_service.service import run_service

    try:
        store = TokenStore(config.keyring_file)
    except CredentialsError:
        if not (config.server_url and _broker_device(settings)):
            raise
        # No keyring in this session, and none needed: the PC's broker holds the device credential.
        return _run_device(None, config.server_url, settings, config)
    server = _server(config, store)
    if _device_mode(store, server, settings):  # a device of this PC, paired by its desktop
        return _run_device(store, server, settings, config)
    if settings.enroll_token and not _enrolled(store, server):
        # A PC installed with a preseeded token (the .deb's debconf answers, the MSI's ENROLLTOKEN)
        # enrols on its first start: nobody has to be at the keyboard.
        log.info("enrolling with %s (enrolment token from %s)", server, settings.sources["enroll_token"])
        log.info(
            "enrolled: this recorder uploads to %s for %s",
            server,
            _enroll(server, settings.enroll_token, store),
        )
    store.token(server)  # fail now, clearly, rather than in the reconnect loop
    problem_report.started()
    spool = Spool(config.spool_dir)
    log.info("recorder for %s, spool %s, %g fps, monitor %d", server, spool.root, config.fps, config.monitor)
    hook = _self_update()
    asyncio.run(
        run_service(
            server,
            lambda: store.token(server),
            spool,
            fps=config.fps,
            monitor=config.monitor,
            self_update=hook,
        )
    )
    return _after_service(hook)


def _self_update() -> SelfUpdate:
    from recorder_service.updater.activity_file import activity_dir
    from recorder_service.updater.in_recorder import running_version
    from recorder_service.updater.layout import install_root

    root, version = install_root(), running_version()
    if root is not None:
        log.info("recorder %s installed under %s: follows its updates", version, root)
    return SelfUpdate(root=root, version=version, directory=activity_dir())


def _after_service(hook: SelfUpdate) -> int:
    """Re-execute into the new version if the service stopped for it; else forget our record."""
    from recorder_service.updater.apply import current_version
    from recorder_service.updater.in_recorder import exec_program

    if hook.exec_program is not None and hook.root is not None:
        exec_program(hook.exec_program, sys.argv[1:], current_version(hook.root) or "")
    hook.forget()
    return 0


def _device_mode(store: TokenStore, server: str, settings: AgentSettings) -> bool:
    """An enrolment token (``tet_…``) makes the recorder a device of the PC; a one-time code from
    ``tandem-server enroll-recorder`` keeps the old per-agent token (and its tests) working."""
    from recorder_service.device_session import is_enrolment_token

    token = settings.enroll_token or ""
    if store.device_credential(server) is not None or is_enrolment_token(token):
        return True
    # The PC's device token in its root-only file (we cannot read it): a device of the PC, for
    # every user not already enrolled with a per-agent code of his own.
    return bool(settings.root_token_file) and not _enrolled(store, server)


def _broker_device(settings: AgentSettings) -> bool:
    """A device of this PC (``tet_…`` token) whose credential the PC's root broker holds."""
    from recorder_service.device_broker_wire import broker_socket_path
    from recorder_service.device_session import is_enrolment_token

    device = is_enrolment_token(settings.enroll_token or "") or bool(settings.root_token_file)
    return device and broker_socket_path().exists()


def _run_device(
    store: TokenStore | None, server: str, settings: AgentSettings, config: RecorderConfig
) -> int:
    from recorder_service.device_broker_client import device_credential_for
    from recorder_service.device_session import DeviceRunner
    from recorder_service.pairing_ipc import socket_path

    # The user's own stored credential, else the PC's root broker, else enrol into the keyring.
    device = device_credential_for(store, server, settings)
    problem_report.started()
    hook = _self_update()
    runner = DeviceRunner(device, config.spool_dir, fps=config.fps, monitor=config.monitor, self_update=hook)
    asyncio.run(runner.run(socket_path(), asyncio.Event()))
    return _after_service(hook)


def cmd_update_check() -> int:
    from recorder_service.updater.system import update_check

    result = update_check()
    print(f"update check: {result.state}: {result.reason}")
    return 1 if result.state in ("refused", "failed", "rolled_back") else 0


def cmd_install_package(args: argparse.Namespace) -> int:
    from recorder_service.updater.package import run_install

    return run_install(args.version, args.root)


def cmd_self_test(config: RecorderConfig) -> int:
    from recorder_service.updater.self_test import self_test

    ok, lines = self_test(config.server_url)
    for line in lines:
        print(line)
    return 0 if ok else 1


def _enrolled(store: TokenStore, server: str) -> bool:
    try:
        store.token(server)
    except CredentialsError:
        return False
    return True


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("message") or body.get("error") or body)
    except ValueError:
        return response.text[:200]


class _RedactBearer(logging.Filter):
    """Last line of defence for "never log the token": masks any ``Bearer <token>``."""

    _PATTERN = re.compile(r"(Bearer\s+)\S+", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "earer" in message:
            record.msg, record.args = self._PATTERN.sub(r"\1[redacted]", message), None
        return True


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_RedactBearer())
    logging.basicConfig(level=level, handlers=[handler])
    # Their DEBUG output dumps HTTP headers, Authorization included.
    for noisy in ("websockets", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(level)))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "install-package":  # root, from postinst: no user's config, no server
        return cmd_install_package(args)
    if args.command == "device-broker":  # root: the PC's own config only, never a user's
        from recorder_service.device_broker import main as broker_main

        return broker_main(args)
    try:
        settings = load_agent_settings()
        config = _config(args, settings)
        _setup_logging(config.log_level)
        if args.command == "login":
            return cmd_login(args, config)
        if args.command == "logout":
            return cmd_logout(config)
        if args.command == "update-check":
            return cmd_update_check()
        if args.command == "self-test":
            return cmd_self_test(config)
        return cmd_run(config, settings)
    except (RecorderError, UpdatePolicyError) as exc:
        if args.command == "run":  # for the agent's desktop to report: the fleet page never saw it
            problem_report.record_failure(exc)
        print(f"tandem-recorder: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if args.command == "run":
            problem_report.record_failure(exc)
        raise


if __name__ == "__main__":
    sys.exit(main())
