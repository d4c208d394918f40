"""REST client for the desktop's part of the Tandem API (docs/api.md), over httpx.

Blocking by design: the Qt side runs it on a worker thread (`agent_app.bridge`). Every
failure comes out as an `ApiError` subclass carrying the server's ``ErrorBody.message``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from agent_app.errors import (
    ApiError,
    AuthError,
    ConflictError,
    ForbiddenError,
    ProtocolError,
    ScreenNotConfirmedError,
    TransportError,
)
from agent_app.model import parse_user_info
from tandem_protocol import CallInfo, LoginRequest, LoginResponse

log = logging.getLogger(__name__)

# Pause and resume may legitimately take the server's 5 s recorder wait plus a margin.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
CONFIRM_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
MAX_ERROR_TEXT = 300


class AgentApi(Protocol):
    """What the window needs from the server; `ApiClient` implements it, tests fake it."""

    @property
    def token(self) -> str | None: ...

    def login(self, username: str, password: str, dn: str) -> LoginResponse: ...

    def logout(self) -> None: ...

    def current_call(self) -> CallInfo | None: ...

    def pause(self, interaction_id: str) -> CallInfo: ...

    def resume(self, interaction_id: str) -> CallInfo: ...

    def done(self, interaction_id: str) -> CallInfo: ...

    def agent_codes(self) -> dict[str, Any]: ...

    def pause_reason(self, interaction_id: str, code: str) -> dict[str, Any]: ...

    def agent_state(self) -> dict[str, Any]: ...

    def set_agent_state(self, state: str, reason_code: str) -> dict[str, Any]: ...

    def wrapup(self, interaction_id: str, disposition: str, notes: str) -> CallInfo | None: ...

    def close(self) -> None: ...


class ApiClient:
    """One agent session against one server. Thread-safe enough for one worker thread."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)
        self._token: str | None = None

    @property
    def token(self) -> str | None:
        return self._token

    def login(self, username: str, password: str, dn: str) -> LoginResponse:
        body = asdict(LoginRequest(username=username, password=password, dn=dn, client="desktop"))
        raw = self._request("POST", "/api/auth/login", json=body, authed=False)
        response = _parse_login(raw)
        self._token = response.token
        return response

    def logout(self) -> None:
        """Revoke the token (unbinds the DN). The local token is forgotten even on failure."""
        if self._token is None:
            return
        try:
            self._request("POST", "/api/auth/logout")
        finally:
            self._token = None

    def current_call(self) -> CallInfo | None:
        raw = self._request("GET", "/api/agent/call")
        return None if raw is None else _parse_call(raw)

    def pause(self, interaction_id: str) -> CallInfo:
        return self._call_action(interaction_id, "pause")

    def resume(self, interaction_id: str) -> CallInfo:
        return self._call_action(interaction_id, "resume")

    def done(self, interaction_id: str) -> CallInfo:
        return self._call_action(interaction_id, "done")

    def agent_codes(self) -> dict[str, Any]:
        """Reason and disposition codes, whether a disposition is required, the ACW limit."""
        return _as_object(self._request("GET", "/api/agent/codes"))

    def pause_reason(self, interaction_id: str, code: str) -> dict[str, Any]:
        """The reason for his latest pause of this call, sent after the pause (agent_app.pause_reason)."""
        path = f"/api/interactions/{quote(interaction_id, safe='')}/pause-reason"
        return _as_object(self._request("POST", path, json={"reason": code}))

    def agent_state(self) -> dict[str, Any]:
        return _as_object(self._request("GET", "/api/agent/state"))

    def set_agent_state(self, state: str, reason_code: str) -> dict[str, Any]:
        body = {"state": state, "reason_code": reason_code or None}
        return _as_object(self._request("PUT", "/api/agent/state", json=body))

    def wrapup(self, interaction_id: str, disposition: str, notes: str) -> CallInfo | None:
        """Store the ACW's disposition and notes with the interaction, then Done. None: the ACW
        had already ended (its limit), the wrap-up is stored all the same."""
        path = f"/api/interactions/{quote(interaction_id, safe='')}/wrapup"
        body = {"disposition": disposition or None, "notes": notes, "done": True}
        raw = _as_object(self._request("POST", path, json=body, timeout=CONFIRM_TIMEOUT))
        return None if raw.get("call") is None else _parse_call(raw["call"])

    def close(self) -> None:
        self._http.close()

    def _call_action(self, interaction_id: str, verb: str) -> CallInfo:
        path = f"/api/interactions/{quote(interaction_id, safe='')}/{verb}"
        return _parse_call(self._request("POST", path, timeout=CONFIRM_TIMEOUT))

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        authed: bool = True,
        timeout: httpx.Timeout | None = None,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if authed:
            if self._token is None:
                raise AuthError("Not logged in.", status=401, code="invalid_token")
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            response = self._http.request(
                method,
                path,
                json=json,
                headers=headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException as exc:
            raise TransportError(f"The server did not answer in time ({method} {path}).") from exc
        except httpx.HTTPError as exc:
            raise TransportError(f"Cannot reach the server at {self.base_url}: {exc}") from exc
        if response.is_success:
            if response.status_code == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError as exc:
                raise ProtocolError(
                    f"The server sent a response that is not JSON ({method} {path}).",
                    status=response.status_code,
                ) from exc
        raise _error_from(response)


def _error_from(response: httpx.Response) -> ApiError:
    status = response.status_code
    code, message = "", ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("error", ""))[:MAX_ERROR_TEXT]
        message = str(body.get("message", ""))[:MAX_ERROR_TEXT]
    if not message:
        message = f"The server answered {status} {response.reason_phrase}."
    if status == 401:
        return AuthError(message, status=status, code=code)
    if status == 403:
        return ForbiddenError(message, status=status, code=code)
    if status == 409:
        return ConflictError(message, status=status, code=code)
    if status == 504 and code == "screen_not_confirmed":
        return ScreenNotConfirmedError(message, status=status, code=code)
    return ApiError(message, status=status, code=code)


def _as_object(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ProtocolError("The server sent an unexpected answer (not an object).")
    return raw


def _parse_call(raw: Any) -> CallInfo:
    if not isinstance(raw, dict):
        raise ProtocolError("The server sent a call that is not a JSON object.")
    try:
        return CallInfo.from_dict(raw)
    except ValueError as exc:
        raise ProtocolError(f"The server sent a malformed call: {exc}") from exc


def _parse_login(raw: Any) -> LoginResponse:
    try:
        return LoginResponse(
            token=str(raw["token"]),
            expires_at=float(raw["expires_at"]),
            user=parse_user_info(raw["user"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"The server sent a malformed login response: {exc}") from exc
