"""Finalising a call's voice WAV into the formats the admin selected (Genesys GIR's set).

MP3 8 kbit/s mono (the two channels summed) and 16 or 32 kbit/s stereo for playback, WAV G.711
μ-law for analytics, Opus in Ogg as the modern option. One streaming pass over the source feeds
every selected encoder block by block, so a call of any length costs a few blocks of memory.
Encoders are PyAV's (libmp3lame, libopus, or FFmpeg's native Opus encoder at 48 kHz); a missing
one is a ``VoiceFormatError`` naming it, raised before anything is written. μ-law uses our own
G.711 tables (bit-exact with the reference encoder) and a small RIFF writer. Outputs are written
as ``*.part`` and renamed only when complete, so a crash never leaves a truncated "final" file.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Protocol

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream

from server.errors import EmptyRecordingError, ProbeError, VoiceFormatError
from server.media.riff import WAVE_FORMAT_MULAW, WAVE_FORMAT_PCM, parse_wav
from server.voice.g711 import ulaw_encode
from server.voice.mixdown import downmix

Int16Array = npt.NDArray[np.int16]

BLOCK_SECONDS = 0.5  # source frames read per step


class VoiceFormat(StrEnum):
    MP3_8K_MONO = "mp3_8k_mono"
    MP3_16K_STEREO = "mp3_16k_stereo"
    MP3_32K_STEREO = "mp3_32k_stereo"
    WAV_ULAW = "wav_ulaw"
    OPUS = "opus"


@dataclass(frozen=True)
class Encoder:
    codec: str
    rate: int | None = None  # None: the source's rate
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FormatSpec:
    suffix: str  # appended to the source's stem
    container: str | None  # FFmpeg muxer; None for our own μ-law WAV writer
    channels: int | None  # None: as many as the source
    bit_rate: tuple[int, int] = (0, 0)  # for mono, for stereo output
    encoders: tuple[Encoder, ...] = ()  # preferred first


_OPUS_BIT_RATES = (16_000, 24_000)
SPECS: dict[VoiceFormat, FormatSpec] = {
    VoiceFormat.MP3_8K_MONO: FormatSpec("-8k-mono.mp3", "mp3", 1, (8_000, 8_000), (Encoder("libmp3lame"),)),
    VoiceFormat.MP3_16K_STEREO: FormatSpec(
        "-16k-stereo.mp3", "mp3", 2, (16_000, 16_000), (Encoder("libmp3lame"),)
    ),
    VoiceFormat.MP3_32K_STEREO: FormatSpec(
        "-32k-stereo.mp3", "mp3", 2, (32_000, 32_000), (Encoder("libmp3lame"),)
    ),
    VoiceFormat.WAV_ULAW: FormatSpec("-ulaw.wav", None, None),
    VoiceFormat.OPUS: FormatSpec(
        ".opus",
        "ogg",
        None,
        _OPUS_BIT_RATES,
        (
            # CBR like the MP3s: storage per hour is what the admin chose, silence or not.
            Encoder("libopus", None, {"application": "voip", "vbr": "off"}),
            # FFmpeg's own encoder: 48 kHz only, no VoIP mode, flagged experimental.
            Encoder("opus", 48_000, {"strict": "experimental"}),
        ),
    ),
}


def encoder_available(codec: str) -> bool:
    """Whether this FFmpeg build can encode with ``codec``."""
    if codec not in av.codecs_available:
        return False
    try:
        av.codec.Codec(codec, "w")
    except (av.FFmpegError, ValueError):
        return False
    return True


def output_path(source_wav: Path, out_dir: Path, fmt: VoiceFormat) -> Path:
    return out_dir / f"{source_wav.stem}{SPECS[fmt].suffix}"


class _Sink(Protocol):
    def write(self, frames: Int16Array) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


def _fit_channels(frames: Int16Array, channels: int) -> Int16Array:
    if frames.shape[1] == channels:
        return frames
    if channels == 1:
        return downmix(frames)[:, None]
    return np.repeat(frames[:, :1], channels, axis=1)  # a mono call, both sides of a stereo file


class _AvSink:
    """One PyAV encoder and muxer; the resampler adapts rate, sample format and frame size."""

    def __init__(self, part: Path, spec: FormatSpec, encoder: Encoder, channels: int, rate: int) -> None:
        self._channels = channels
        self._rate = rate
        self._layout = "mono" if channels == 1 else "stereo"
        self._pts = 0
        self._container = av.open(str(part), "w", format=spec.container)
        try:
            if not isinstance(self._container, av.container.OutputContainer):
                raise VoiceFormatError(f"cannot open {part} for writing")
            stream = self._container.add_stream(
                encoder.codec, rate=encoder.rate or rate, options=dict(encoder.options)
            )
            if not isinstance(stream, AudioStream):
                raise VoiceFormatError(f"{encoder.codec} is not an audio encoder")
            self._stream = stream
            context = stream.codec_context
            context.layout = self._layout
            context.bit_rate = spec.bit_rate[channels - 1]
            supported = [f.name for f in context.codec.audio_formats or ()]
            # Prefer 16-bit (our samples' format, no conversion); else whatever the encoder takes.
            preferred = [f for f in ("s16p", "s16") if f in supported] + supported
            context.format = preferred[0] if preferred else "s16"
            context.open()
            self._resampler = av.AudioResampler(
                format=context.format,
                layout=self._layout,
                rate=context.sample_rate,
                frame_size=context.frame_size or None,
            )
        except BaseException:
            self._container.close()
            raise

    def write(self, frames: Int16Array) -> None:
        packed = np.ascontiguousarray(_fit_channels(frames, self._channels)).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(packed, format="s16", layout=self._layout)
        frame.sample_rate = self._rate
        frame.time_base = Fraction(1, self._rate)
        frame.pts = self._pts
        self._pts += len(frames)
        self._encode(self._resampler.resample(frame))

    def close(self) -> None:
        self._encode(self._resampler.resample(None))
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()

    def abort(self) -> None:
        self._container.close()

    def _encode(self, frames: list[av.AudioFrame]) -> None:
        for frame in frames:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)


def ulaw_wav_header(channels: int, rate: int, frames: int) -> bytes:
    """RIFF header of a G.711 μ-law WAV: an 18-byte fmt (tag 7) and the ``fact`` chunk non-PCM needs."""
    data_bytes = frames * channels
    riff_size = 4 + (8 + 18) + (8 + 4) + (8 + data_bytes + (data_bytes & 1))
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHHH", 18, WAVE_FORMAT_MULAW, channels, rate, rate * channels, channels, 8, 0)
        + b"fact"
        + struct.pack("<II", 4, frames)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


class _UlawSink:
    """G.711 μ-law WAV: sizes are written at ``close`` (a partial file is never committed)."""

    def __init__(self, part: Path, channels: int, rate: int) -> None:
        self._channels = channels
        self._rate = rate
        self._frames = 0
        self._file: BinaryIO = part.open("wb")  # a leftover ``.part`` is ours, from a crashed run
        self._file.write(ulaw_wav_header(channels, rate, 0))

    def write(self, frames: Int16Array) -> None:
        self._file.write(ulaw_encode(np.ascontiguousarray(frames)))
        self._frames += len(frames)

    def close(self) -> None:
        if (self._frames * self._channels) & 1:
            self._file.write(b"\0")  # RIFF chunks are padded to an even length
        self._file.seek(0)
        self._file.write(ulaw_wav_header(self._channels, self._rate, self._frames))
        self._file.close()

    def abort(self) -> None:
        self._file.close()


def _choose_encoder(fmt: VoiceFormat) -> Encoder | None:
    spec = SPECS[fmt]
    if not spec.encoders:
        return None
    for encoder in spec.encoders:
        if encoder_available(encoder.codec):
            return encoder
    names = " or ".join(e.codec for e in spec.encoders)
    raise VoiceFormatError(f"{fmt.value}: this FFmpeg build has no {names} encoder")


def finalise(source_wav: Path, out_dir: Path, formats: list[VoiceFormat]) -> dict[VoiceFormat, Path]:
    """Encode the 16-bit PCM ``source_wav`` into each format in ``out_dir``; return the paths.

    Never replaces an existing file. On any error every partial output is removed.
    """
    wanted = list(dict.fromkeys(formats))
    encoders = {fmt: _choose_encoder(fmt) for fmt in wanted}
    targets = {fmt: output_path(source_wav, out_dir, fmt) for fmt in wanted}
    for target in targets.values():
        if target.exists():
            raise VoiceFormatError(f"{target} already exists; not replacing it")
    try:
        with source_wav.open("rb") as source:
            info = parse_wav(source, os.fstat(source.fileno()).st_size)
            if info.format_tag != WAVE_FORMAT_PCM or info.bits_per_sample != 16 or info.channels > 2:
                raise VoiceFormatError(
                    f"{source_wav}: expected 16-bit PCM mono or stereo, got tag {info.format_tag}, "
                    f"{info.bits_per_sample} bits, {info.channels} channels"
                )
            if info.frames == 0:  # MP3 and Ogg cannot hold zero samples; the empty WAV is the record
                raise EmptyRecordingError(f"{source_wav} holds no audio; nothing to encode")
            sinks = _open_sinks(targets, encoders, info.channels, info.rate)
            try:
                _pump(source, info.data_offset, info.frames, info.channels, info.rate, sinks)
                for sink in sinks.values():
                    sink.close()
            except BaseException:
                for sink in sinks.values():
                    sink.abort()
                raise
    except ProbeError as exc:
        _remove_parts(targets.values())
        raise VoiceFormatError(f"cannot read {source_wav}: {exc}") from exc
    except (OSError, av.FFmpegError, ValueError) as exc:
        _remove_parts(targets.values())
        raise VoiceFormatError(f"cannot finalise {source_wav}: {exc}") from exc
    except BaseException:
        _remove_parts(targets.values())
        raise
    try:
        for target in targets.values():
            _commit(target)
    finally:
        _remove_parts(targets.values())  # only left over if a commit failed
    return targets


def _open_sinks(
    targets: dict[VoiceFormat, Path], encoders: dict[VoiceFormat, Encoder | None], channels: int, rate: int
) -> dict[VoiceFormat, _Sink]:
    sinks: dict[VoiceFormat, _Sink] = {}
    try:
        for fmt, target in targets.items():
            spec = SPECS[fmt]
            part = _part(target)
            encoder = encoders[fmt]
            if encoder is None:
                sinks[fmt] = _UlawSink(part, channels, rate)
            else:
                sinks[fmt] = _AvSink(part, spec, encoder, spec.channels or channels, rate)
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise
    return sinks


def _pump(
    reader: BinaryIO, offset: int, frames: int, channels: int, rate: int, sinks: dict[VoiceFormat, _Sink]
) -> None:
    reader.seek(offset)
    block = max(1, round(BLOCK_SECONDS * rate))
    remaining = frames
    while remaining > 0:
        count = min(block, remaining)
        data = reader.read(count * channels * 2)
        got = len(data) // (channels * 2)
        if got == 0:
            break  # the file shrank under us: encode what there was
        chunk = np.frombuffer(data[: got * channels * 2], dtype="<i2").reshape(got, channels)
        for sink in sinks.values():
            sink.write(chunk)
        remaining -= got


def _part(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def _commit(target: Path) -> None:
    part = _part(target)
    try:
        with part.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(part, target)
    except OSError as exc:
        raise VoiceFormatError(f"cannot finalise {target}: {exc}") from exc


def _remove_parts(targets: Iterable[Path]) -> None:
    for target in targets:
        _part(target).unlink(missing_ok=True)
