"""HTTP hardening in process (SIP off): login throttling and the argon2 bound, Range edges through
the media route, token transport (no ?token=, WebSocket tickets, redacted access log, logout
closing sockets), CSRF on cookie-authenticated changes, security headers."""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.exceptions
import websockets.sync.client
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from server.api import routes_auth
from server.api.app import create_app
from server.api.csrf import cross_site_refusal
from server.api.log_redaction import RedactSecrets
from server.security import passwords
from server.security.tickets import TicketBook
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user
from tandem_protocol.events import Envelope
from tests.e2e.browser import chromium, log_in, new_page, wait_recordings_loaded
from tests.e2e.harness import ServerProcess, run_server, wait_until

PASSWORD = "correct-horse-battery"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(None, data_dir=tmp_path / "data", sip_enabled=False)
    app = create_app(settings)
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "sup", PASSWORD, "supervisor", supervises=["Blue"])
        create_user(s, "agent1", PASSWORD, "agent", team="Blue")
    with TestClient(app) as c:
        yield c


def ctx(http: TestClient) -> Any:
    return http.app.state.ctx  # type: ignore[attr-defined]


def login(http: TestClient, user: str, **extra: object) -> str:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD, **extra})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def audit_rows(http: TestClient, action: str) -> list[dict[str, Any]]:
    with session_scope(ctx(http).sessions) as s:
        rows = s.query(models.AuditRecord).filter_by(action=action).all()
        return [
            {"outcome": r.outcome, "username": r.username, "detail": r.detail, "target_id": r.target_id}
            for r in rows
        ]


# --- login throttling and the argon2 bound ---------------------------------------------------


def test_failed_logins_are_throttled_before_any_password_check(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[str] = []
    real = passwords.verify_password  # what routes_auth calls (it imports it from there)

    def counting(stored: str | None, password: str) -> bool:
        checks.append(password)
        return real(stored, password)

    monkeypatch.setattr(routes_auth, "verify_password", counting)
    wrong = {"username": "agent1", "password": "wrong-password-1"}
    for _ in range(5):
        assert client.post("/api/auth/login", json=wrong).status_code == 401
    r = client.post("/api/auth/login", json=wrong)  # the 6th failure starts the back-off
    assert r.status_code == 401
    assert len(checks) == 6
    r = client.post("/api/auth/login", json={"username": "agent1", "password": PASSWORD})
    assert r.status_code == 429, r.text
    assert r.json()["error"] == "too_many_attempts"
    assert int(r.headers["Retry-After"]) >= 1
    assert len(checks) == 6, "a throttled login must not reach argon2"
    denied = [a for a in audit_rows(client, "auth.login") if a["outcome"] == "denied"]
    assert any("too many failed logins" in a["detail"] for a in denied)
    # Another user from the same address still gets in (the source allows more failures).
    assert client.post("/api/auth/login", json={"username": "sup", "password": PASSWORD}).status_code == 200


def test_success_resets_the_users_failures(client: TestClient) -> None:
    wrong = {"username": "agent1", "password": "wrong-password-1"}
    for _ in range(5):
        assert client.post("/api/auth/login", json=wrong).status_code == 401
    login(client, "agent1")
    for _ in range(5):  # five fresh free failures, not an immediate back-off
        assert client.post("/api/auth/login", json=wrong).status_code == 401


def test_login_refused_with_503_when_password_checks_are_saturated(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = passwords.Gate(concurrent=1, waiting=0, wait_seconds=30)
    monkeypatch.setattr(passwords, "_gate", gate)
    with gate.turn():  # the one slot is busy and nobody may wait
        r = client.post("/api/auth/login", json={"username": "agent1", "password": PASSWORD})
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "busy" and r.headers["Retry-After"] == "1"
    assert any(a["detail"] == "server busy with other logins" for a in audit_rows(client, "auth.login"))
    login(client, "agent1")  # free again


# --- Range through the media route -------------------------------------------------------------


def stored_media(http: TestClient, data: bytes) -> str:
    """An ended interaction of agent1 with a voice file of ``data`` in storage."""
    context = ctx(http)
    interaction_id = str(uuid.uuid4())
    started = time.time() - 60
    source = context.settings.data_dir / f"{interaction_id}.wav"
    source.write_bytes(data)
    key = f"test/{interaction_id}/voice.wav"
    size = context.storage.put_file(key, source)
    with session_scope(context.sessions) as s:
        agent = s.query(models.User).filter_by(username="agent1").one()
        s.add(
            models.Interaction(
                id=interaction_id,
                call_id=f"call-{interaction_id}",
                dn="1001",
                agent_id=agent.id,
                caller="+15550123",
                callee="1001",
                state="done",
                started_at=started,
                ended_at=started + 10,
                screen_decision=False,
                screen_percentage=0,
                voice_state="stopped",
                screen_state="off",
            )
        )
        s.add(
            models.MediaFile(
                interaction_id=interaction_id,
                kind="voice",
                storage_key=key,
                content_type="audio/wav",
                size=size,
                sha256="0" * 64,
                started_at=started,
                created_at=started,
            )
        )
    return interaction_id


@pytest.mark.parametrize(
    ("range_header", "status", "body_slice", "content_range"),
    [
        ("bytes=-0", 416, None, "bytes */1000"),  # used to serve the whole file
        ("bytes=1000-", 416, None, "bytes */1000"),
        ("bytes=1_0-20", 200, slice(None), None),  # used to be served as bytes 10-20
        ("bytes=0-1,5-6", 200, slice(None), None),
        ("bytes=5-3", 200, slice(None), None),
        ("bytes=0-", 206, slice(0, 1000), "bytes 0-999/1000"),
        ("bytes=-500", 206, slice(500, 1000), "bytes 500-999/1000"),
        ("bytes=10-20", 206, slice(10, 21), "bytes 10-20/1000"),
    ],
)
def test_media_range_edges(
    client: TestClient,
    range_header: str,
    status: int,
    body_slice: slice | None,
    content_range: str | None,
) -> None:
    data = bytes(range(256)) * 3 + bytes(232)
    assert len(data) == 1000
    interaction_id = stored_media(client, data)
    r = client.get(
        f"/api/interactions/{interaction_id}/media/voice",
        headers={**bearer(login(client, "sup")), "Range": range_header},
    )
    assert r.status_code == status, r.text
    assert r.headers.get("Content-Range") == content_range
    if body_slice is not None:
        assert r.content == data[body_slice]
        assert r.headers["Content-Length"] == str(len(data[body_slice]))


# --- token transport: no ?token=, WebSocket by header, cookie or ticket; logout closes -----------


def agent_desktop_token(http: TestClient, dn: str = "1001") -> str:
    return login(http, "agent1", client="desktop", dn=dn)


def test_query_token_is_not_accepted_on_http(client: TestClient) -> None:
    token = login(client, "sup")
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    r = client.get("/api/me", params={"token": token})
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"


def refused(http: TestClient, url: str, **kw: Any) -> str:
    """The reason in the HTTP 401 a WebSocket handshake is refused with."""
    with pytest.raises(WebSocketDenialResponse) as denied:
        with http.websocket_connect(url, **kw) as ws:
            ws.receive_json()
    assert denied.value.status_code == 401
    assert denied.value.json()["error"] == "invalid_token"
    return str(denied.value.json()["message"])


def test_websocket_refuses_query_token_with_a_clear_reason(client: TestClient) -> None:
    token = agent_desktop_token(client)
    assert "?token= is not accepted" in refused(client, f"/api/events?client=desktop&token={token}")
    assert any("?token= is not accepted" in a["detail"] for a in audit_rows(client, "auth.rejected"))


def test_websocket_by_authorization_header(client: TestClient) -> None:
    token = agent_desktop_token(client)
    with client.websocket_connect("/api/events?client=desktop", headers=bearer(token)) as ws:
        state = ws.receive_json()
    assert state["type"] == "state" and state["data"]["agent"]["username"] == "agent1"


def test_websocket_ticket_is_single_use_and_short_lived(client: TestClient) -> None:
    token = agent_desktop_token(client)
    r = client.post("/api/events/ticket", headers=bearer(token))
    assert r.status_code == 200, r.text
    ticket = r.json()["ticket"]
    assert r.json()["expires_in"] == 30
    with client.websocket_connect(f"/api/events?client=desktop&ticket={ticket}") as ws:
        assert ws.receive_json()["type"] == "state"
    assert "ticket" in refused(client, f"/api/events?client=desktop&ticket={ticket}")  # used
    # Expiry, with the book's clock moved past the 30 s.
    now = [1000.0]
    client.app.state.ws_tickets = TicketBook(clock=lambda: now[0])  # type: ignore[attr-defined]
    ticket = client.post("/api/events/ticket", headers=bearer(token)).json()["ticket"]
    now[0] += 30.5
    assert "expired" in refused(client, f"/api/events?client=desktop&ticket={ticket}")


def test_ticket_book_bounds_and_expiry() -> None:
    now = [0.0]
    book = TicketBook(ttl=30, max_outstanding=3, clock=lambda: now[0])
    tickets = [book.issue(i) for i in range(5)]
    assert book.outstanding() == 3
    assert book.redeem(tickets[0]) is None  # evicted, oldest first
    assert book.redeem(tickets[4]) == 4
    assert book.redeem(tickets[4]) is None  # single use
    now[0] = 31
    assert book.redeem(tickets[3]) is None
    book.issue(9)  # issuing sweeps the expired
    assert book.outstanding() == 1


@pytest.mark.timeout(60)  # without the close, the receive below waits for ever
def test_logout_closes_the_tokens_websockets_and_revoked_tokens_cannot_reconnect(client: TestClient) -> None:
    token = agent_desktop_token(client)
    other = agent_desktop_token(client)  # the same agent's second token: its socket stays open
    with (
        client.websocket_connect("/api/events?client=desktop", headers=bearer(token)) as ws,
        client.websocket_connect("/api/events?client=desktop", headers=bearer(other)) as ws_other,
    ):
        assert ws.receive_json()["type"] == "state"
        assert ws_other.receive_json()["type"] == "state"
        assert client.post("/api/auth/logout", headers=bearer(token)).status_code == 204
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert (closed.value.code, closed.value.reason) == (4401, "logged out")
        ws_other.send_text(Envelope(type="time.ping", data={"t0": 1.0}).to_json())
        assert ws_other.receive_json()["type"] == "time.pong"  # the other token's socket still works
    assert "revoked" in refused(client, "/api/events?client=desktop", headers=bearer(token))


def test_websocket_by_cookie_checks_the_origin(client: TestClient) -> None:
    login(client, "agent1", client="web")  # the session cookie is now in the client's jar
    with client.websocket_connect(
        "/api/events?client=desktop", headers={"Origin": "http://testserver"}
    ) as ws:
        assert ws.receive_json()["type"] == "state"
    reason = refused(client, "/api/events?client=desktop", headers={"Origin": "https://evil.example"})
    assert "evil.example" in reason


def test_access_log_filter_redacts_tokens_and_tickets() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/api/events?client=desktop&token=tdm_SECRET&ticket=tkt_SECRET", "1.1", 101),
        None,
    )
    RedactSecrets().filter(record)
    line = record.getMessage()
    assert "SECRET" not in line
    assert "/api/events?client=desktop&token=[redacted]&ticket=[redacted]" in line


# --- CSRF on cookie-authenticated changes --------------------------------------------------------

SAMPLING = {"percentage": 50, "team_overrides": {}}


def test_cookie_changes_need_our_own_origin(client: TestClient) -> None:
    r = client.post("/api/auth/login", json={"username": "admin", "password": PASSWORD, "client": "web"})
    assert r.status_code == 200 and "tandem_session" in client.cookies
    # No Origin and no Referer: refused, audited.
    r = client.put("/api/admin/sampling", json=SAMPLING)
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "csrf_refused"
    # Another site's page: refused (also with a look-alike host or port).
    for origin in (
        "https://evil.example",
        "http://testserver.evil.example",
        "http://testserver:8081",
        "null",
    ):
        r = client.put("/api/admin/sampling", json=SAMPLING, headers={"Origin": origin})
        assert r.status_code == 403 and r.json()["error"] == "csrf_refused", origin
    r = client.put("/api/admin/sampling", json=SAMPLING, headers={"Referer": "https://evil.example/x"})
    assert r.status_code == 403
    refused = audit_rows(client, "csrf.refused")
    assert len(refused) == 6 and all(a["outcome"] == "denied" for a in refused)
    assert refused[0]["target_id"] == "/api/admin/sampling"
    # Our own pages: Origin (the TestClient's Host is "testserver"), or Referer when no Origin.
    r = client.put("/api/admin/sampling", json=SAMPLING, headers={"Origin": "http://testserver"})
    assert r.status_code == 200, r.text
    r = client.put("/api/admin/sampling", json=SAMPLING, headers={"Referer": "http://testserver/#/admin"})
    assert r.status_code == 200, r.text
    # Reads are not changes.
    assert client.get("/api/admin/sampling").status_code == 200
    # Logout through the cookie is a change too.
    assert client.post("/api/auth/logout", headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.post("/api/auth/logout", headers={"Origin": "http://testserver"}).status_code == 204


@pytest.mark.parametrize(
    ("headers", "public_url", "allowed"),
    [
        ({"origin": "http://rec.example:8080", "host": "rec.example:8080"}, None, True),
        ({"origin": "https://rec.example", "host": "rec.example:443"}, None, True),  # default port
        ({"origin": "http://REC.example", "host": "rec.example"}, None, True),  # hosts are case-blind
        ({"origin": "http://[::1]:8080", "host": "[::1]:8080"}, None, True),
        ({"referer": "http://rec.example/#/admin", "host": "rec.example"}, None, True),
        ({"origin": "https://rec.example", "host": "10.0.0.5:8080"}, "https://rec.example/", True),
        ({"origin": "http://rec.example:8081", "host": "rec.example:8080"}, None, False),
        ({"origin": "http://rec.example.evil", "host": "rec.example"}, None, False),
        ({"origin": "null", "host": "rec.example"}, None, False),
        ({"origin": "http://rec.example:99999", "host": "rec.example"}, None, False),  # bad port
        ({"origin": "file://", "host": "rec.example"}, None, False),
        ({"host": "rec.example"}, None, False),  # neither Origin nor Referer
        # Origin wins over Referer: a foreign Origin is not excused by a matching Referer.
        (
            {"origin": "https://evil.example", "referer": "http://rec.example/", "host": "rec.example"},
            None,
            False,
        ),
    ],
)
def test_cross_site_refusal(headers: dict[str, str], public_url: str | None, allowed: bool) -> None:
    assert (cross_site_refusal(headers, public_url) is None) == allowed


def test_bearer_requests_are_not_csrf_checked(client: TestClient) -> None:
    token = login(client, "admin")
    r = client.put(
        "/api/admin/sampling", json=SAMPLING, headers={**bearer(token), "Origin": "https://evil.example"}
    )
    assert r.status_code == 200, r.text


def test_public_url_is_our_origin_too(tmp_path: Path) -> None:
    settings = load_settings(
        None, data_dir=tmp_path / "data", sip_enabled=False, public_url="https://rec.example.com/"
    )
    app = create_app(settings)
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
    with TestClient(app) as c:
        c.post("/api/auth/login", json={"username": "admin", "password": PASSWORD, "client": "web"})
        ok = c.put("/api/admin/sampling", json=SAMPLING, headers={"Origin": "https://rec.example.com"})
        assert ok.status_code == 200, ok.text
        bad = c.put("/api/admin/sampling", json=SAMPLING, headers={"Origin": "http://rec.example.com"})
        assert bad.status_code == 403


def test_login_from_another_sites_page_is_refused(client: TestClient) -> None:
    body = {"username": "admin", "password": PASSWORD, "client": "web"}
    r = client.post("/api/auth/login", json=body, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["error"] == "csrf_refused"
    assert (
        client.post("/api/auth/login", json=body, headers={"Origin": "http://testserver"}).status_code == 200
    )
    client.cookies.clear()
    assert client.post("/api/auth/login", json=body).status_code == 200  # programs send no Origin


# --- security headers ----------------------------------------------------------------------------


def test_security_headers_on_ui_static_and_api(client: TestClient) -> None:
    for path in ("/", "/static/app.js", "/api/me", "/api/does-not-exist"):
        r = client.get(path)
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in r.headers  # plain HTTP here
    assert client.get("/api/me").headers["Cache-Control"] == "no-store"
    token = login(client, "sup")
    assert client.get("/api/interactions", headers=bearer(token)).headers["Cache-Control"] == "no-store"
    r = client.put("/api/admin/sampling", json=SAMPLING, headers={"Origin": "https://evil.example"})
    assert r.headers["X-Frame-Options"] == "DENY"  # refusals by the middleware get them too


def test_hsts_when_cookies_are_secure(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path / "data", sip_enabled=False, secure_cookies=True)
    with TestClient(create_app(settings)) as c:
        assert c.get("/").headers["Strict-Transport-Security"].startswith("max-age=")


# --- the real server: bounded requests, argon2 bound, access log ---------------------------------


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("http-security")
    with run_server(
        data_dir,
        TANDEM_SERVER_RTP_WORKERS="0",
        TANDEM_SERVER_HTTP_HEADER_TIMEOUT_SECONDS="3",
        TANDEM_SERVER_HTTP_BODY_IDLE_TIMEOUT_SECONDS="3",
    ) as server:
        yield server


def sip_options_rtt(port: int, timeout: float = 10.0) -> float:
    """Seconds until the server answers one SIP OPTIONS over UDP (AssertionError if it does not)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(timeout)
        local = sock.getsockname()[1]
        call_id = uuid.uuid4().hex
        request = (
            f"OPTIONS sip:recorder@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{call_id[:16]}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@127.0.0.1>;tag={call_id[:8]}\r\n"
            "To: <sip:recorder@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        start = time.monotonic()
        sock.sendto(request, ("127.0.0.1", port))
        try:
            while True:
                answer = sock.recv(65535)
                if call_id.encode() in answer:
                    assert answer.startswith(b"SIP/2.0 200"), answer[:80]
                    return time.monotonic() - start
        except TimeoutError as exc:
            raise AssertionError(f"no answer to SIP OPTIONS within {timeout} s") from exc


def sip_answers_throughout(port: int, busy: Callable[[], bool]) -> list[float]:
    """Probe SIP every 50 ms while ``busy()``; each probe must be answered within 10 s."""
    times = []
    while busy():
        times.append(sip_options_rtt(port))
        time.sleep(0.05)
    times.append(sip_options_rtt(port))
    return times


@pytest.mark.e2e  # the real server as a subprocess: outside the fast selection
def test_huge_header_is_refused_fast_and_sip_keeps_answering(real_server: ServerProcess) -> None:
    sip_options_rtt(real_server.sip_port)
    host, port = "127.0.0.1", int(real_server.url.rsplit(":", 1)[1])
    sent = [0]
    answer = [b""]

    def abuse() -> None:
        with socket.create_connection((host, port), timeout=30) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            chunk = b"a" * 65536
            try:
                while sent[0] < 10 * 1024 * 1024:
                    conn.sendall(chunk)
                    sent[0] += len(chunk)
                answer[0] = conn.recv(200)
            except OSError:  # the server closed on us (reset or broken pipe): what we want
                pass

    thread = threading.Thread(target=abuse)
    started = time.monotonic()
    thread.start()
    probes = sip_answers_throughout(real_server.sip_port, thread.is_alive)
    thread.join(60)
    assert not thread.is_alive()
    assert time.monotonic() - started < 30, "the server should refuse a 10 MB header, not read it all"
    # Refused: either the connection broke before the 10 MB were out, or a 400 came back.
    assert sent[0] < 10 * 1024 * 1024 or answer[0].startswith(b"HTTP/1.1 400"), (sent[0], answer[0])
    assert len(probes) >= 1
    assert httpx.get(f"{real_server.url}/healthz", timeout=10).status_code in (200, 503)


@pytest.mark.e2e  # the real server as a subprocess: outside the fast selection
def test_slow_header_gets_408_and_silent_connection_is_closed(real_server: ServerProcess) -> None:
    host, port = "127.0.0.1", int(real_server.url.rsplit(":", 1)[1])
    with socket.create_connection((host, port), timeout=30) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        answer = b""
        while time.monotonic() - started < 30:  # a byte a second: the 3-s deadline still holds
            try:
                slow.sendall(b"X")
            except OSError:
                break
            slow.settimeout(1)
            try:
                data = slow.recv(200)
            except TimeoutError:
                continue
            answer += data
            if not data or b"\r\n\r\n" in answer:
                break
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert time.monotonic() - started < 20
    with socket.create_connection((host, port), timeout=30) as silent:
        silent.settimeout(30)
        assert silent.recv(200).startswith(b"HTTP/1.1 408")


@pytest.mark.e2e  # the real server as a subprocess: outside the fast selection
def test_stalled_body_is_dropped(real_server: ServerProcess) -> None:
    host, port = "127.0.0.1", int(real_server.url.rsplit(":", 1)[1])
    with socket.create_connection((host, port), timeout=30) as conn:
        conn.sendall(
            b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        conn.settimeout(30)
        started = time.monotonic()
        assert conn.recv(200) == b""  # closed by the server, long before the client timeout
        assert time.monotonic() - started < 20


def test_parallel_wrong_passwords_do_not_starve_sip(tmp_path: Path) -> None:
    # A server of its own: the back-off these guesses earn 127.0.0.1 would refuse later logins.
    with run_server(tmp_path, TANDEM_SERVER_RTP_WORKERS="0") as server:
        parallel_wrong_passwords(server)


def parallel_wrong_passwords(real_server: ServerProcess) -> None:
    rss_before = rss_bytes(real_server.proc.pid)
    statuses: list[int] = []
    lock = threading.Lock()

    def guesser(i: int) -> None:
        with httpx.Client(base_url=real_server.url, timeout=60) as http:
            for j in range(4):
                r = http.post("/api/auth/login", json={"username": f"nobody{i}-{j}", "password": "x" * 12})
                with lock:
                    statuses.append(r.status_code)

    threads = [threading.Thread(target=guesser, args=(i,)) for i in range(32)]
    for th in threads:
        th.start()
    peak = [rss_before]

    def busy() -> bool:
        peak[0] = max(peak[0], rss_bytes(real_server.proc.pid))
        return any(th.is_alive() for th in threads)

    probes = sip_answers_throughout(real_server.sip_port, busy)
    for th in threads:
        th.join(60)
    assert len(statuses) == 128
    assert set(statuses) <= {401, 429, 503}, set(statuses)
    assert 503 in statuses or 429 in statuses, "32 parallel guessers should meet the bounds"
    assert len(probes) >= 3
    # Two argon2 computations at 64 MiB each may run at once, not 32.
    assert peak[0] - rss_before < 400 * 1024 * 1024, (rss_before, peak[0])


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_access_log_has_no_tokens(real_server: ServerProcess) -> None:
    secret = "tdm_" + uuid.uuid4().hex
    r = httpx.get(f"{real_server.url}/api/me", params={"token": secret}, timeout=10)
    assert r.status_code == 401
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        with websockets.sync.client.connect(
            real_server.url.replace("http", "ws") + f"/api/events?client=desktop&token={secret}X",
            open_timeout=10,
        ):
            pass
    assert refused.value.response.status_code == 401
    assert b"?token= is not accepted" in refused.value.response.body
    wait_until(lambda: "token=[redacted]" in real_server.log(), 10, "the access log line")
    log = real_server.log_path.read_text(errors="replace")
    assert secret not in log
    assert "/api/me?token=[redacted]" in log


def test_web_ui_runs_under_the_content_security_policy(real_server: ServerProcess) -> None:
    """Login, recordings and admin pages in Debian's chromium: the CSP blocks nothing they need,
    and the UI's own changes pass the CSRF check (the browser sends Origin)."""
    problems: list[str] = []
    with chromium() as browser, new_page(browser) as page:
        page.on(
            "console",
            lambda m: (
                problems.append(m.text)
                if "Content Security Policy" in m.text or "csrf" in m.text.lower()
                else None
            ),
        )
        page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status == 403 else None)
        log_in(page, real_server.url, "admin", real_server.creds["admin"]["password"])
        wait_recordings_loaded(page)
        page.goto(f"{real_server.url}/#/admin")
        page.wait_for_selector("#view-admin", state="visible")
        page.wait_for_function("() => document.getElementById('sampling-percentage').value !== ''")
        page.fill("#sampling-percentage", "40")
        page.click("#sampling-save")
        page.wait_for_function("() => document.getElementById('sampling-status').textContent !== ''")
        status = page.inner_text("#sampling-status")
        page.click("#logout")
        page.wait_for_selector("#view-login", state="visible")
    assert not problems, problems
    with real_server.client("admin") as http:
        assert http.get("/api/admin/sampling").json()["percentage"] == 40, status


def test_concurrency_limit_answers_503_and_sip_keeps_answering(tmp_path: Path) -> None:
    with run_server(
        tmp_path, TANDEM_SERVER_RTP_WORKERS="0", TANDEM_SERVER_HTTP_MAX_CONCURRENCY="16"
    ) as server:
        host, port = "127.0.0.1", int(server.url.rsplit(":", 1)[1])
        idle = [socket.create_connection((host, port), timeout=30) for _ in range(16)]
        try:
            r = httpx.get(f"{server.url}/healthz", timeout=10)
            assert (r.status_code, r.text) == (503, "Service Unavailable")  # uvicorn's, not the app's
            sip_options_rtt(server.sip_port)
        finally:
            for conn in idle:
                conn.close()
        wait_until(
            lambda: httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200, 30, "connections freed"
        )
