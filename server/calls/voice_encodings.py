"""Encoding a finished call's voice WAV into the admin's selected formats, one failure at a time.

``finalise`` makes every format in one streaming pass and is all-or-nothing; here a failed pass
is retried per format, so one format that cannot be made (a missing encoder, a full disk for one
file) costs only itself. Imports PyAV: load it from worker threads, not at server start-up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from server.errors import EmptyRecordingError, ProbeError, VoiceFormatError
from server.media.probe import container_duration
from server.policy.voice_formats import CONTENT_TYPES, ordered
from server.voice.formats import SPECS, VoiceFormat, encoder_available, finalise

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Encoded:
    fmt: str
    path: Path
    name: str  # file name in storage, next to the master ``voice.wav``
    content_type: str
    duration: float | None


@dataclass
class EncodeResult:
    encoded: list[Encoded] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # format -> reason
    empty: bool = False  # the call holds no audio: only the WAV is kept


def supported_formats() -> list[str]:
    return ordered(fmt.value for fmt in VoiceFormat)


def format_available(fmt: str) -> bool:
    """Whether this FFmpeg build can make ``fmt`` (μ-law needs no encoder of FFmpeg's)."""
    encoders = SPECS[VoiceFormat(fmt)].encoders
    return not encoders or any(encoder_available(e.codec) for e in encoders)


def stored_name(fmt: str) -> str:
    return f"voice{SPECS[VoiceFormat(fmt)].suffix}"


def _duration(path: Path, fallback: float | None) -> float | None:
    try:
        return container_duration(path)
    except ProbeError as exc:
        log.warning("cannot read the duration of %s (%s); using the source's", path, exc)
        return fallback


def encode_selected(
    source: Path, out_dir: Path, formats: list[str], source_duration: float | None = None
) -> EncodeResult:
    """Encode ``source`` into each of ``formats`` under ``out_dir`` (which should be empty)."""
    result = EncodeResult()
    wanted = [VoiceFormat(fmt) for fmt in ordered(formats)]
    if not wanted:
        return result
    try:
        paths = finalise(source, out_dir, wanted)
    except EmptyRecordingError:
        result.empty = True
        return result
    except VoiceFormatError as exc:
        if len(wanted) == 1:
            result.failed[wanted[0].value] = str(exc)
            return result
        log.warning("finalising %s in one pass failed (%s); trying each format alone", source, exc)
        paths = {}
        for fmt in wanted:
            try:
                paths.update(finalise(source, out_dir, [fmt]))
            except VoiceFormatError as one:
                result.failed[fmt.value] = str(one)
    for fmt, path in paths.items():
        result.encoded.append(
            Encoded(
                fmt.value,
                path,
                stored_name(fmt.value),
                CONTENT_TYPES[fmt.value],
                _duration(path, source_duration),
            )
        )
    return result
