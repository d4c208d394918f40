"""Every exception the agent desktop raises on purpose, in one tree.

::

    AgentAppError
    ├── UsageError (ValueError)        the command line cannot be used as given
    ├── LoginInputError (ValueError)   the login form is incomplete or malformed
    ├── ApiError                       the server answered with an error, or could not be reached
    │   ├── TransportError             no answer: refused, timeout, TLS
    │   ├── ProtocolError              an answer that is not what the API promises
    │   ├── AuthError                  401
    │   ├── ForbiddenError             403
    │   ├── ConflictError              409 (``dn_in_use``, ``not_active``)
    │   └── ScreenNotConfirmedError    504 ``screen_not_confirmed``
    └── ChannelError                   the event channel could not be opened or was refused
        └── ChannelAuthError           its handshake got 401

One root so the UI can catch everything the desktop raises on purpose, and distinct classes for
the cases the UI treats differently (expired session, unconfirmed pause). Low-level errors
(httpx, websockets) are always re-raised as one of these, chained with `from`.
"""

from __future__ import annotations


class AgentAppError(Exception):
    """Anything the agent desktop raises on purpose."""


class UsageError(AgentAppError, ValueError):
    """The command line cannot be used as given."""


class LoginInputError(AgentAppError, ValueError):
    """The form is incomplete or malformed; the message is for the agent."""


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
