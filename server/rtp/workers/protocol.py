"""Messages between the main process and an RTP worker, and their framing on the stream (pure).

Commands go main → worker, ordered on the one stream per worker: ``Open``, then ``Start``,
``Pause``, ``Resume``, ``Relatch`` and finally ``Close`` for a session. The worker answers
``Open`` with ``Opened`` and ``Close`` with ``Closed`` (the final stats); any command it cannot
carry out (an unknown session, a failed open) gets ``Failed``. Every ~0.5 s it sends ``Report``s
with each open session's ``last_packet_at`` and stats.

Framing: a 4-byte big-endian length, then a pickle. Pickle is acceptable here because both ends
are our own processes, started by us over a ``socketpair`` no one else can reach: it carries the
frozen dataclasses (``MediaPlan`` included) as they are, at a fraction of the cost of a textual
format for the thousands of stats a report holds. Defence in depth all the same: the unpickler
only resolves the message and plan classes, a frame is at most ``MAX_FRAME`` bytes, and anything
else is a ``FrameError``, which the reader treats as a dead peer.
"""

from __future__ import annotations

import io
import pickle
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from server.errors import FrameError

if TYPE_CHECKING:
    from server.callmedia.plan import MediaPlan

MAX_FRAME = 8 * 1024 * 1024
REPORT_CHUNK = 200  # sessions per Report frame: keeps frames far below MAX_FRAME at any load
_HEADER = struct.Struct("!I")


# ---- commands (main → worker) ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Open:
    session: int
    bind_host: str
    port_range: tuple[int, int]  # the worker's own sub-range of the configured range
    voice_path: str
    plan: MediaPlan
    # A restarted worker's first open: the last port its predecessor handed out. Its calls may
    # still be sending there, so the search goes on after it rather than at the range's start.
    resume_after: int | None = None


@dataclass(frozen=True, slots=True)
class Start:
    session: int
    at: float


@dataclass(frozen=True, slots=True)
class Pause:
    session: int
    at: float


@dataclass(frozen=True, slots=True)
class Resume:
    session: int
    at: float


@dataclass(frozen=True, slots=True)
class Relatch:
    session: int
    index: int
    remote: tuple[str, int] | None


@dataclass(frozen=True, slots=True)
class Close:
    session: int
    ended_at: float


Command = Open | Start | Pause | Resume | Relatch | Close
COMMANDS: tuple[type, ...] = (Open, Start, Pause, Resume, Relatch, Close)


# ---- replies and reports (worker → main) -----------------------------------------------------
@dataclass(frozen=True, slots=True)
class Opened:
    session: int
    ports: dict[int, int]  # m-line index → local RTP port


@dataclass(frozen=True, slots=True)
class Closed:
    """The session's file is final; also sent unasked for each session a shutting-down worker closes."""

    session: int
    stats: dict[str, object]


@dataclass(frozen=True, slots=True)
class Failed:
    session: int
    command: str  # the failed command's class name, e.g. "Open"
    error: str


@dataclass(frozen=True, slots=True)
class SessionReport:
    session: int
    last_packet_at: float | None
    stats: dict[str, object]


@dataclass(frozen=True, slots=True)
class Report:
    sessions: tuple[SessionReport, ...]


Reply = Opened | Closed | Failed | Report
REPLIES: tuple[type, ...] = (Opened, Closed, Failed, Report)

_ALLOWED_CLASSES = {(__name__, cls.__name__) for cls in (*COMMANDS, *REPLIES, SessionReport)} | {
    ("server.callmedia.plan", "MediaPlan"),
    ("server.callmedia.plan", "StreamPlan"),
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_CLASSES:
            raise FrameError(f"frame refers to {module}.{name}, which is not a message class")
        return super().find_class(module, name)


def encode_frame(message: Command | Reply) -> bytes:
    """One frame: length, then the pickled message."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    if len(payload) > MAX_FRAME:  # a bug on our side: reports are chunked to stay far below
        raise FrameError(f"{type(message).__name__} frame of {len(payload)} bytes exceeds {MAX_FRAME}")
    return _HEADER.pack(len(payload)) + payload


def decode_payload(payload: bytes, accepted: tuple[type, ...]) -> Any:
    """The message of one frame's payload; ``FrameError`` unless it is one of ``accepted``."""
    try:
        message = _Unpickler(io.BytesIO(payload)).load()
    except FrameError:
        raise
    except Exception as exc:  # pickle raises many kinds on garbage: all mean a corrupt stream
        raise FrameError(f"undecodable frame of {len(payload)} bytes: {exc!r}") from exc
    if not isinstance(message, accepted):
        raise FrameError(f"unexpected message {type(message).__name__}")
    return message


class FrameDecoder:
    """Incremental decoder: bytes as they arrive in, whole messages out."""

    def __init__(self, accepted: tuple[type, ...], max_frame: int = MAX_FRAME) -> None:
        self._accepted = accepted
        self._max_frame = max_frame
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> Iterator[Any]:
        """Yield each message completed by ``data``; raise ``FrameError`` at the first bad frame
        (the messages before it are yielded first). Iterate it to the end."""
        buffer = self._buffer
        buffer += data
        while len(buffer) >= _HEADER.size:
            (length,) = _HEADER.unpack_from(buffer)
            if length == 0 or length > self._max_frame:
                raise FrameError(f"frame length {length} outside 1..{self._max_frame}")
            end = _HEADER.size + length
            if len(buffer) < end:
                return
            payload = bytes(buffer[_HEADER.size : end])
            del buffer[:end]  # CPython drops a bytearray's head without moving the rest
            yield decode_payload(payload, self._accepted)

    def finish(self) -> None:
        """The stream ended: a partial frame left over means the peer died mid-write."""
        if self._buffer:
            raise FrameError(f"stream ended inside a frame ({len(self._buffer)} bytes buffered)")
