"""Domain errors: why a use case refused, independent of the door it came through.

::

    DomainError                 code (stable, for programs) + message (a sentence, for people)
    ├── InvalidInput            the request itself is wrong: a bad DN, a percentage of 150
    ├── NotFound                what it names does not exist: an unknown agent or team
    ├── Conflict                it clashes with the current state: a DN another agent holds
    └── Forbidden               the actor may not do this

The API maps each class to an HTTP status (``server.api.errors``); the CLI prints
``error: <message>`` and exits 1. ``code`` is the API's ``error`` field and never changes for a
given refusal, so clients can branch on it.
"""

from __future__ import annotations


class DomainError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidInput(DomainError):
    pass


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    pass


class Forbidden(DomainError):
    pass
