"""The desktop's REST client against an in-process fake server (httpx.MockTransport)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from agent_app.api_client import ApiClient
from agent_app.errors import (
    ApiError,
    AuthError,
    ConflictError,
    ProtocolError,
    ScreenNotConfirmedError,
    TransportError,
)

T0 = 1_763_712_000.0
USER = {"id": 7, "username": "alice", "role": "agent", "full_name": "Alice", "team_id": None, "dn": "4711"}
CALL = {
    "interaction_id": "int/1",
    "call_id": "c1",
    "dn": "4711",
    "caller": "+49301",
    "callee": "4711",
    "phase": "active",
    "voice": "recording",
    "screen": "recording",
    "paused": False,
    "started_at": T0,
}


class FakeServer:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[tuple[str, str], httpx.Response] = {}

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.method, request.url.raw_path.decode())
        if key not in self.routes:
            return httpx.Response(404, json={"error": "not_found", "message": "No such thing."})
        return self.routes[key]


def client_for(server: FakeServer) -> ApiClient:
    return ApiClient("http://tandem.test:8000/", transport=httpx.MockTransport(server.handle))


def logged_in(server: FakeServer) -> ApiClient:
    server.routes[("POST", "/api/auth/login")] = httpx.Response(
        200, json={"token": "tok-1", "expires_at": T0, "user": USER}
    )
    client = client_for(server)
    client.login("alice", "pw", "4711")
    return client


def test_login_sends_desktop_client_and_dn_and_keeps_token() -> None:
    server = FakeServer()
    client = logged_in(server)
    body: dict[str, Any] = json.loads(server.requests[0].content)
    assert body == {"username": "alice", "password": "pw", "dn": "4711", "client": "desktop"}
    assert "authorization" not in server.requests[0].headers
    assert client.token == "tok-1"


def test_wrong_password_is_auth_error_with_server_message() -> None:
    server = FakeServer()
    server.routes[("POST", "/api/auth/login")] = httpx.Response(
        401, json={"error": "invalid_credentials", "message": "Wrong user name or password."}
    )
    with pytest.raises(AuthError) as info:
        client_for(server).login("alice", "bad", "4711")
    assert info.value.message == "Wrong user name or password." and info.value.code == "invalid_credentials"


def test_dn_in_use_is_conflict() -> None:
    server = FakeServer()
    server.routes[("POST", "/api/auth/login")] = httpx.Response(
        409, json={"error": "dn_in_use", "message": "DN 4711 is used by bob."}
    )
    with pytest.raises(ConflictError, match="used by bob"):
        client_for(server).login("alice", "pw", "4711")


def test_current_call_none_and_present_with_bearer() -> None:
    server = FakeServer()
    client = logged_in(server)
    server.routes[("GET", "/api/agent/call")] = httpx.Response(200, json=None)
    assert client.current_call() is None
    assert server.requests[-1].headers["authorization"] == "Bearer tok-1"
    server.routes[("GET", "/api/agent/call")] = httpx.Response(200, json=CALL)
    call = client.current_call()
    assert call is not None and call.caller == "+49301"


def test_pause_resume_done_paths_are_quoted() -> None:
    server = FakeServer()
    client = logged_in(server)
    for verb in ("pause", "resume", "done"):
        server.routes[("POST", f"/api/interactions/int%2F1/{verb}")] = httpx.Response(
            200, json={**CALL, "paused": verb == "pause"}
        )
    assert client.pause("int/1").paused is True
    assert client.resume("int/1").paused is False
    assert client.done("int/1").interaction_id == "int/1"


def test_screen_not_confirmed_has_its_own_error() -> None:
    server = FakeServer()
    client = logged_in(server)
    server.routes[("POST", "/api/interactions/x/pause")] = httpx.Response(
        504, json={"error": "screen_not_confirmed", "message": "The recorder did not confirm."}
    )
    with pytest.raises(ScreenNotConfirmedError, match="did not confirm") as info:
        client.pause("x")
    assert info.value.status == 504


def test_other_504_and_non_json_errors() -> None:
    server = FakeServer()
    client = logged_in(server)
    server.routes[("POST", "/api/interactions/x/pause")] = httpx.Response(504, text="gateway timeout")
    with pytest.raises(ApiError) as info:
        client.pause("x")
    assert type(info.value) is ApiError and "504" in info.value.message


def test_malformed_success_bodies_are_protocol_errors() -> None:
    server = FakeServer()
    client = logged_in(server)
    server.routes[("GET", "/api/agent/call")] = httpx.Response(200, json={"caller": "x"})
    with pytest.raises(ProtocolError):
        client.current_call()
    server.routes[("GET", "/api/agent/call")] = httpx.Response(200, text="<html>")
    with pytest.raises(ProtocolError):
        client.current_call()
    server.routes[("POST", "/api/auth/login")] = httpx.Response(200, json={"token": "t"})
    with pytest.raises(ProtocolError):
        client_for(server).login("a", "b", "1")


def test_transport_failure_is_chained() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = ApiClient("http://tandem.test", transport=httpx.MockTransport(refuse))
    with pytest.raises(TransportError) as info:
        client.login("a", "b", "1")
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_logout_revokes_and_forgets_token_even_on_error() -> None:
    server = FakeServer()
    client = logged_in(server)
    server.routes[("POST", "/api/auth/logout")] = httpx.Response(
        401, json={"error": "invalid_token", "message": "Token expired."}
    )
    with pytest.raises(AuthError):
        client.logout()
    assert client.token is None
    with pytest.raises(AuthError, match="Not logged in"):
        client.current_call()
    client.logout()  # no token: nothing to do
    assert [r.url.path for r in server.requests].count("/api/auth/logout") == 1
