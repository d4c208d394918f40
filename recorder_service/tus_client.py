"""A small tus 1.0.0 client (core + creation + checksum + termination) on httpx: the requests the
segment uploader makes, and what each answer means (docs/screen-segments.md).

Why our own rather than ``tuspy``: tuspy pulls in ``requests`` (and ``aiohttp`` for its async
client) beside the ``httpx`` the recorder already uses for everything else, and it offers no hook
to pace the body's bytes, which the admin's bandwidth cap needs; its retry loop would also sit
beside ours (backoff, upload window, 401 handling). The protocol subset we use is five requests:
this module is them, and nothing else. The server is tested against tuspy, so an independent
client keeps both sides honest.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

TUS_VERSION = "1.0.0"
SHA_HEADER = "X-Tandem-Sha256"


class TusError(Exception):
    """A tus request failed. ``status`` is None when no HTTP answer came (the connection was
    refused, cut or timed out): the bytes may or may not have reached the server."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        body: dict[str, object] | None = None,
        offset: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code  # the server's ``error`` field, e.g. "offset_mismatch"
        self.body = body or {}
        self.offset = offset  # the server's Upload-Offset, when the answer carried one
        self.retry_after = retry_after

    @property
    def network(self) -> bool:
        return self.status is None


@dataclass(frozen=True, slots=True)
class Created:
    location: str  # absolute URL of the upload
    offset: int  # bytes the server already holds (non-zero when a lost 201 was retried)


@dataclass(frozen=True, slots=True)
class Patched:
    offset: int
    server_sha256: str | None  # present when this PATCH completed the upload and it was stored


def encode_metadata(metadata: dict[str, str]) -> str:
    """tus ``Upload-Metadata``: ``key base64(value)`` pairs, comma-separated."""
    for key in metadata:
        if not key or any(c in key for c in " ,") or not key.isascii():
            raise ValueError(f"bad tus metadata key {key!r}")
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode('ascii')}" for k, v in metadata.items())


def chunk_checksum(data: bytes) -> str:
    """``Upload-Checksum`` value for one PATCH body."""
    return "sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


class TusClient:
    """One server, one credential source. ``token`` is asked at every request so a renewed token
    is used at once. ``pace(n)`` is called before each slice of ``n`` body bytes leaves (the
    bandwidth cap blocks in it); ``sent(n)`` after the slice was handed to the connection."""

    def __init__(
        self,
        server_url: str,
        token: Callable[[], str],
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._base = server_url.rstrip("/") + "/"
        self._token = token
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=1),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Tus-Resumable": TUS_VERSION, "Authorization": f"Bearer {self._token()}", **(extra or {})}

    def create(self, path: str, length: int, metadata: dict[str, str]) -> Created:
        """POST (creation): a new upload of ``length`` bytes, or the one already under way for the
        same metadata (the server answers with its Location and offset)."""
        url = urljoin(self._base, path.lstrip("/"))
        headers = self._headers({"Upload-Length": str(length), "Upload-Metadata": encode_metadata(metadata)})
        response = self._send("POST", url, headers)
        if response.status_code != 201:
            raise _http_error("create", response)
        location = response.headers.get("Location")
        if not location:
            raise TusError("create: the server's 201 has no Location", status=201)
        return Created(urljoin(url, location), _offset(response) or 0)

    def head(self, location: str) -> int:
        """The bytes the server holds for this upload. ``TusError`` 404: unknown, finished or
        expired — start again with ``create``."""
        response = self._send("HEAD", location, self._headers({"Cache-Control": "no-store"}))
        if response.status_code not in (200, 204):
            raise _http_error("head", response)
        offset = _offset(response)
        if offset is None:
            raise TusError("head: the server's answer has no Upload-Offset", status=response.status_code)
        return offset

    def patch(
        self,
        location: str,
        offset: int,
        data: bytes,
        *,
        pace: Callable[[int], None] | None = None,
        sent: Callable[[int], None] | None = None,
        slice_size: int = 16 * 1024,
    ) -> Patched:
        """Append ``data`` at ``offset``, with its sha256 so the server discards a damaged chunk
        (460). The body goes out in slices through ``pace``: that is where the cap bites."""

        def body() -> Iterator[bytes]:
            for start in range(0, len(data), slice_size):
                piece = data[start : start + slice_size]
                if pace is not None:
                    pace(len(piece))
                yield piece
                if sent is not None:
                    sent(len(piece))

        headers = self._headers(
            {
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(len(data)),
                "Upload-Offset": str(offset),
                "Upload-Checksum": chunk_checksum(data),
            }
        )
        response = self._send("PATCH", location, headers, body())
        if response.status_code not in (200, 204):
            raise _http_error("patch", response)
        new_offset = _offset(response)
        if new_offset is None:
            raise TusError("patch: the server's answer has no Upload-Offset", status=response.status_code)
        sha = response.headers.get(SHA_HEADER)
        return Patched(new_offset, sha.strip().lower() if sha else None)

    def delete(self, location: str) -> None:
        """Termination: the server drops the partial bytes (a 404 means they are gone already)."""
        response = self._send("DELETE", location, self._headers())
        if response.status_code not in (200, 204, 404):
            raise _http_error("delete", response)

    def _send(
        self, method: str, url: str, headers: dict[str, str], content: Iterator[bytes] | None = None
    ) -> httpx.Response:
        try:
            return self._http.request(method, url, headers=headers, content=content)
        except httpx.HTTPError as exc:
            raise TusError(f"{method.lower()}: {exc.__class__.__name__}: {exc}".rstrip(": ")) from exc


def pause_spans(body: dict[str, object]) -> list[tuple[float, float | None]]:
    """Pause spans from a ``422 frames_in_pause`` body (our extension of the answer): ``spans`` as
    objects with ``started_at`` and ``ended_at`` (what the server sends; also ``start``/``end``)
    or ``[start, end]`` pairs, in server time; an end ``null`` = still open."""
    raw = body.get("spans")
    spans: list[tuple[float, float | None]] = []
    if not isinstance(raw, list):
        return spans
    for item in raw:
        if isinstance(item, dict):
            start = item.get("started_at", item.get("start"))
            end = item.get("ended_at", item.get("end"))
        elif isinstance(item, list | tuple) and len(item) == 2:
            start, end = item
        else:
            continue
        if isinstance(start, int | float) and (end is None or isinstance(end, int | float)):
            spans.append((float(start), None if end is None else float(end)))
    return spans


def _offset(response: httpx.Response, default: int | None = None) -> int | None:
    raw = response.headers.get("Upload-Offset")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value >= 0 else default


def _http_error(what: str, response: httpx.Response) -> TusError:
    try:
        raw = json.loads(response.content) if response.content else {}
    except (ValueError, UnicodeDecodeError):
        raw = {}
    body = raw if isinstance(raw, dict) else {}
    code = str(body.get("error", ""))
    message = str(body.get("message", "")) or response.text[:200].strip()
    retry_after: float | None = None
    try:
        retry_after = float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        pass
    text = (
        f"{what}: HTTP {response.status_code}{' ' + code if code else ''}{': ' + message if message else ''}"
    )
    return TusError(
        text,
        status=response.status_code,
        code=code,
        body=body,
        offset=_offset(response),
        retry_after=retry_after,
    )
