"""Which formats each call's voice is encoded into besides the WAV master: read and set
(rules in ``server.policy.voice_formats``; what this server's FFmpeg can encode from
``server.calls.voice_encodings``, which loads PyAV — hence the imports inside)."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from server.errors import InvalidInput, VoiceFormatsPolicyError
from server.policy import voice_formats
from server.services.actor import Actor, record, refuse
from server.store import models
from tandem_protocol.payloads import VoiceFormatOption, VoiceFormatsPolicy

ACTION = "policy.voice_formats"


def read(session: Session) -> VoiceFormatsPolicy:
    from server.calls.voice_encodings import format_available, supported_formats

    row = session.get(models.Setting, voice_formats.VOICE_FORMATS_KEY)
    options = [
        VoiceFormatOption(fmt, voice_formats.LABELS[fmt], format_available(fmt))
        for fmt in supported_formats()
    ]
    return VoiceFormatsPolicy(voice_formats.parse_stored(row.value if row else None), options)


def set_formats(session: Session, actor: Actor, formats: list[str]) -> list[str]:
    """Store the selection (in display order) and audit it; returns what was stored."""
    from server.calls.voice_encodings import format_available, supported_formats

    supported = set(supported_formats())

    def available(fmt: str) -> bool:
        return fmt in supported and format_available(fmt)

    try:
        chosen = voice_formats.validate(formats, available)
    except VoiceFormatsPolicyError as exc:
        error = InvalidInput(exc.code, str(exc))
        raise refuse(
            session, actor, error, action=ACTION, target_type="policy", target_id="voice_formats"
        ) from exc
    value = voice_formats.dump(chosen)
    row = session.get(models.Setting, voice_formats.VOICE_FORMATS_KEY)
    if row is None:
        session.add(models.Setting(key=voice_formats.VOICE_FORMATS_KEY, value=value))
    else:
        row.value = value
    record(
        session,
        actor,
        action=ACTION,
        target_type="policy",
        target_id="voice_formats",
        detail=json.dumps({"formats": chosen}),
    )
    session.flush()
    return chosen
