"""Which formats each call's voice is finalised into: names, labels, the stored setting, validation.

The 16-bit PCM WAV the server records is always kept as the master; the admin picks which
encodings are made from it besides (``server.voice.formats`` does the encoding). Each encoding
is stored as media kind ``voice:<format>`` so the ``voice`` kind, the mux and the player stay as
they were. Pure: no PyAV here (it loads only when media work starts), callers pass in which
formats this server's FFmpeg build can encode.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable

from server.errors import VoiceFormatsPolicyError

log = logging.getLogger(__name__)

VOICE_FORMATS_KEY = "voice_formats"  # Setting row: JSON list of format names
KIND_PREFIX = "voice:"

# Display order; keys are ``server.voice.formats.VoiceFormat`` values (a unit test keeps them equal).
LABELS: dict[str, str] = {
    "mp3_8k_mono": "MP3 8 kbit/s mono",
    "mp3_16k_stereo": "MP3 16 kbit/s stereo",
    "mp3_32k_stereo": "MP3 32 kbit/s stereo",
    "wav_ulaw": "WAV G.711 μ-law (analytics)",
    "opus": "Opus (Ogg)",
}
CONTENT_TYPES: dict[str, str] = {
    "mp3_8k_mono": "audio/mpeg",
    "mp3_16k_stereo": "audio/mpeg",
    "mp3_32k_stereo": "audio/mpeg",
    "wav_ulaw": "audio/wav",
    "opus": "audio/ogg",
}
# GIR's default playback format; the WAV master is kept on top of it.
DEFAULT_FORMATS: tuple[str, ...] = ("mp3_16k_stereo",)


def media_kind(fmt: str) -> str:
    # media_files.kind is String(20): the longest, "voice:mp3_16k_stereo", is exactly 20.
    return f"{KIND_PREFIX}{fmt}"


def format_of_kind(kind: str) -> str | None:
    """The format of a ``voice:<format>`` media kind, None for any other kind."""
    if not kind.startswith(KIND_PREFIX):
        return None
    fmt = kind[len(KIND_PREFIX) :]
    return fmt if fmt in LABELS else None


def ordered(formats: Iterable[str]) -> list[str]:
    """Known formats among ``formats``, once each, in display order."""
    wanted = set(formats)
    return [fmt for fmt in LABELS if fmt in wanted]


def validate(formats: list[str], available: Callable[[str], bool]) -> list[str]:
    """The selection to store, or ``VoiceFormatsPolicyError`` naming what is wrong with it."""
    unknown = sorted({fmt for fmt in formats if fmt not in LABELS})
    if unknown:
        raise VoiceFormatsPolicyError(
            "unknown_voice_format",
            f"unknown voice format(s) {', '.join(map(repr, unknown))}; known: {', '.join(LABELS)}",
        )
    chosen = ordered(formats)
    missing = [fmt for fmt in chosen if not available(fmt)]
    if missing:
        raise VoiceFormatsPolicyError(
            "voice_format_unavailable",
            f"this server's FFmpeg cannot encode {', '.join(missing)}",
        )
    return chosen


def parse_stored(value: str | None) -> list[str]:
    """The stored selection; the default when unset. A damaged or stale value is logged, and
    whatever known formats it still names are used (an empty list is a valid choice: WAV only)."""
    if value is None:
        return list(DEFAULT_FORMATS)
    try:
        data = json.loads(value)
    except ValueError:
        log.error("setting %s is not JSON (%r); using the default", VOICE_FORMATS_KEY, value[:100])
        return list(DEFAULT_FORMATS)
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        log.error("setting %s is not a list of names (%r); using the default", VOICE_FORMATS_KEY, data)
        return list(DEFAULT_FORMATS)
    chosen = ordered(data)
    stale = set(data) - set(chosen)
    if stale:
        log.warning("setting %s names unknown formats %s; ignored", VOICE_FORMATS_KEY, sorted(stale))
    return chosen


def dump(formats: list[str]) -> str:
    return json.dumps(ordered(formats))
