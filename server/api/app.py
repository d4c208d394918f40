"""The server application: FastAPI for REST, WebSocket and the web UI, with the SIP engine
started in the same event loop by the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError

from server.api import (
    routes_admin,
    routes_admin_policies,
    routes_agent_recording,
    routes_agent_state,
    routes_audit,
    routes_auth,
    routes_calls,
    routes_devices,
    routes_dn_matching,
    routes_docs,
    routes_events,
    routes_fleet,
    routes_missed_calls,
    routes_player,
    routes_recorder_policy,
    routes_recorder_problems,
    routes_recorders,
    routes_recordings,
    routes_releases,
    routes_screen_segments,
    routes_screen_upload,
    routes_search,
    routes_share,
    routes_user_admin,
    routes_users,
)
from server.api.context import ServerContext
from server.api.csrf import CsrfMiddleware
from server.api.errors import install_error_handlers
from server.api.security_headers import SecurityHeadersMiddleware
from server.audit_checkpointer import start_checkpointer
from server.calls.coordinator import CallCoordinator
from server.calls.media_jobs import MediaJobs
from server.calls.repository import CallRepository
from server.calls.session_records import SessionRecords
from server.diskguard import DiskGuard, DiskStatus
from server.events.hub import EventHub
from server.security.throttle import LoginThrottle
from server.security.tickets import TicketBook
from server.services import acw_policy, pause_policy
from server.settings import Settings
from server.store.db import make_engine, make_session_factory, migrate
from server.store.storage import LocalStorage

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"


def build_context(settings: Settings) -> ServerContext:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.live_dir.mkdir(parents=True, exist_ok=True)
    if settings.auto_migrate:
        migrate(settings.resolved_database_url)
    sessions = make_session_factory(
        make_engine(settings.resolved_database_url, busy_timeout=settings.db_busy_timeout_seconds)
    )
    storage = LocalStorage(settings.resolved_storage_dir)
    hub = EventHub()
    repo = CallRepository(sessions, storage, settings.screen_percentage)
    media = MediaJobs(repo, storage, settings.tmp_dir, encoder_process=settings.media_encoder_process)
    coordinator = CallCoordinator(
        repo,
        hub,
        media,
        SessionRecords(sessions),
        hold_suppression=settings.hold_suppression,
        live_dir=settings.live_dir,
        screen_fps=settings.screen_fps,
        acw_limit=settings.acw_limit_seconds,
        acw_limit_now=lambda: acw_policy.current(sessions, settings.acw_limit_seconds),
        pause_max_now=lambda: pause_policy.current_max(sessions),
        confirm_timeout=settings.pause_confirm_timeout_seconds,
        disk=DiskGuard(
            [settings.live_dir, settings.resolved_storage_dir],
            min_free_bytes=settings.min_free_bytes,
            min_free_percent=settings.min_free_percent,
            interval=settings.disk_check_seconds,
        ),
    )
    return ServerContext(settings, sessions, storage, hub, repo, media, coordinator)


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.sip_tls_cert is None or settings.sip_tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.sip_tls_cert, settings.sip_tls_key)
    return context


def create_app(settings: Settings) -> FastAPI:
    ctx = build_context(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Media a crash left half stored: finished or rolled back before anything is served
        # (nothing else runs yet, so this may block the loop).
        ctx.repo.recover_pending_media()
        ctx.media.start()
        await ctx.coordinator.recover()
        faults = _start_fault_watch(ctx)
        faults.append(_start_recorder_policy(ctx))
        sip = None
        pool = None
        if settings.sip_enabled:
            from server.calls.missed_calls import MissedCallLog
            from server.sip.dialog import MediaFactory, rtp_session_factory
            from server.sip.digest import DigestAuth, load_users
            from server.sip.recording_request import RequestPolicy
            from server.sip.service import SipService
            from server.sip.trust import TrustedSources

            media_factory: MediaFactory = rtp_session_factory
            if settings.rtp_workers > 0:
                from server.rtp.workers.pool import WorkerPool

                # A worker's death is told to the coordinator at once (voice FAILED, not an RTP timeout).
                pool = WorkerPool(settings.rtp_workers, on_session_lost=ctx.coordinator.media_lost)
                app.state.worker_pool = pool
                await pool.start()
                media_factory = pool.media_factory
            sip = SipService(
                ctx.coordinator,
                host=settings.sip_host,
                port=settings.sip_port,
                advertised_host=settings.advertised_host,
                rtp_host=settings.sip_host,
                rtp_port_range=(settings.rtp_port_min, settings.rtp_port_max),
                rtp_timeout=settings.rtp_timeout_seconds,
                tcp=settings.sip_tcp,
                tls_context=_tls_context(settings),
                tls_port=settings.sip_tls_port,
                policy=RequestPolicy(
                    consent_header=settings.consent_header,
                    consent_element=settings.consent_metadata_element,
                    control_header=settings.recording_control_header,
                    dn_header=settings.recording_dn_header,
                ),
                latching=settings.rtp_latching,
                max_dialogs_per_source=settings.sip_max_dialogs_per_source,
                media_factory=media_factory,
                trusted=TrustedSources.parse(settings.sip_trusted_sources),
                digest=(
                    DigestAuth(
                        settings.sip_digest_realm,
                        load_users(settings.sip_digest_users),
                        algorithms=tuple(settings.sip_digest_algorithms),
                    )
                    if settings.sip_digest_realm is not None and settings.sip_digest_users is not None
                    else None
                ),
                refusals=(missed := MissedCallLog(ctx.sessions)),
            )
            missed.start()
            app.state.missed_calls, app.state.sip_service = missed, sip
            try:
                await sip.start()
            except BaseException:
                if pool is not None:
                    await pool.stop()
                raise
            ctx.sip_port = sip.port
            log.info(
                "SIP listening on %s:%s (udp%s%s)",
                settings.sip_host,
                sip.port,
                "+tcp" if settings.sip_tcp else "",
                f", tls {sip.tls_port}" if sip.tls_port else "",
            )
        checkpointer = start_checkpointer(ctx.sessions, settings)
        try:
            yield
        finally:
            if sip is not None:
                await sip.stop()
                await app.state.missed_calls.stop()  # what is pending is written
            if pool is not None:  # after SIP ended the calls: the workers finalise what is left
                await pool.stop()
            for task in faults:
                task.cancel()
            await ctx.coordinator.shutdown()
            await ctx.media.stop()
            if checkpointer is not None:  # it covers every record written before
                await checkpointer.stop()
            # Last: the database's pooled connections (two descriptors each) close with the app,
            # not with the process; an app made again in the same process (the tests make
            # hundreds) kept every earlier one's open (FastAPI's caches keep old apps alive).
            ctx.sessions.kw["bind"].dispose()

    # /docs is served from the package (routes_docs: no CDN, CSP-clean); ReDoc is not offered.
    app = FastAPI(title="Tandem", version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.ctx = ctx
    app.state.login_throttle = LoginThrottle()
    app.state.ws_tickets = TicketBook()
    app.state.pairing_tickets = TicketBook(ttl=120.0)  # desktop → recorder pairing (routes_devices)
    # The last added runs first: every answer, the CSRF refusal included, gets the headers.
    app.add_middleware(CsrfMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.secure_cookies)
    install_error_handlers(app)
    app.add_exception_handler(OperationalError, _database_busy)
    for module in (
        routes_auth,
        routes_calls,
        routes_screen_upload,
        routes_screen_segments,
        routes_recorders,
        routes_devices,
        routes_search,  # before routes_recordings: /interactions/search is not an interaction id
        routes_recordings,
        routes_player,
        routes_share,
        routes_admin,
        routes_admin_policies,
        routes_audit,
        routes_agent_recording,
        routes_agent_state,
        routes_users,
        routes_user_admin,
        routes_missed_calls,
        routes_dn_matching,
        routes_recorder_policy,
        routes_releases,
        routes_fleet,
        routes_recorder_problems,
        routes_events,
        routes_docs,
    ):
        app.include_router(module.router)

    @app.get("/healthz", response_model=None)
    async def healthz() -> dict[str, object] | JSONResponse:
        """200 while the server can record; 503 ``degraded`` (with why) while disk space is low
        or database writes are queued; ``draining`` during a graceful restart."""
        body, healthy = _health(ctx)
        return body if healthy else JSONResponse(body, status_code=503)

    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    return app


async def _database_busy(request: Request, exc: Exception) -> JSONResponse:
    """A database wait that ran out (``db_busy_timeout_seconds``: another writer holds the lock)
    or failed: 503 with a short Retry-After, not a 500 — and never a request held for 30 s."""
    log.warning("%s %s: database unavailable: %s", request.method, request.url.path, str(exc).splitlines()[0])
    return JSONResponse(
        {"error": "database_busy", "message": "the database is busy; try again in a moment"},
        status_code=503,
        headers={"Retry-After": "2"},
    )


def _health(ctx: ServerContext) -> tuple[dict[str, object], bool]:
    coordinator = ctx.coordinator
    disk = coordinator.disk.status if coordinator.disk is not None else DiskStatus(True)
    backlog = coordinator.backlog.status()
    problems = [disk.problem] if not disk.ok else []
    if backlog["pending"] or backlog["dropped"]:
        problems.append(f"database writes queued: {backlog['pending']} (lost: {backlog['dropped']})")
    status = "draining" if coordinator.draining else "degraded" if problems else "ok"
    body: dict[str, object] = {
        "status": status,
        "sip_port": ctx.sip_port,
        "disk": disk.as_dict(),
        "database_backlog": backlog,
        "problems": problems,
    }
    return body, not problems and not coordinator.draining


def _start_fault_watch(ctx: ServerContext) -> list[asyncio.Task[None]]:
    """The disk check and the live calls' media check; a low disk is audited for admins."""
    coordinator = ctx.coordinator
    tasks = [asyncio.create_task(coordinator.watch_media(), name="media-watch")]
    disk = coordinator.disk
    if disk is not None:
        loop = asyncio.get_running_loop()

        def audit_change(status: DiskStatus) -> None:  # from the check's thread or the loop
            action, outcome = ("server.disk_ok", "allowed") if status.ok else ("server.disk_low", "failed")
            detail = "disk space is back; calls are accepted again" if status.ok else status.problem
            coro = coordinator.audit_server_event(action, detail, outcome)
            loop.call_soon_threadsafe(lambda: tasks.append(loop.create_task(coro)))

        disk.on_change = audit_change
        tasks.append(asyncio.create_task(disk.run(), name="disk-guard"))
    return tasks


def _start_recorder_policy(ctx: ServerContext) -> asyncio.Task[None]:
    """The stored recorder policy in force before the first call (this may block the loop:
    nothing is served yet), then re-read every few seconds for changes made by the CLI."""
    from server.services import recorder_policy

    defaults = recorder_policy.initial(ctx.settings.screen_fps)

    def load() -> dict[str, object]:
        with ctx.sessions() as s:
            return recorder_policy.load(s, defaults).to_dict()

    ctx.coordinator.recorders.set_policy(load())
    return asyncio.create_task(ctx.coordinator.recorders.watch_policy(load), name="recorder-policy")
