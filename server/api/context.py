"""The server's long-lived parts, built once at start-up and reached by routes through the app."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from server.calls.coordinator import CallCoordinator
from server.calls.media_jobs import MediaJobs
from server.calls.repository import CallRepository
from server.events.hub import EventHub
from server.settings import Settings
from server.store.storage import Storage


@dataclass
class ServerContext:
    settings: Settings
    sessions: sessionmaker[Session]
    storage: Storage
    hub: EventHub
    repo: CallRepository
    media: MediaJobs
    coordinator: CallCoordinator
    sip_port: int | None = None
