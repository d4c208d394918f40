"""The services' ``Actor`` for an authenticated API request."""

from __future__ import annotations

from fastapi import Request

from server.api.deps import AuthUser, client_addr
from server.services.actor import Actor, Source

_SOURCES: dict[str, Source] = {"web": "web", "desktop": "desktop"}


def actor_of(user: AuthUser, request: Request) -> Actor:
    """The web UI's cookie session is "web", the desktop's token "desktop", any other "api"."""
    return Actor(
        user.user_id, user.username, user.role, _SOURCES.get(user.client, "api"), client_addr(request)
    )
