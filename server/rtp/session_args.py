"""``RtpSession.open``'s arguments checked before any port is bound or file created."""

from __future__ import annotations

from pathlib import Path

from server.errors import RtpSessionError, VoiceError
from server.rtp.codecs import codec_by_name
from server.rtp.decoder import PayloadDecoder
from server.rtp.sink import VoiceSink


def validated_arguments(
    codec: str,
    port_range: tuple[int, int],
    voice_path: Path | None,
    writer: VoiceSink | None,
    sample_rate: int | None,
    payload_type: int | None,
    telephone_event_pt: int | None,
) -> tuple[int, PayloadDecoder]:
    """``RtpSession.open``'s arguments checked: the codec's payload type and its decoder."""
    audio_codec = codec_by_name(codec)
    low, high = port_range
    if not 0 < low <= high <= 65535:
        raise RtpSessionError(f"invalid RTP port range {low}-{high}")
    audio_pt = audio_codec.payload_type if payload_type is None else payload_type
    for name, value in (("payload_type", audio_pt), ("telephone_event_pt", telephone_event_pt)):
        if value is not None and not 0 <= value <= 127:
            raise RtpSessionError(f"{name} {value} is outside 0..127")
    if telephone_event_pt == audio_pt:
        raise RtpSessionError(f"telephone-event and {audio_codec.name} share payload type {audio_pt}")
    if writer is None and voice_path is None:
        raise RtpSessionError("either voice_path or writer is needed")
    try:
        return audio_pt, PayloadDecoder(audio_codec, sample_rate)
    except VoiceError as exc:
        raise RtpSessionError(f"cannot decode {audio_codec.name}: {exc}") from exc
