"""The PC's device broker: ``tandem-recorder device-broker``, run as root (systemd socket
activation: tandem-device.socket → ``/run/tandem/device.sock``).

Hot-desking with AD logins means many OS accounts on one PC. A device credential kept in each
account's keyring made every account enrol the PC again (one device per account on the fleet
page, each using up the enrolment token; after the token expired a new agent's first login on
the PC could not enrol at all). The broker holds ONE credential for the PC, in a root-only file
(``/var/lib/tandem/device-credential``, 0600, written atomically), enrols the PC with the
machine config's ``enroll_token`` the first time a recorder needs it, and makes for any local
user's recorder the two calls that need the credential -- pair (with the ticket the server gave
that user's desktop login) and unpair -- and nothing else. The credential never leaves the
process.

Any local user may connect (socket mode 0666): a pairing needs a ticket the server issued to a
logged-in agent's desktop, so asking proves nothing by itself. The caller's uid (``SO_PEERCRED``)
names him in the log and on the fleet page (``os_user``: sent with the enrolment and with every
pairing).

The server URL and the enrolment token come from the PC's own configuration only
(``/etc/tandem/enroll-token`` (0600 root) and ``/etc/tandem/agent.toml``,
machine_config.load_machine_settings): a user's config file cannot
point the PC's credential at another server, nor enrol it with a token of its own.

Transports: ``Broker.answer`` is transport-independent (a request line and the peer's uid in, a
reply line out); the Unix socket here is the only transport. Windows would need a service on a
named pipe (the peer from the pipe client's token, as pairing_win32.py does): not built -- on
Windows the credential still sits in each user's keyring.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from recorder_service.device_broker_client import device_call
from recorder_service.device_broker_wire import (
    CREDENTIAL_FILE,
    DEFAULT_STATE_DIR,
    MAX_LINE,
    BrokerError,
    DeviceReply,
    StoredCredential,
    broker_socket_path,
    decode_credential,
    encode_credential,
    encode_reply,
    parse_request,
    user_name,
    write_private,
)
from recorder_service.errors import CredentialsError, RecorderError
from recorder_service.machine_config import (
    TOKEN_FILE_LINUX,
    AgentSettings,
    exposed_token_warning,
    load_machine_settings,
)
from recorder_service.pairing_ipc import peer_uid

log = logging.getLogger("recorder_service.device_broker")

READ_TIMEOUT = 10.0  # a client that connects and says nothing is dropped, others go on
Enrol = Callable[[str, str, str | None, str | None], str]  # server, token, hostname, os user → credential
Call = Callable[[str, str, str, str, str], DeviceReply]  # server, credential, op, ticket, OS user → reply


class Broker:
    """The broker's logic: which credential, enrol on first need, the call, who paired last."""

    def __init__(
        self,
        state_dir: Path,
        settings: Callable[[], AgentSettings] = load_machine_settings,
        enrol: Enrol | None = None,
        call: Call = device_call,
    ) -> None:
        self.path = state_dir / CREDENTIAL_FILE
        self._settings = settings
        self._enrol = enrol or _enrol_device
        self._call = call
        self._enrolling = asyncio.Lock()  # two first logins at once enrol the PC once
        # The uid whose desktop login the device is paired with. Another user's late unpair (his
        # session ended after the next agent paired on this PC) must not end the new binding.
        self.paired_uid: int | None = None

    def stored(self) -> StoredCredential | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BrokerError(f"cannot read {self.path}: {exc}") from exc
        return decode_credential(data, str(self.path))

    async def credential(self, os_user: str) -> StoredCredential:
        settings = self._settings()
        server = settings.values.get("server_url", "")
        if not server:
            raise BrokerError("this PC has no server_url in its machine config (/etc/tandem/agent.toml)")
        async with self._enrolling:
            stored = self.stored()
            if stored is not None and stored.server_url == server:
                return stored
            token = settings.enroll_token or ""
            if warning := exposed_token_warning(settings):
                log.warning("%s", warning)
            if not token.startswith("tet_"):
                raise BrokerError(
                    f"this PC is not enrolled with {server} and has no device enrolment token "
                    f"(tet_... in {TOKEN_FILE_LINUX}, or enroll_token in its machine config): ask IT"
                )
            log.info("enrolling this PC with %s (first need: %s)", server, os_user)
            try:
                credential = await asyncio.to_thread(self._enrol, server, token, None, os_user)
            except CredentialsError as exc:
                raise BrokerError(str(exc)) from exc
            stored = StoredCredential(server, credential)
            try:
                write_private(self.path, encode_credential(stored))
            except OSError as exc:  # enrolled but not kept: IT sees a device that never pairs
                raise BrokerError(f"enrolled, but cannot keep the credential in {self.path}: {exc}") from exc
            log.info("enrolled: the device credential is in %s", self.path)
            return stored

    async def answer(self, line: bytes, uid: int | None) -> bytes:
        """One request line from the peer ``uid`` → the reply line (never raises BrokerError)."""
        name = user_name(uid)
        if uid is None or name is None:
            return encode_reply(None, error="the broker could not tell which user is asking")
        try:
            request = parse_request(line.rstrip(b"\n"))
            if request.op == "unpair" and self.paired_uid not in (None, uid):
                log.info("unpair from %s ignored: the device is paired with another user's login", name)
                return encode_reply(DeviceReply(204, {}))
            stored = await self.credential(name)
            reply = await asyncio.to_thread(
                self._call, stored.server_url, stored.credential, request.op, request.ticket, name
            )
        except (BrokerError, CredentialsError) as exc:
            log.warning("refused for %s (uid %d): %s", name, uid, exc)
            return encode_reply(None, error=str(exc))
        if reply.status in (200, 204):
            self.paired_uid = uid if request.op == "pair" else None
            log.info("%s for %s (uid %d): done", request.op, name, uid)
        else:
            log.warning(
                "%s for %s (uid %d): the server refused (%d): %s",
                request.op,
                name,
                uid,
                reply.status,
                reply.message(),
            )
        return encode_reply(reply, stored.server_url)


def _enrol_device(server: str, token: str, hostname: str | None, os_user: str | None) -> str:
    from recorder_service.device_session import enrol_device

    return enrol_device(server, token, hostname, os_user)


class UnixTransport:
    """The broker on a Unix socket: its own (mode 0666) or the one systemd hands over."""

    def __init__(self, broker: Broker, path: Path) -> None:
        self.broker = broker
        self.path = path
        self._server: asyncio.AbstractServer | None = None
        self._clients = 0
        self._inherited = False
        self._last = time.monotonic()

    @property
    def listening(self) -> bool:
        return self._server is not None

    def idle_for(self) -> float:
        return 0.0 if self._clients else time.monotonic() - self._last

    async def start(self, inherited: socket.socket | None = None) -> None:
        self._inherited = inherited is not None
        if inherited is not None:
            self._server = await asyncio.start_unix_server(self._serve, sock=inherited, limit=MAX_LINE)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # a stale socket of an earlier run
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path), limit=MAX_LINE)
            os.chmod(self.path, 0o666)  # any local user may ask: see the module's docstring
        log.info("device broker on %s", self.path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if not self._inherited:  # our own socket: gone with us (systemd's stays for the next start)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients += 1
        try:
            sock = writer.get_extra_info("socket")
            uid = peer_uid(sock) if sock is not None else None
            try:
                line = await asyncio.wait_for(reader.readline(), timeout=READ_TIMEOUT)
            except TimeoutError:
                return
            except (ValueError, asyncio.LimitOverrunError):  # longer than MAX_LINE
                writer.write(encode_reply(None, error=f"request longer than {MAX_LINE} bytes"))
                await writer.drain()
                return
            writer.write(await self.broker.answer(line, uid))
            await writer.drain()
        except ConnectionError:
            pass  # the client went away; nothing to tell it
        finally:
            self._clients -= 1
            self._last = time.monotonic()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def systemd_socket(env: dict[str, str] | None = None) -> socket.socket | None:
    """The listening socket systemd passed (sd_listen_fds: fd 3), or None when started by hand."""
    env = dict(os.environ) if env is None else env
    if env.get("LISTEN_PID") != str(os.getpid()) or int(env.get("LISTEN_FDS", "0") or 0) < 1:
        return None
    return socket.socket(fileno=3)


async def serve(
    transport: UnixTransport, stop: asyncio.Event, idle_exit: float | None = None, inherit: bool = True
) -> None:
    """Serve until ``stop``, or until ``idle_exit`` seconds pass with no client: socket-activated,
    systemd starts it again on the next connection -- then from the version /opt/tandem/current
    points at now, so an update never leaves an old broker running on removed files."""
    await transport.start(systemd_socket() if inherit else None)
    try:
        while not stop.is_set():
            check = 30.0 if idle_exit is None else max(0.05, min(30.0, idle_exit / 4))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=check)
            if idle_exit is not None and transport.idle_for() >= idle_exit:
                log.info("no client for %.0f s: exiting (the socket starts it again)", idle_exit)
                return
    finally:
        await transport.close()


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=(args.log_level or "INFO").upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if os.geteuid() != 0:
        log.warning("not running as root: other users' recorders may read what this user can")
    state_dir = Path(args.state_dir) if args.state_dir else DEFAULT_STATE_DIR
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        state_dir.chmod(0o755)
    except OSError as exc:
        print(f"tandem-recorder device-broker: {state_dir}: {exc}", file=sys.stderr)
        return 2
    path = Path(args.socket) if args.socket else broker_socket_path()

    async def run() -> None:
        import signal

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        idle = float(args.idle_exit) if args.idle_exit else None
        await serve(UnixTransport(Broker(state_dir), path), stop, idle)

    try:
        asyncio.run(run())
    except RecorderError as exc:
        print(f"tandem-recorder device-broker: {exc}", file=sys.stderr)
        return 2
    return 0
