"""The recorder's local pairing endpoint (recorder_service/pairing_ipc.py) and the desktop's client
(agent_app/pairing.py): the same-user check (SO_PEERCRED on a real Unix socket, a SID comparison
for the Windows adapter), the socket's 0600 mode, the request format, and the desktop pairing
after login and unpairing before logout, best effort when there is no recorder."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent_app import pairing as desktop
from recorder_service import pairing_ipc
from recorder_service.pairing_ipc import PairingError, PairingRequest, PairingServer


class Endpoint:
    """A PairingServer on its own event loop thread, recording what it was asked."""

    def __init__(self, path: Path, own_uid: int | None = None) -> None:
        self.requests: list[PairingRequest] = []
        self.loop = asyncio.new_event_loop()
        self.server = PairingServer(path, self._handle, own_uid=own_uid)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)

    async def _handle(self, request: PairingRequest) -> str:
        if request.ticket == "tkt_refused":
            raise PairingError("the server refused (401): unknown, used or expired pairing ticket")
        self.requests.append(request)
        return "alice" if request.op == "pair" else ""

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[Path]:
    # AF_UNIX paths are limited to ~107 bytes: pytest's tmp_path can be longer.
    short = Path(f"/tmp/tpi-{os.getpid()}-{threading.get_ident() % 10000}")
    short.mkdir(exist_ok=True)
    yield short / pairing_ipc.SOCKET_NAME
    for p in short.iterdir():
        p.unlink()
    short.rmdir()


def test_the_same_user_check_for_uids_and_windows_sids() -> None:
    assert pairing_ipc.same_user(1000, 1000) is None
    assert "another user (1001)" in (pairing_ipc.same_user(1001, 1000) or "")
    assert pairing_ipc.same_user(None, 1000) == "the peer's user could not be determined"

    class FakeWindows:
        def __init__(self, client: str | None) -> None:
            self.client = client

        def client_sid(self, pipe: object) -> str | None:
            return self.client

        def own_sid(self) -> str:
            return "S-1-5-21-1-1001"

    assert pairing_ipc.windows_refusal(FakeWindows("S-1-5-21-1-1001"), object()) is None
    assert pairing_ipc.windows_refusal(FakeWindows("S-1-5-21-1-1002"), object()) is not None
    assert pairing_ipc.windows_refusal(FakeWindows(None), object()) is not None


def test_peer_credentials_of_a_socketpair_are_this_process_user() -> None:
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        assert pairing_ipc.peer_uid(a) == os.getuid()
    tcp = socket.socket()
    with tcp:
        assert pairing_ipc.peer_uid(tcp) is None  # no peer credentials: refused, not trusted


def test_requests_are_parsed_strictly() -> None:
    assert pairing_ipc.parse_request(b'{"op": "pair", "ticket": "tkt_x"}\n') == PairingRequest(
        "pair", "tkt_x"
    )
    assert pairing_ipc.parse_request(b'{"op": "unpair", "ticket": "tkt_x"}') == PairingRequest("unpair", "")
    for bad, why in ((b"nope", "JSON"), (b'{"op": "steal"}', "op must be"), (b'{"op": "pair"}', "ticket")):
        with pytest.raises(PairingError, match=why):
            pairing_ipc.parse_request(bad)
    with pytest.raises(PairingError, match="XDG_RUNTIME_DIR"):
        pairing_ipc.socket_path({})
    assert pairing_ipc.socket_path({"XDG_RUNTIME_DIR": "/run/user/5"}) == Path(
        "/run/user/5/tandem-recorder.sock"
    )


def test_the_endpoint_answers_its_own_user_on_a_0600_socket(sock_path: Path) -> None:
    endpoint = Endpoint(sock_path)
    try:
        assert stat.S_IMODE(sock_path.stat().st_mode) == 0o600
        assert desktop.send({"op": "pair", "ticket": "tkt_abc"}, sock_path) == {"ok": True, "agent": "alice"}
        refused = desktop.send({"op": "pair", "ticket": "tkt_refused"}, sock_path)
        assert refused["ok"] is False and "pairing ticket" in refused["error"]
        assert desktop.send({"op": "unpair"}, sock_path) == {"ok": True, "agent": ""}
        assert endpoint.requests == [PairingRequest("pair", "tkt_abc"), PairingRequest("unpair", "")]
    finally:
        endpoint.close()
    assert not sock_path.exists()


def test_another_users_process_is_refused_by_its_peer_credentials(sock_path: Path) -> None:
    # The endpoint believes it runs as another uid: the real peer (this process) is not its user.
    endpoint = Endpoint(sock_path, own_uid=os.getuid() + 1)
    try:
        answer = desktop.send({"op": "pair", "ticket": "tkt_abc"}, sock_path)
        assert answer["ok"] is False and f"another user ({os.getuid()})" in answer["error"]
        assert endpoint.requests == []
    finally:
        endpoint.close()


def _server(tickets: list[str]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/auth/login":
            user = {"id": 1, "username": "alice", "full_name": "", "role": "agent", "team": None}
            return httpx.Response(200, json={"token": "t0k", "expires_at": 9e9, "user": user})
        if request.url.path == "/api/agent/pairing-ticket":
            tickets.append(f"tkt_{len(tickets)}")
            return httpx.Response(200, json={"ticket": tickets[-1], "expires_in": 120})
        if request.url.path == "/api/auth/logout":
            return httpx.Response(204)
        return httpx.Response(404, json={"error": "not_found", "message": request.url.path})

    return httpx.MockTransport(handle)


def test_the_desktop_pairs_after_login_and_unpairs_before_logout(sock_path: Path) -> None:
    tickets: list[str] = []
    endpoint = Endpoint(sock_path)
    try:
        api = desktop.PairingApiClient("http://tandem.test", transport=_server(tickets))
        api.socket_path = sock_path
        api.login("alice", "pw", "1002")
        api.logout()
        assert endpoint.requests == [PairingRequest("pair", "tkt_0"), PairingRequest("unpair", "")]
    finally:
        endpoint.close()
    # No recorder on this PC: the login still succeeds.
    api = desktop.PairingApiClient("http://tandem.test", transport=_server(tickets))
    api.socket_path = sock_path
    assert api.login("alice", "pw", "1002").token == "t0k"
    assert api.pair_recorder() is False
    api.logout()
    assert json.dumps(tickets)  # a ticket was fetched for each login attempt


def test_each_agent_spools_into_his_own_directory_under_the_root(tmp_path: Path) -> None:
    from recorder_service.device_broker_client import LocalDeviceCredential
    from recorder_service.device_session import DeviceRunner

    device = LocalDeviceCredential("http://tandem.test", "tdc_x")
    runner = DeviceRunner(device, tmp_path, fps=1.0, monitor=0)
    assert runner.spool_dir("alice") == tmp_path / "agents" / "alice"
    assert runner.spool_dir("../../etc/x").parent == tmp_path / "agents"  # no way out of the root
    assert runner.spool_dir("..") == tmp_path / "agents" / "_"


class FakeWin32:
    """The Win32 calls of pairing_win32, as a table: pipe → pid → process → SID."""

    def __init__(
        self, pids: dict[str, int], sids: dict[int, str], own: str | None = "S-1-5-21-7-1001"
    ) -> None:
        self.pids, self.sids, self.own = pids, sids, own
        self.open: set[int] = set()

    def client_pid(self, pipe: object) -> int | None:
        return self.pids.get(str(pipe))

    def current_process(self) -> object:
        return "self"

    def open_process(self, pid: int) -> object | None:
        if pid not in self.sids:
            return None
        self.open.add(pid)
        return pid

    def user_sid(self, process: object) -> str | None:
        return self.own if process == "self" else self.sids.get(int(str(process)))

    def close(self, handle: object) -> None:
        self.open.discard(int(str(handle)))


def test_the_windows_pipe_peer_compares_the_clients_user_sid() -> None:
    from recorder_service.pairing_win32 import Win32PipePeer

    calls = FakeWin32(
        {"desktop": 41, "other": 42, "gone": 43}, {41: "S-1-5-21-7-1001", 42: "S-1-5-21-7-1002"}
    )
    peer = Win32PipePeer(calls)
    assert pairing_ipc.windows_refusal(peer, "desktop") is None
    assert "another user (S-1-5-21-7-1002)" in (pairing_ipc.windows_refusal(peer, "other") or "")
    assert pairing_ipc.windows_refusal(peer, "gone") is not None  # the process is gone: unknown, refused
    assert pairing_ipc.windows_refusal(peer, "nobody") is not None  # no client pid
    assert calls.open == set()  # every process handle closed
    with pytest.raises(OSError, match="own user SID"):
        Win32PipePeer(FakeWin32({}, {}, own=None)).own_sid()
