"""Exceptions of the media package, so callers can catch one family instead of PyAV's own."""

from __future__ import annotations


class MediaError(Exception):
    """Base class of every error raised by :mod:`server.media`."""


class MuxError(MediaError):
    """Screen and voice could not be combined (missing stream, corrupt input, bad timing)."""


class ProbeError(MediaError, ValueError):
    """A media file is unreadable or malformed (bad header, truncated, unknown layout)."""
