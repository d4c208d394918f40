"""Every exception the server raises on purpose, in one tree.

::

    TandemError
    ├── ConfigError                  settings cannot be loaded (which key, why)
    ├── DataDirInUseError            another live server holds the data directory's lock
    ├── NoDatabaseError              a CLI command found no database where it looked
    ├── SipError                     the SIP engine (server.sip)
    │   ├── SipParseError (ValueError)    not well-formed SIP; ``status`` to answer (400, 505, …)
    │   │   └── SipFramingError           a stream cannot be cut into messages; close it
    │   ├── SdpError (ValueError)         SDP unparseable or nothing recordable (488)
    │   ├── SiprecError (ValueError)      an offer we cannot take; ``status`` (400, 415, 488)
    │   ├── MultipartError (ValueError)   a multipart body that cannot be split (400)
    │   └── SipTransportError             the SIP socket could not be bound or used
    ├── RtpError                     the RTP stack (server.rtp, server.callmedia)
    │   ├── RtpPacketError (ValueError)   not a well-formed RTP packet
    │   ├── RtcpPacketError (ValueError)  not a well-formed RTCP compound packet
    │   └── RtpSessionError               a call's media cannot be opened (SIP: 503)
    │       ├── PortRangeExhaustedError
    │       ├── UnsupportedCodecError (ValueError)
    │       └── RtpWorkerError            … in an RTP worker process (server.rtp.workers)
    │           ├── NoWorkerError, WorkerTimeoutError, WorkerGoneError, WorkerOpenError
    │           └── FrameError            a malformed frame: the worker counts as dead
    ├── VoiceError                   voice files and codecs (server.voice)
    │   ├── WavWriterError                the voice file cannot be created or written
    │   │   └── WavSizeLimitError         RIFF's 32-bit sizes would overflow
    │   ├── TimelineError (ValueError), AlignerError (ValueError)   used against their contract
    │   ├── G722Error (ValueError)        FFmpeg cannot decode or encode G.722
    │   └── VoiceFormatError              a voice file cannot be finalised into a format
    │       └── EmptyRecordingError       nothing to encode (a call never answered)
    ├── MediaError                   mux and probe (server.media)
    │   ├── MuxError, ProbeError (ValueError)
    ├── ScreenRejected (ValueError)  an upload that is no acceptable screen recording
    ├── StorageError                 the recordings store (server.store.storage)
    │   ├── StorageFullError              no space left (HTTP 507)
    │   └── StorageKeyExistsError         a key already stored: never overwritten
    ├── MediaExistsError             voice/screen of an interaction already stored (409)
    ├── MediaBusyError               another writer holds the claim on it right now
    ├── AuditChainError (RuntimeError)  the audit chain cannot be extended
    ├── CheckpointError              an audit checkpoint or key cannot be read or written
    ├── DomainError                  a use case refused (server.services); ``code`` + ``message``
    │   ├── InvalidInput, NotFound, Conflict, Forbidden
    ├── EnrolmentError               recorder enrolment refused; ``status``, ``code``
    ├── CallActionError              an agent action on a call refused; ``status``, ``code``
    ├── LifecycleError               a transition the interaction's state does not allow
    ├── PolicyError (ValueError), VoiceFormatsPolicyError (ValueError)   a policy not storable
    ├── PasswordCheckBusy            too many password hashes running; retry shortly
    ├── UserExistsError
    ├── RangeNotSatisfiable          an HTTP Range selecting no byte (416)
    └── SimulatedCallError           ``tandem-server sim`` failed; ``status`` if refused

Callers catch the narrowest class they can handle; ``TandemError`` is every failure the server
means to raise, never a programming error. Where a failure is also bad input, the class is a
``ValueError`` as well. HTTP statuses are chosen in ``server.api.errors`` (domain errors) and by
the routes; the CLI prints the message. Exceptions used only as control flow inside one module
(leading underscore) stay there.
"""

from __future__ import annotations

from pathlib import Path


class TandemError(Exception):
    """Base of every exception the server raises on purpose."""


# ---- start-up and configuration ------------------------------------------------------------


class ConfigError(TandemError):
    """Settings could not be loaded; the message says which key and why."""


class DataDirInUseError(TandemError):
    """Another live process holds the data directory's lock."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        holder = f"server pid {pid}" if pid is not None else "another server (pid unknown)"
        super().__init__(f"data directory {data_dir} is in use by {holder}")
        self.pid = pid


class NoDatabaseError(TandemError):
    """The command needs the server's database and there is none where it looked."""


# ---- SIP -------------------------------------------------------------------------------------


class SipError(TandemError):
    """Base of all SIP engine errors."""


class SipParseError(SipError, ValueError):
    """A datagram is not a well-formed SIP message (RFC 3261 §25 / RFC 4475)."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class SipFramingError(SipParseError):
    """The stream cannot be cut into messages at this point; ``head`` holds what was read of the
    offending message (for building an error response) and the connection must be closed."""

    def __init__(self, reason: str, status: int = 400, head: bytes = b"") -> None:
        super().__init__(reason, status)
        self.head = head


class SdpError(SipError, ValueError):
    """An SDP body cannot be parsed, or offers nothing we can record (answer 488)."""


class SiprecError(SipError, ValueError):
    """An offer the recorder cannot take, with the SIP status to answer (400, 415 or 488)."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class MultipartError(SipError, ValueError):
    """A multipart body cannot be split into parts (a UAS answers 400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SipTransportError(SipError):
    """The UDP socket could not be bound or used."""


# ---- RTP and the worker processes ------------------------------------------------------------


class RtpError(TandemError):
    """Base of every error raised by ``server.rtp``."""


class RtpPacketError(RtpError, ValueError):
    """A datagram is not a well-formed RTP packet; the message says why."""


class RtcpPacketError(RtpError, ValueError):
    """A datagram is not a well-formed RTCP compound packet; the message says why."""


class RtpSessionError(RtpError):
    """An RTP session could not be opened or used."""


class PortRangeExhaustedError(RtpSessionError):
    """Every even port of the configured range is in use."""


class UnsupportedCodecError(RtpSessionError, ValueError):
    """The codec name is not one this server can decode."""


class RtpWorkerError(RtpSessionError):
    """Base of the worker errors: to the SIP layer a call whose media cannot be opened in a worker
    is the same as one whose ports cannot be bound (``503 No Media Port``)."""


class NoWorkerError(RtpWorkerError):
    """No worker is alive (or none has a port range) to take a new call."""


class WorkerTimeoutError(RtpWorkerError):
    """A worker did not answer within the time allowed."""


class WorkerGoneError(RtpWorkerError):
    """The worker died (or the pool stopped) while a request was waiting for it."""


class WorkerOpenError(RtpWorkerError):
    """The worker could not open the call's media; the message is the worker's error."""


class FrameError(RtpWorkerError):
    """A frame on a worker stream is malformed; the stream (and so the worker) counts as dead."""


# ---- voice -------------------------------------------------------------------------------------


class VoiceError(TandemError):
    """Base of every error raised by ``server.voice``."""


class WavWriterError(VoiceError):
    """The voice file could not be created or written."""


class WavSizeLimitError(WavWriterError):
    """Appending would make the RIFF/data sizes overflow their 32-bit fields."""


class TimelineError(VoiceError, ValueError):
    """The timeline was used against its contract (e.g. a push after ``finish``)."""


class AlignerError(VoiceError, ValueError):
    """The aligner was used against its contract (bad channel, non-int16 samples, after finish)."""


class G722Error(VoiceError, ValueError):
    """FFmpeg could not decode or encode G.722 data."""


class VoiceFormatError(VoiceError):
    """The voice file could not be finalised into a requested format."""


class EmptyRecordingError(VoiceFormatError):
    """The source holds no samples (a call never answered): keep its WAV, encode nothing."""


# ---- media: mux, probe, uploads --------------------------------------------------------------


class MediaError(TandemError):
    """Base class of every error raised by :mod:`server.media`'s mux and probe."""


class MuxError(MediaError):
    """Screen and voice could not be combined (missing stream, corrupt input, bad timing)."""


class ProbeError(MediaError, ValueError):
    """A media file is unreadable or malformed (bad header, truncated, unknown layout)."""


class ScreenRejected(TandemError, ValueError):
    """The upload is not an acceptable screen recording; ``code`` is stable, ``message`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---- storage and the audit log ---------------------------------------------------------------


class StorageError(TandemError):
    """A storage operation failed; the message is fit for an operator."""


class StorageFullError(StorageError):
    """No space left: the caller answers 507 and keeps nothing half-written."""


class StorageKeyExistsError(StorageError):
    """Something is already stored under the key: recordings are never overwritten."""


class MediaExistsError(TandemError):
    """The kind is already stored for this interaction and is never replaced."""

    def __init__(self, interaction_id: str, kind: str, sha256: str) -> None:
        super().__init__(f"the {kind} recording of {interaction_id} is already stored (sha256 {sha256})")
        self.sha256 = sha256


class MediaBusyError(TandemError):
    """Another writer holds the claim on this (interaction, kind) right now; retry later."""


class AuditChainError(TandemError, RuntimeError):
    """The chain cannot be extended (its head row is gone): nothing is written unchained."""


class CheckpointError(TandemError):
    """A checkpoint or key could not be read or written; the message names the file."""


# ---- use cases and rules -----------------------------------------------------------------------


class DomainError(TandemError):
    """Why a use case refused, independent of the door it came through.

    The API maps each subclass to an HTTP status (``server.api.errors``); the CLI prints
    ``error: <message>`` and exits 1. ``code`` is the API's ``error`` field and never changes for
    a given refusal, so clients can branch on it; ``message`` is a sentence for people.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidInput(DomainError):
    """The request itself is wrong: a bad DN, a percentage of 150."""


class NotFound(DomainError):
    """What it names does not exist: an unknown agent or team."""


class Conflict(DomainError):
    """It clashes with the current state: a DN another agent holds."""


class Forbidden(DomainError):
    """The actor may not do this."""


class EnrolmentError(TandemError):
    """A refused issue or exchange: ``status`` and ``code`` for the API, ``message`` for people."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class CallActionError(TandemError):
    """An agent action that cannot be carried out; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class LifecycleError(TandemError):
    """A transition that the interaction's current state does not allow."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class PolicyError(TandemError, ValueError):
    """A password policy that cannot be stored; the message says which field and why."""


class VoiceFormatsPolicyError(TandemError, ValueError):
    """A voice-format selection that cannot be stored; ``code`` is the API's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class PasswordCheckBusy(TandemError):
    """Too many password computations already running or waiting; try again shortly."""


class UserExistsError(TandemError):
    """A user of that name already exists."""


class RangeNotSatisfiable(TandemError):
    """A syntactically valid range that selects no byte of the file (answer 416)."""


class SimulatedCallError(TandemError):
    """The simulated call failed; ``status`` is the SIP status if the server refused it."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
