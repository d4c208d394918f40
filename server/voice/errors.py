"""Exceptions of the voice layer (G.711, the WAV writer, the timeline)."""

from __future__ import annotations


class VoiceError(Exception):
    """Base of every error raised by ``server.voice``."""


class WavWriterError(VoiceError):
    """The voice file could not be created or written."""


class WavSizeLimitError(WavWriterError):
    """Appending would make the RIFF/data sizes overflow their 32-bit fields."""


class TimelineError(VoiceError, ValueError):
    """The timeline was used against its contract (e.g. a push after ``finish``)."""
