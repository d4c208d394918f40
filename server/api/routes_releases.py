"""Agent-software releases over HTTP.

- ``GET /api/releases/tuf/metadata/{name}`` and ``/api/releases/tuf/targets/{name}``: the TUF
  repository as it is on disk, for the recorders' update clients. Served without a login: every
  file is signed (a client checks signatures, expiry and hashes itself) and the agent software is
  not secret; what the server must protect is the signing keys, which are never served.
- ``GET /api/admin/releases``; ``PUT /api/admin/releases/{version}?rollout_percent=N`` with the
  bundle archive (``.tar.gz`` of the one-folder bundle) as the body; ``PATCH
  /api/admin/releases/{version}`` ``{"rollout_percent": N}``; ``PUT /api/admin/release-policy``
  ``{"mode": "rollout" | "pinned" | "off", "pin": V}``: admins only, audited
  (``server.services.release_admin``)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from server.api.actors import actor_of
from server.api.context import ServerContext
from server.api.deps import AuthUser, current_user, get_context, get_db
from server.errors import InvalidInput, NotFound
from server.services import release_admin
from server.services.releases import Release, ReleaseRepository, describe

router = APIRouter(prefix="/api")
MAX_RELEASE_BYTES = 2 * 1024**3  # a one-folder bundle is ~100-300 MB; this only stops a runaway upload
_SAFE_NAME = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_\-]{0,200}$")


def _repo(ctx: ServerContext) -> ReleaseRepository:
    return ReleaseRepository(ctx.settings.releases_dir)


def _serve(directory: Path, name: str) -> FileResponse:
    # a plain name only (no "/", "..", dot files such as the half-written ".x.tmp")
    path = directory / name
    if not _SAFE_NAME.match(name) or not path.is_file():
        raise NotFound("no_such_file", f"no release file {name!r}")
    # no-store: a client must see a new timestamp as soon as it is signed (TUF decides freshness)
    return FileResponse(path, headers={"Cache-Control": "no-store"})


@router.get("/releases/tuf/metadata/{name}", response_model=None)
def tuf_metadata(name: str, ctx: ServerContext = Depends(get_context)) -> FileResponse:
    return _serve(_repo(ctx).metadata_dir, name)


@router.get("/releases/tuf/targets/{name}", response_model=None)
def tuf_target(name: str, ctx: ServerContext = Depends(get_context)) -> FileResponse:
    return _serve(_repo(ctx).targets_dir, name)


@router.get("/admin/releases")
def list_releases(
    request: Request,
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    return release_admin.overview(session, actor_of(user, request), _repo(ctx), ctx.settings.release_keys_dir)


def _described(repo: ReleaseRepository, release: Release) -> dict[str, object]:
    """The release as signed, with the percentage the admin chose (kept while a pin or the
    off switch holds its offer at 0 or 100 %)."""
    chosen = release_admin.chosen_percent(repo, release.version)
    return {**describe(release), "chosen_percent": release.rollout_percent if chosen is None else chosen}


@router.put("/admin/releases/{version}")
async def put_release(
    version: str,
    request: Request,
    rollout_percent: str | None = Query(None),  # checked by the service, after the role
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    actor = actor_of(user, request)
    # refuse a non-admin before reading a byte of a body that may be hundreds of MB
    await run_in_threadpool(release_admin.require_admin, session, actor, release_admin.ACTION, version)
    ctx.settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=ctx.settings.tmp_dir, prefix="release-", suffix=".tar.gz") as tmp:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_RELEASE_BYTES:
                raise InvalidInput(
                    "release_too_large", f"a release archive may be at most {MAX_RELEASE_BYTES} bytes"
                )
            tmp.write(chunk)
        tmp.flush()
        if size == 0:
            raise InvalidInput("empty_release", "send the bundle archive (.tar.gz) as the request body")
        release = await run_in_threadpool(
            release_admin.publish,
            session,
            actor,
            _repo(ctx),
            ctx.settings.release_keys_dir,
            version,
            Path(tmp.name),
            rollout_percent,
        )
    return _described(_repo(ctx), release)


@router.patch("/admin/releases/{version}")
def patch_release(
    version: str,
    body: dict[str, Any],
    request: Request,
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    rollout = body.get("rollout_percent")
    release = release_admin.set_rollout(
        session, actor_of(user, request), _repo(ctx), ctx.settings.release_keys_dir, version, rollout
    )
    return _described(_repo(ctx), release)


@router.put("/admin/release-policy")
def put_release_policy(
    body: dict[str, Any],
    request: Request,
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    return release_admin.set_policy(
        session, actor_of(user, request), _repo(ctx), ctx.settings.release_keys_dir, body
    )
