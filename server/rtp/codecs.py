"""The audio codecs an RTP session can record: name → static payload type and G.711 functions.

Only the payload type negotiated for the call is audio; anything else on the port (DTMF
telephone-event, comfort noise, a codec that was not agreed) is dropped by the session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from server.rtp.errors import UnsupportedCodecError
from server.voice import g711


@dataclass(frozen=True, slots=True)
class AudioCodec:
    name: str
    payload_type: int
    clock_rate: int
    decode: Callable[[bytes], npt.NDArray[np.int16]]
    encode: Callable[[npt.NDArray[np.int16]], bytes]


CODECS: dict[str, AudioCodec] = {
    "PCMU": AudioCodec("PCMU", 0, 8000, g711.ulaw_decode, g711.ulaw_encode),
    "PCMA": AudioCodec("PCMA", 8, 8000, g711.alaw_decode, g711.alaw_encode),
}


def codec_by_name(name: str) -> AudioCodec:
    try:
        return CODECS[name.upper()]
    except KeyError:
        supported = ", ".join(sorted(CODECS))
        raise UnsupportedCodecError(f"codec {name!r} is not supported (use one of {supported})") from None
