"""ITU-T G.711 μ-law and A-law, table-driven with numpy.

Telephony RTP carries 8-bit G.711 codes; the voice file holds 16-bit linear PCM. Decoding is a
256-entry table lookup; encoding is a 65536-entry lookup built once by a vectorised version of the
reference segment search (the well-known Sun Microsystems g711.c, which CPython's ``audioop``
also uses), so both directions match the reference bit for bit and cost one numpy take per packet.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]

_QUANT_MASK = 0x0F
_SEG_SHIFT = 4
_SEG_MASK = 0x70
_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159  # in the 14-bit domain the μ-law encoder works in
_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_SEG_AEND = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def _ulaw_decode_code(code: int) -> int:
    u = ~code & 0xFF
    t = (((u & _QUANT_MASK) << 3) + _ULAW_BIAS) << ((u & _SEG_MASK) >> _SEG_SHIFT)
    return _ULAW_BIAS - t if u & 0x80 else t - _ULAW_BIAS


def _alaw_decode_code(code: int) -> int:
    a = code ^ 0x55
    t = (a & _QUANT_MASK) << 4
    seg = (a & _SEG_MASK) >> _SEG_SHIFT
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


def _ulaw_encode_vec(pcm: npt.NDArray[np.int32]) -> npt.NDArray[np.uint8]:
    value = pcm >> 2
    negative = value < 0
    mask = np.where(negative, 0x7F, 0xFF)
    value = np.minimum(np.abs(value), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(_SEG_UEND, value, side="left")
    shift = np.minimum(seg, 7) + 1
    code = (np.minimum(seg, 7) << 4) | ((value >> shift) & _QUANT_MASK)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _alaw_encode_vec(pcm: npt.NDArray[np.int32]) -> npt.NDArray[np.uint8]:
    value = pcm >> 3
    negative = value < 0
    mask = np.where(negative, 0x55, 0xD5)
    value = np.where(negative, -value - 1, value)
    seg = np.searchsorted(_SEG_AEND, value, side="left")
    segc = np.minimum(seg, 7)
    quant = np.where(segc < 2, value >> 1, value >> np.maximum(segc, 1)) & _QUANT_MASK
    code = np.where(seg >= 8, 0x7F, (segc << _SEG_SHIFT) | quant)
    return (code ^ mask).astype(np.uint8)


_ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32)
# Indexed by the int16 sample reinterpreted as uint16, so the lookup needs no offset arithmetic.
_ULAW_ENCODE = np.roll(_ulaw_encode_vec(_ALL_INT16), -32768)
_ALAW_ENCODE = np.roll(_alaw_encode_vec(_ALL_INT16), -32768)
ULAW_DECODE: Int16Array = np.array([_ulaw_decode_code(c) for c in range(256)], dtype=np.int16)
ALAW_DECODE: Int16Array = np.array([_alaw_decode_code(c) for c in range(256)], dtype=np.int16)
for _table in (_ULAW_ENCODE, _ALAW_ENCODE, ULAW_DECODE, ALAW_DECODE):
    _table.setflags(write=False)


def _as_int16(pcm: npt.ArrayLike) -> Int16Array:
    array = np.asarray(pcm)
    if array.dtype != np.int16:
        raise TypeError(f"G.711 encodes int16 samples, got {array.dtype}")
    return array.reshape(-1)


def ulaw_decode(data: bytes) -> Int16Array:
    """μ-law codes → 16-bit linear samples."""
    return ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def alaw_decode(data: bytes) -> Int16Array:
    """A-law codes → 16-bit linear samples."""
    return ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def ulaw_encode(pcm: npt.ArrayLike) -> bytes:
    """16-bit linear samples → μ-law codes."""
    return _ULAW_ENCODE[_as_int16(pcm).view(np.uint16)].tobytes()


def alaw_encode(pcm: npt.ArrayLike) -> bytes:
    """16-bit linear samples → A-law codes."""
    return _ALAW_ENCODE[_as_int16(pcm).view(np.uint16)].tobytes()
