"""Exception hierarchy of the agent desktop.

One root (`AgentAppError`) so the UI can catch everything the desktop raises on purpose, and
distinct classes for the cases the UI treats differently (expired session, unconfirmed pause).
Low-level errors (httpx, websockets) are always re-raised as one of these, chained with `from`.
"""

from __future__ import annotations


class AgentAppError(Exception):
    """Anything the agent desktop raises on purpose."""


class ApiError(AgentAppError):
    """The server answered with an error, or could not be reached.

    ``message`` is the server's sentence for a person (``ErrorBody.message``) when there is one.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class TransportError(ApiError):
    """No answer: connection refused, timeout, TLS failure."""


class ProtocolError(ApiError):
    """The server answered, but not with what the API promises (bad JSON, missing fields)."""


class AuthError(ApiError):
    """401: wrong credentials, or the token is missing, revoked or expired."""


class ForbiddenError(ApiError):
    """403: the user may not do this."""


class ConflictError(ApiError):
    """409: e.g. ``dn_in_use`` at login, ``not_active`` when pausing a finished call."""


class ScreenNotConfirmedError(ApiError):
    """504 ``screen_not_confirmed``: the recorder did not confirm a pause/resume in time.

    The voice part did happen (the server says voice stays paused), so the UI must not show
    the pause as confirmed and must not pretend nothing happened either.
    """


class ChannelError(AgentAppError):
    """The event channel could not be opened or was refused."""


class ChannelAuthError(ChannelError):
    """The server refused the event channel handshake with 401: the token is no good."""
