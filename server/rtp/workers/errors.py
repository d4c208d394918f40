"""Exceptions of the RTP worker processes.

``RtpWorkerError`` is an ``RtpSessionError``: to the SIP layer a call whose media cannot be opened
in a worker is the same as one whose ports cannot be bound (``503 No Media Port``).
"""

from __future__ import annotations

from server.rtp.errors import RtpSessionError


class RtpWorkerError(RtpSessionError):
    """Base of the worker errors."""


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
