"""The PC's device broker (recorder_service/device_broker*.py) without a server: the wire format
and its limits, which credential a user's recorder uses, the peer's uid (SO_PEERCRED on a real
Unix socket) → his user name, the atomic 0600 credential file, enrolling once for concurrent
first requests, another user's late unpair, and a silent client not stalling the others."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from recorder_service import device_broker_wire as wire
from recorder_service.credentials import TokenStore
from recorder_service.device_broker import Broker, UnixTransport
from recorder_service.device_broker_client import (
    BrokerDeviceCredential,
    LocalDeviceCredential,
    device_credential_for,
)
from recorder_service.device_broker_wire import BrokerError, BrokerRequest, DeviceReply
from recorder_service.errors import CredentialsError, EnrolmentRefusedError
from recorder_service.machine_config import AgentSettings

SERVER = "http://tandem.test"
TOKEN = "tet_abc"


def settings(server: str = SERVER, token: str = TOKEN) -> AgentSettings:
    return AgentSettings(
        {"server_url": server, "enroll_token": token},
        {"server_url": "/etc/tandem/agent.toml", "enroll_token": "/etc/tandem/agent.toml"},
    )


def test_requests_are_parsed_strictly_and_size_limited() -> None:
    assert wire.parse_request(b'{"op": "pair", "ticket": "tkt_1"}') == BrokerRequest("pair", "tkt_1")
    assert wire.parse_request(b'{"op": "unpair"}') == BrokerRequest("unpair", "")
    line = wire.encode_request(BrokerRequest("pair", "tkt_9"))
    assert line.endswith(b"\n") and wire.parse_request(line.rstrip()) == BrokerRequest("pair", "tkt_9")
    for bad, why in (
        (b'{"op": "enroll"}', "op must be one of pair, unpair"),
        (b'{"op": "pair"}', "pair needs the ticket"),
        (b'{"op": "pair", "ticket": 5}', "pair needs the ticket"),
        (b'{"op": "unpair", "path": "/api/admin/devices"}', "unknown fields ['path']"),
        (b"[1]", "not a JSON object"),
        (b"\xff", "not a JSON line"),
        (b'{"op": "pair", "ticket": "tkt_' + b"x" * 5000 + b'"}', "longer than 4096 bytes"),
    ):
        with pytest.raises(BrokerError, match=why.replace("[", r"\[").replace("]", r"\]")):
            wire.parse_request(bad)


def test_replies_carry_the_servers_answer_or_the_brokers_refusal() -> None:
    line = wire.encode_reply(DeviceReply(401, {"message": "revoked by IT"}), SERVER)
    reply, server = wire.parse_reply(line)
    assert (reply.status, reply.message(), server) == (401, "revoked by IT", SERVER)
    with pytest.raises(BrokerError, match="no device enrolment token"):
        wire.parse_reply(wire.encode_reply(None, error="no device enrolment token"))
    with pytest.raises(BrokerError, match="without answering"):
        wire.parse_reply(b"")
    with pytest.raises(BrokerError, match="no status and body"):
        wire.parse_reply(b'{"status": "200"}\n')


def test_which_credential_a_users_recorder_uses() -> None:
    assert wire.credential_source(has_local=True, broker_socket=True) == "local"
    assert wire.credential_source(has_local=True, broker_socket=False) == "local"
    assert wire.credential_source(has_local=False, broker_socket=True) == "broker"
    assert wire.credential_source(has_local=False, broker_socket=False) == "enrol"
    assert wire.broker_socket_path({}) == Path("/run/tandem/device.sock")
    assert wire.broker_socket_path({wire.SOCKET_ENV: "/tmp/b.sock"}) == Path("/tmp/b.sock")


def test_device_credential_for_follows_the_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = TokenStore(tmp_path / "kr.cfg")
    sock = tmp_path / "device.sock"
    enrolled: list[str] = []

    def fake_enrol(server: str, token: str, hostname: str | None = None, os_user: str | None = None) -> str:
        enrolled.append(token)
        return "tdc_local"

    monkeypatch.setattr("recorder_service.device_session.enrol_device", fake_enrol)
    sock.touch()  # a broker listens: the user with no credential of his own uses it
    got = device_credential_for(store, SERVER, settings(), sock)
    assert isinstance(got, BrokerDeviceCredential) and got.path == sock and not enrolled
    assert store.device_credential(SERVER) is None  # nothing of the PC's lands in the user's keyring
    sock.unlink()  # no broker: the recorder enrols itself into the keyring, as before the broker
    got = device_credential_for(store, SERVER, settings(), sock)
    assert isinstance(got, LocalDeviceCredential) and enrolled == [TOKEN]
    assert store.device_credential(SERVER) == "tdc_local"
    sock.touch()  # a credential of his own stays in use even with a broker
    assert isinstance(device_credential_for(store, SERVER, settings(), sock), LocalDeviceCredential)
    with pytest.raises(CredentialsError, match="no keyring"):
        device_credential_for(None, SERVER, settings(), tmp_path / "none.sock")


def test_user_names_from_uids() -> None:
    assert wire.user_name(0) == "root"
    assert wire.user_name(None) is None and wire.user_name(-1) is None

    def missing(uid: int) -> str:
        raise KeyError(uid)

    assert wire.user_name(4242, missing) == "uid 4242"


def test_the_credential_file_is_written_atomically_and_0600(tmp_path: Path) -> None:
    path = tmp_path / wire.CREDENTIAL_FILE
    old = os.umask(0)  # the mode must not depend on the umask
    try:
        wire.write_private(path, wire.encode_credential(wire.StoredCredential(SERVER, "tdc_1")))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        inode = path.stat().st_ino
        wire.write_private(path, wire.encode_credential(wire.StoredCredential(SERVER, "tdc_2")))
    finally:
        os.umask(old)
    assert path.stat().st_ino != inode  # a new file renamed over the old one, not rewritten in place
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert wire.decode_credential(path.read_bytes(), "f") == wire.StoredCredential(SERVER, "tdc_2")
    assert sorted(p.name for p in tmp_path.iterdir()) == [wire.CREDENTIAL_FILE]  # no temp left
    with pytest.raises(BrokerError, match=r"damaged.*remove it"):
        wire.decode_credential(b"{", "f")


class FakeServer:
    """The two device calls and the enrolment, as the broker sees them."""

    def __init__(self) -> None:
        self.enrolments: list[tuple[str, str | None]] = []
        self.calls: list[tuple[str, str, str, str]] = []
        self.gate = threading.Event()
        self.gate.set()

    def enrol(self, server: str, token: str, hostname: str | None, os_user: str | None) -> str:
        self.gate.wait(10)
        self.enrolments.append((token, os_user))
        if token == "tet_expired":
            raise EnrolmentRefusedError(
                "device enrolment refused (HTTP 401): this enrolment token has expired"
            )
        return f"tdc_{len(self.enrolments)}"

    def call(self, server: str, credential: str, op: str, ticket: str, os_user: str) -> DeviceReply:
        self.calls.append((credential, op, ticket, os_user))
        if op == "pair":
            return DeviceReply(200, {"agent_username": "alice", "token": "trt_x"})
        return DeviceReply(204, {})


def test_concurrent_first_requests_enrol_the_pc_once(tmp_path: Path) -> None:
    fake = FakeServer()
    broker = Broker(tmp_path, lambda: settings(), fake.enrol, fake.call)

    async def scenario() -> list[bytes]:
        fake.gate.clear()
        first = asyncio.gather(
            broker.answer(b'{"op": "pair", "ticket": "tkt_a"}\n', 0),
            broker.answer(b'{"op": "pair", "ticket": "tkt_b"}\n', 0),
        )
        await asyncio.sleep(0)
        fake.gate.set()
        return list(await first)

    replies = asyncio.run(scenario())
    assert [wire.parse_reply(r)[0].status for r in replies] == [200, 200]
    assert fake.enrolments == [(TOKEN, "root")]
    assert [c[0] for c in fake.calls] == ["tdc_1", "tdc_1"]
    assert {c[3] for c in fake.calls} == {"root"}  # the pairing names the caller's OS account
    assert stat.S_IMODE((tmp_path / wire.CREDENTIAL_FILE).stat().st_mode) == 0o600
    # IT points the PC at another server: the next request enrols there.
    moved = Broker(tmp_path, lambda: settings("http://other.test"), fake.enrol, fake.call)
    asyncio.run(moved.answer(b'{"op": "unpair"}', 0))
    assert len(fake.enrolments) == 2 and fake.calls[-1] == ("tdc_2", "unpair", "", "root")


def test_refusals_are_replies_with_a_reason(tmp_path: Path) -> None:
    fake = FakeServer()

    def ask(token: str, line: bytes = b'{"op": "unpair"}', uid: int | None = 0) -> str:
        broker = Broker(tmp_path, lambda: settings(token=token), fake.enrol, fake.call)
        with pytest.raises(BrokerError) as caught:
            wire.parse_reply(asyncio.run(broker.answer(line, uid)))
        return str(caught.value)

    assert "token has expired" in ask("tet_expired")
    assert "no device enrolment token" in ask("")
    assert "no device enrolment token" in ask("one-time-code")  # a per-agent code enrols no PC
    assert "which user" in ask(TOKEN, uid=None)
    assert "op must be" in ask(TOKEN, b'{"op": "token"}')
    assert not (tmp_path / wire.CREDENTIAL_FILE).exists() and not fake.calls


def test_another_users_late_unpair_does_not_end_the_new_binding(tmp_path: Path) -> None:
    fake = FakeServer()
    broker = Broker(tmp_path, lambda: settings(), fake.enrol, fake.call)

    def ask(line: bytes, uid: int) -> int:
        return wire.parse_reply(asyncio.run(broker.answer(line, uid)))[0].status

    assert ask(b'{"op": "pair", "ticket": "tkt_a"}', 1001) == 200
    assert ask(b'{"op": "pair", "ticket": "tkt_b"}', 1002) == 200  # the next agent on the PC
    assert ask(b'{"op": "unpair"}', 1001) == 204  # the first one's session ends late
    assert [op for _, op, _, _ in fake.calls] == ["pair", "pair"]  # ... and is not sent on
    assert ask(b'{"op": "unpair"}', 1002) == 204
    assert [op for _, op, _, _ in fake.calls] == ["pair", "pair", "unpair"]


@pytest.fixture
def sock_path() -> Iterator[Path]:
    short = Path(f"/tmp/tdb-{os.getpid()}-{threading.get_ident() % 10000}")
    short.mkdir(exist_ok=True)
    yield short / "device.sock"
    for p in short.iterdir():
        p.unlink()
    short.rmdir()


def test_the_unix_transport_names_the_peer_and_a_silent_client_stalls_nobody(
    tmp_path: Path, sock_path: Path
) -> None:
    fake = FakeServer()
    transport = UnixTransport(Broker(tmp_path, lambda: settings(), fake.enrol, fake.call), sock_path)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(transport.start(), loop).result(10)
        assert stat.S_IMODE(sock_path.stat().st_mode) == 0o666  # any local user may ask
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
            silent.connect(str(sock_path))  # connects and says nothing
            client = BrokerDeviceCredential(SERVER, sock_path, timeout=20)
            reply = client.call("pair", "tkt_1")
            assert (reply.status, reply.body["agent_username"]) == (200, "alice")
        # SO_PEERCRED: the uid of the process on the other end (this test's), by name
        assert fake.enrolments == [(TOKEN, "root")] and os.getuid() == 0
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as big:
            big.settimeout(20)
            big.connect(str(sock_path))
            big.sendall(b'{"op": "pair", "ticket": "tkt_' + b"x" * 10000 + b'"}\n')
            answer = json.loads(big.makefile("rb").readline())
        assert "longer than 4096" in answer["error"]
        other = BrokerDeviceCredential("http://other.test", sock_path, timeout=20)
        with pytest.raises(CredentialsError, match=r"enrolled with http://tandem\.test"):
            other.call("unpair")
    finally:
        asyncio.run_coroutine_threadsafe(transport.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
    with pytest.raises(CredentialsError, match="did not answer"):
        BrokerDeviceCredential(SERVER, tmp_path / "gone.sock").call("unpair")


def test_the_broker_exits_when_idle_and_not_while_a_client_is_connected(
    tmp_path: Path, sock_path: Path
) -> None:
    from recorder_service.device_broker import serve

    fake = FakeServer()
    transport = UnixTransport(Broker(tmp_path, lambda: settings(), fake.enrol, fake.call), sock_path)

    async def scenario() -> bool:
        task = asyncio.create_task(serve(transport, asyncio.Event(), idle_exit=0.3, inherit=False))
        for _ in range(2000):  # serve() creates it
            if transport.listening:
                break
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_unix_connection(str(sock_path))
        started = asyncio.get_running_loop().time()
        while asyncio.get_running_loop().time() - started < 1.0:  # a client stays connected ...
            assert not task.done(), "exited while a client was connected"
            await asyncio.sleep(0.05)
        writer.write(b'{"op": "unpair"}\n')
        assert wire.parse_reply(await reader.readline())[0].status == 204
        writer.close()
        await asyncio.wait_for(task, timeout=20)  # ... then, idle, it exits by itself
        return True

    assert asyncio.run(scenario())
    assert not sock_path.exists()  # its own socket went with it


def test_a_credential_that_cannot_be_kept_is_a_clear_refusal(tmp_path: Path) -> None:
    fake = FakeServer()
    broker = Broker(tmp_path / "missing-dir", lambda: settings(), fake.enrol, fake.call)
    with pytest.raises(BrokerError, match="cannot keep the credential in"):
        wire.parse_reply(asyncio.run(broker.answer(b'{"op": "unpair"}', 0)))
    assert not fake.calls
