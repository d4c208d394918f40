"""SDP (RFC 4566) offer parsing and ``recvonly`` answer building for recording.

Plain calls: the first audio stream; PCMU (PT 0) or PCMA (PT 8), chosen in the offer's order; the
answer rejects other media with port 0 as RFC 3264 §6 requires. SIPREC calls (RFC 7866 §8.1) offer
one ``sendonly`` audio stream per leg, told apart by ``a=label``: ``audio_streams`` describes each
of them and ``build_multistream_answer`` answers every one in order, refusing the unusable ones.

A recorder answers *every* offered payload type it can decode (RFC 3264 §6.1 lets the answer
list several; the sender may then switch between them at any packet): G.711 μ/A-law, G.722,
telephone-event and comfort noise. Answering only the first one made a sender that used another
offered type (legal for it: RFC 3264 §5.1 "the answerer MUST be prepared to receive") record a
silent file. ``recorder_offer`` builds the SRS's own offer for a delayed-offer INVITE (no SDP).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from server.errors import SdpError
from server.sip.sdes import SdesKey, answer_line, choose_crypto, redact

SUPPORTED = {"PCMU": 0, "PCMA": 8}
_STATIC = {0: "PCMU", 8: "PCMA"}
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
MAX_SDP_LINES = 512


@dataclass(slots=True)
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: list[str]
    connection: str | None = None  # media-level c= address, else the session's
    rtpmap: dict[int, str] = field(default_factory=dict)  # PT -> encoding name (upper case)
    direction: str = "sendrecv"
    label: str | None = None  # a=label (RFC 4574): names the stream in SIPREC metadata
    crypto: list[str] = field(default_factory=list, repr=False)  # a=crypto values (RFC 4568): keys


@dataclass(slots=True)
class SessionDescription:
    origin: str = ""
    connection: str | None = None
    direction: str = "sendrecv"
    media: list[MediaDescription] = field(default_factory=list)

    def audio(self) -> MediaDescription | None:
        return next((m for m in self.media if m.media == "audio" and m.port > 0), None)


@dataclass(frozen=True, slots=True)
class AudioChoice:
    codec: str
    payload_type: int
    remote_host: str
    remote_port: int
    direction: str


def _connection_address(value: str) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"unsupported c= line {value[:60]!r}")
    return parts[2].split("/")[0]


def parse_sdp(body: bytes) -> SessionDescription:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SdpError("SDP is not UTF-8") from exc
    sdp = SessionDescription()
    lines = [ln for ln in text.replace("\r\n", "\n").split("\n") if ln.strip()]
    if len(lines) > MAX_SDP_LINES:
        raise SdpError("SDP has too many lines")
    if not lines or lines[0].strip() != "v=0":
        raise SdpError("SDP does not start with v=0")
    current: MediaDescription | None = None
    for line in lines[1:]:
        kind, eq, value = line.partition("=")
        if not eq or len(kind) != 1:
            # Quoted in logs, the Warning header and the stored refusal: never with a key in it.
            raise SdpError(f"malformed SDP line {redact(line)[:60]!r}")
        value = value.strip()
        if kind == "m":
            current = _media_line(value)
            sdp.media.append(current)
        elif kind == "c":
            if current is None:
                sdp.connection = _connection_address(value)
            else:
                current.connection = _connection_address(value)
        elif kind == "o" and current is None:
            sdp.origin = value
        elif kind == "a":
            _attribute(sdp, current, value)
    return sdp


def _media_line(value: str) -> MediaDescription:
    parts = value.split()
    if len(parts) < 4:
        raise SdpError(f"malformed m= line {value[:60]!r}")
    port_text = parts[1].split("/")[0]
    if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
        raise SdpError(f"bad media port {parts[1][:20]!r}")
    return MediaDescription(parts[0], int(port_text), parts[2], parts[3:])


def _attribute(sdp: SessionDescription, media: MediaDescription | None, value: str) -> None:
    if value in _DIRECTIONS:
        if media is None:
            sdp.direction = value
        else:
            media.direction = value
    elif value.startswith("rtpmap:") and media is not None:
        pt_text, _, encoding = value[7:].partition(" ")
        if pt_text.isascii() and pt_text.isdigit():
            media.rtpmap[int(pt_text)] = encoding.split("/")[0].strip().upper()
    elif value.startswith("label:") and media is not None:
        media.label = value[6:].strip() or None
    elif value.startswith("crypto:") and media is not None:
        media.crypto.append(value[7:].strip())


def choose_audio(sdp: SessionDescription) -> AudioChoice:
    """Pick the first G.711 format of the first active audio stream; ``SdpError`` if none."""
    audio = sdp.audio()
    if audio is None:
        raise SdpError("offer has no active audio stream")
    if audio.proto.upper() not in PLAIN_PROTOCOLS:
        raise SdpError(f"unsupported media protocol {audio.proto!r}")
    host = audio.connection or sdp.connection
    if host is None:
        raise SdpError("offer has no connection address")
    direction = audio.direction if audio.direction != "sendrecv" else sdp.direction
    for fmt in audio.formats:
        if not (fmt.isascii() and fmt.isdigit()):
            continue
        pt = int(fmt)
        name = audio.rtpmap.get(pt) or _STATIC.get(pt)
        if name in SUPPORTED:
            return AudioChoice(name, pt, host, audio.port, direction)
    raise SdpError("no common codec (PCMU or PCMA)")


def build_answer(offer: SessionDescription, choice: AudioChoice, host: str, port: int) -> bytes:
    """A ``recvonly`` answer on ``host:port``; other m= lines are refused with port 0."""
    ip = "IP6" if ":" in host else "IP4"
    session_id = int(time.time())
    lines = [
        "v=0",
        f"o=tandem {session_id} {session_id} IN {ip} {host}",
        "s=Tandem recording",
        f"c=IN {ip} {host}",
        "t=0 0",
    ]
    audio = offer.audio()
    for media in offer.media:
        if media is audio:
            lines += [
                f"m=audio {port} RTP/AVP {choice.payload_type}",
                f"a=rtpmap:{choice.payload_type} {choice.codec}/8000",
                "a=recvonly" if choice.direction != "inactive" else "a=inactive",
            ]
        else:
            lines.append(f"m={media.media} 0 {media.proto} {' '.join(media.formats)}")
    return ("\r\n".join(lines) + "\r\n").encode()


# ---- SIPREC: several audio streams ---------------------------------------------------------------
STATIC_AUDIO = {0: "PCMU", 8: "PCMA", 9: "G722", 13: "CN"}  # RFC 3551 static payload types we recognise
RECORDABLE = ("PCMU", "PCMA", "G722")  # what server.rtp decodes (G.722: 16 kHz audio, 8 kHz RTP clock)
TELEPHONE_EVENT, COMFORT_NOISE = "TELEPHONE-EVENT", "CN"  # answered too: counted, never audio
_RTPMAP_NAMES = {
    "PCMU": "PCMU",
    "PCMA": "PCMA",
    "G722": "G722",
    TELEPHONE_EVENT: "telephone-event",
    COMFORT_NOISE: "CN",
}
_HOLD_ADDRESSES = ("0.0.0.0", "::")  # RFC 2543-style hold / RFC 3264 §8.4 "not yet known"
# RFC 3264 §6: the answer's m= line has the offer's transport protocol, so an offer is only
# accepted in a protocol we can honour. RTP/AVPF is RTP/AVP plus feedback, which a receiver
# may simply not send (RFC 4585 §3.2). SRTP: SDES keys only (server.sip.sdes), decrypted per
# stream in the RTP session (server.rtp.srtp).
PLAIN_PROTOCOLS = ("RTP/AVP", "RTP/AVPF")
SRTP_PROTOCOLS = ("RTP/SAVP", "RTP/SAVPF")


def _transport_refusal(media: MediaDescription) -> str | None:
    """Why the stream's transport cannot be recorded, or None. Never answered as plain RTP:
    an SRTP stream decoded as G.711 would be stored as noise, silently."""
    proto = media.proto.upper()
    if proto in PLAIN_PROTOCOLS or proto in SRTP_PROTOCOLS:
        return None
    if "DTLS" in proto or proto.startswith("UDP/TLS/"):
        return f"DTLS-SRTP ({media.proto[:30]}) is not supported"
    return f"unsupported media protocol {media.proto[:30]!r}"


@dataclass(frozen=True, slots=True)
class AudioStream:
    """One offered ``m=audio`` line, as a SIPREC recorder sees it."""

    index: int  # position of the m= line among all of the offer's m= lines
    label: str | None
    port: int
    proto: str
    remote_host: str | None  # media-level c=, else session-level, else None
    direction: str  # effective: the media's, else the session's
    codecs: tuple[tuple[int, str], ...]  # (PT, encoding) offered, in the offer's order
    telephone_event: int | None  # PT of telephone-event/8000 (RFC 4733), if offered
    codec: str | None  # the first offered codec we decode (the stream's initial one); None if none
    payload_type: int | None
    refusal: str | None  # why the stream cannot be recorded; None when it can
    # Every offered (PT, encoding) we decode, in offer order: all of them are answered, and the
    # RTP session decodes each packet by its own payload type.
    decodable: tuple[tuple[int, str], ...] = ()
    crypto: SdesKey | None = None  # RTP/SAVP(F): the sender's SDES key (RFC 4568); never logged

    @property
    def accepted(self) -> bool:
        return self.refusal is None

    @property
    def deferred(self) -> bool:
        """Offered but not flowing yet: ``a=inactive`` or a 0.0.0.0 connection address."""
        return self.direction == "inactive" or self.remote_host in _HOLD_ADDRESSES


def audio_streams(sdp: SessionDescription, supported: tuple[str, ...] = RECORDABLE) -> list[AudioStream]:
    """Every ``m=audio`` line of ``sdp`` with its label, direction, address and chosen codec."""
    out: list[AudioStream] = []
    for index, media in enumerate(sdp.media):
        if media.media != "audio":
            continue
        codecs: list[tuple[int, str]] = []
        for fmt in media.formats:
            if fmt.isascii() and fmt.isdigit() and int(fmt) <= 127:
                name = media.rtpmap.get(int(fmt)) or STATIC_AUDIO.get(int(fmt))
                if name:
                    codecs.append((int(fmt), name))
        chosen = next(((pt, name) for pt, name in codecs if name in supported), None)
        crypto = choose_crypto(media.crypto) if media.proto.upper() in SRTP_PROTOCOLS else None
        refusal = None
        if media.port == 0:
            refusal = "port 0 (stream disabled by the offerer)"
        elif (problem := _transport_refusal(media)) is not None:
            refusal = problem
        elif isinstance(crypto, str):
            refusal = f"SRTP: {crypto}"  # no SDES line we can use (MKI, unknown suite, none)
        elif chosen is None:
            refusal = f"no common codec ({' or '.join(supported)})"
        out.append(
            AudioStream(
                index=index,
                label=media.label,
                port=media.port,
                proto=media.proto,
                remote_host=media.connection or sdp.connection,
                direction=media.direction if media.direction != "sendrecv" else sdp.direction,
                codecs=tuple(codecs),
                telephone_event=next((pt for pt, name in codecs if name == "TELEPHONE-EVENT"), None),
                codec=chosen[1] if chosen else None,
                payload_type=chosen[0] if chosen else None,
                refusal=refusal,
                decodable=tuple((pt, name) for pt, name in codecs if name in supported),
                crypto=crypto if isinstance(crypto, SdesKey) and refusal is None else None,
            )
        )
    return out


def build_multistream_answer(
    offer: SessionDescription, streams: list[AudioStream], host: str, ports: dict[int, int]
) -> bytes:
    """Answer every m= line in the offer's order (RFC 3264 §6): a ``recvonly`` audio line on
    ``ports[stream.index]`` with the stream's label for each accepted stream, port 0 for the rest.

    An ``inactive`` (or ``recvonly``) offer is answered ``inactive``, as RFC 3264 §6.1 requires.
    """
    ip = "IP6" if ":" in host else "IP4"
    session_id = int(time.time())
    lines = [
        "v=0",
        f"o=tandem {session_id} {session_id} IN {ip} {host}",
        "s=Tandem recording",
        f"c=IN {ip} {host}",
        "t=0 0",
    ]
    by_index = {s.index: s for s in streams}
    for index, media in enumerate(offer.media):
        stream = by_index.get(index)
        port = ports.get(index)
        if stream is None or not stream.accepted or port is None or stream.payload_type is None:
            lines.append(f"m={media.media} 0 {media.proto} {' '.join(media.formats)}")
            continue
        lines += _audio_lines(stream, port)
        if stream.label is not None:
            lines.append(f"a=label:{stream.label}")
        lines.append("a=inactive" if stream.direction in ("inactive", "recvonly") else "a=recvonly")
    return ("\r\n".join(lines) + "\r\n").encode()


def _answered_types(stream: AudioStream) -> list[tuple[int, str]]:
    """The payload types an answer (or our own offer) lists for ``stream``: every decodable one,
    telephone-event and comfort noise, in the offer's order, each once."""
    keep = {name for _, name in stream.decodable} | {TELEPHONE_EVENT, COMFORT_NOISE}
    seen: set[int] = set()
    out: list[tuple[int, str]] = []
    for pt, name in stream.codecs or stream.decodable:
        if name in keep and pt not in seen:
            seen.add(pt)
            out.append((pt, name))
    return out or [(stream.payload_type or 0, stream.codec or "PCMU")]


def _audio_lines(stream: AudioStream, port: int) -> list[str]:
    types = _answered_types(stream)
    offered = stream.proto.upper()
    if stream.crypto is not None and offered in SRTP_PROTOCOLS:
        proto = offered
    else:
        proto = offered if offered in PLAIN_PROTOCOLS else "RTP/AVP"
    lines = [f"m=audio {port} {proto} {' '.join(str(pt) for pt, _ in types)}"]
    for pt, name in types:
        lines.append(f"a=rtpmap:{pt} {_RTPMAP_NAMES.get(name, name)}/8000")  # G.722 too: RFC 3551 §4.5.2
        if name == TELEPHONE_EVENT:
            lines.append(f"a=fmtp:{pt} 0-16")
    if stream.crypto is not None and proto in SRTP_PROTOCOLS:
        lines.append(answer_line(stream.crypto))  # RFC 4568 §5.1.1: exactly one, ours
    return lines


# ---- delayed offer: the SRS offers ------------------------------------------------------------------
RECORDER_OFFER_CODECS: tuple[tuple[int, str], ...] = (
    (0, "PCMU"),
    (8, "PCMA"),
    (9, "G722"),
    (101, TELEPHONE_EVENT),
    (13, COMFORT_NOISE),
)
DELAYED_OFFER_STREAMS = 2  # one per leg (RFC 7866 §8.1.1: the SRC sends each party's stream)


def recorder_offer(labels: list[str] | None, streams: int = DELAYED_OFFER_STREAMS) -> SessionDescription:
    """The streams an SRS offers to an INVITE without SDP (RFC 3261 §13.2.1 delayed offer, e.g.
    Cisco UCM's built-in bridge): one ``sendonly`` (from the sender's side, so we answer
    ``recvonly``) audio stream per label of the metadata, else two, each offering every codec we
    decode. It is described as if the peer had offered it so the rest of the offer path (labels
    to participants, the plan, the SDP we send) stays one path; the peer's answer in the ACK then
    gives the addresses (``server.sip.midcall.apply_ack_answer``). A plain (non-SIPREC) INVITE
    gets ``streams=1`` and no label: its UA sends one mixed stream."""
    sdp = SessionDescription(origin="", connection=None, direction="sendonly")
    names: list[str | None] = list(labels) if labels else [str(n + 1) for n in range(streams)]
    if streams == 1 and not labels:
        names = [None]
    for label in names[:streams]:
        media = MediaDescription("audio", 9, "RTP/AVP", [str(pt) for pt, _ in RECORDER_OFFER_CODECS])
        media.rtpmap = {pt: name for pt, name in RECORDER_OFFER_CODECS}
        media.direction = "sendonly"
        media.label = label
        sdp.media.append(media)
    return sdp
