"""What an INVITE offers to record: a SIPREC recording session (RFC 7866: multipart body with SDP
and ``rs-metadata``, one labelled ``sendonly`` stream per leg) or a plain call (one SDP offer).

``parse_offer`` is pure (no sockets, no database): it classifies the offer, finds the SDP and the
metadata parts in any order, and ties every SDP audio stream (by ``a=label``) to the participant
who sends it. It does not decide who is the caller and who is the agent: the server does that by
resolving the participants' AORs to DNs. The only ordering hint it uses is the one real recording
clients rely on when their metadata has no stream associations: participants and labelled streams
in document order (marked ``sender_basis="order"`` so the server can tell it from a fact).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.errors import MultipartError, SdpError, SiprecError
from server.sip.multipart import BodyPart, parse_multipart, split_parameters
from server.sip.rs_metadata import parse_metadata
from server.sip.rs_model import RecordingMetadata
from server.sip.sdp import (
    RECORDABLE,
    AudioStream,
    SessionDescription,
    audio_streams,
    build_multistream_answer,
    parse_sdp,
    recorder_offer,
)

SDP_TYPE = "application/sdp"
METADATA_TYPES = ("application/rs-metadata+xml", "application/rs-metadata")
METADATA_DISPOSITION = "recording-session"  # RFC 7866 §9.2
ACCEPT = "application/sdp, multipart/mixed, application/rs-metadata+xml, application/rs-metadata"
_SRC_FEATURE = re.compile(r"(?:^|[;\s>,])\+sip\.src(?=$|[;\s=,>])", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class OfferParticipant:
    participant_id: str
    aors: tuple[str, ...]
    names: tuple[str, ...]
    sends: tuple[str, ...]  # labels of the SDP streams this participant sends
    receives: tuple[str, ...]  # labels of the SDP streams this participant receives
    calling_party: bool | None  # vendor hint (Acme), None when the metadata does not say
    order: int  # position in the metadata: an ordering hint, not a role
    recorded: bool | None = None  # the SRC marks this party as the recorded one (Metaswitch)

    @property
    def aor(self) -> str | None:
        return self.aors[0] if self.aors else None

    @property
    def name(self) -> str | None:
        return self.names[0] if self.names else None


@dataclass(frozen=True, slots=True)
class OfferStream:
    audio: AudioStream
    stream_id: str | None  # metadata stream id with the same label
    sender: str | None  # participant_id of who sends it
    sender_basis: str | None  # "metadata" (stated) or "order" (document order hint)
    receivers: tuple[str, ...]

    @property
    def label(self) -> str | None:
        return self.audio.label


@dataclass(frozen=True, slots=True)
class RecordingOffer:
    siprec: bool
    sdp: SessionDescription
    streams: tuple[OfferStream, ...]  # every m=audio line, in offer order
    participants: tuple[OfferParticipant, ...]  # metadata order
    metadata: RecordingMetadata | None
    session_id: str | None  # the recorded communication session's id (metadata), if any
    deferred: bool  # every accepted stream is inactive: answer, then expect a re-INVITE
    warnings: tuple[str, ...]
    metadata_xml: bytes | None = None  # the raw metadata part, for policy flags (consent)
    # A delayed offer (INVITE without SDP, RFC 3261 §13.2.1): ``sdp`` is the offer *we* make in
    # the 200 OK (``recorder_offer``), and the peer's answer comes in the ACK.
    delayed: bool = False

    @property
    def accepted_streams(self) -> tuple[OfferStream, ...]:
        return tuple(s for s in self.streams if s.audio.accepted)

    def participant(self, participant_id: str | None) -> OfferParticipant | None:
        return next((p for p in self.participants if p.participant_id == participant_id), None)

    def sender_of(self, label: str) -> OfferParticipant | None:
        stream = next((s for s in self.streams if s.label == label), None)
        return self.participant(stream.sender) if stream is not None else None

    def answer(self, host: str, ports: dict[int, int]) -> bytes:
        """SDP answer; ``ports`` maps ``stream.audio.index`` to our RTP port for that stream."""
        return build_multistream_answer(self.sdp, [s.audio for s in self.streams], host, ports)


def is_siprec_request(require: str | None, contact: str | None) -> bool:
    """``Require: siprec`` (RFC 7866 §6.1.1) or the ``+sip.src`` Contact feature tag (§6.1)."""
    if require and any(token.strip().lower() == "siprec" for token in require.split(",")):
        return True
    return bool(contact and _SRC_FEATURE.search(contact))


def parse_offer(
    content_type: str,
    body: bytes,
    require: str | None,
    contact: str | None,
    *,
    supported: tuple[str, ...] = RECORDABLE,
) -> RecordingOffer:
    """Classify and read an INVITE's offer. Raises ``SiprecError`` with the status to answer.

    An INVITE without SDP (no body, metadata alone, or a multipart without an SDP part) is a
    delayed offer: the offer is ours (``RecordingOffer.delayed``), two ``recvonly`` streams
    labelled as the metadata's streams when it has them."""
    if not body:
        return _delayed_offer(None, None, require, contact, [])
    if not content_type or not content_type.strip():
        raise SiprecError("body without Content-Type", 400)
    try:
        media_type, _ = split_parameters(content_type)
    except MultipartError as exc:
        raise SiprecError(f"malformed Content-Type: {exc.reason}", 400) from exc
    warnings: list[str] = []
    metadata_body: bytes | None = None
    sdp_body: bytes | None
    if media_type == SDP_TYPE:
        sdp_body = body
    elif media_type.startswith("multipart/"):
        # RFC 2046 §5.1.7: an unknown multipart subtype is treated as multipart/mixed.
        sdp_body, metadata_body = _split_parts(content_type, body, warnings)
        if sdp_body is None:
            return _delayed_offer(metadata_body, body, require, contact, warnings)
    elif media_type in METADATA_TYPES:
        return _delayed_offer(body, body, require, contact, warnings)
    else:
        raise SiprecError(f"unsupported body type {media_type[:60]!r}", 415)
    try:
        sdp = parse_sdp(sdp_body)
    except SdpError as exc:
        raise SiprecError(f"unusable SDP offer: {exc}", 488) from exc
    audio = audio_streams(sdp, supported)
    if not any(s.accepted for s in audio):
        reasons = "; ".join(f"m-line {s.index}: {s.refusal}" for s in audio) or "no m=audio line"
        raise SiprecError(f"no usable audio stream ({reasons})", 488)
    for stream in audio:
        if stream.refusal is not None:
            warnings.append(f"audio m-line {stream.index} refused: {stream.refusal}")
    metadata = parse_metadata(metadata_body) if metadata_body is not None else None
    siprec = metadata is not None or is_siprec_request(require, contact)
    if siprec and metadata is None:
        warnings.append("SIPREC offer without recording metadata")
    streams, participants = _associate(audio, metadata, warnings)
    if metadata is not None:
        warnings.extend(metadata.warnings)
    accepted = [s for s in audio if s.accepted]
    return RecordingOffer(
        siprec=siprec,
        sdp=sdp,
        streams=streams,
        participants=participants,
        metadata=metadata,
        session_id=_session_id(metadata),
        deferred=all(s.deferred for s in accepted),
        warnings=tuple(warnings),
        metadata_xml=metadata_body,
    )


def _split_parts(content_type: str, body: bytes, warnings: list[str]) -> tuple[bytes | None, bytes | None]:
    try:
        multipart = parse_multipart(content_type, body)
    except MultipartError as exc:
        raise SiprecError(f"malformed multipart body: {exc.reason}", 400) from exc
    if not multipart.closed:
        warnings.append("multipart body has no close delimiter")
    sdp_part: BodyPart | None = None
    metadata_part: BodyPart | None = None
    for part in multipart.parts:
        if part.content_type == SDP_TYPE:
            if sdp_part is None:
                sdp_part = part
            else:
                warnings.append("more than one SDP part; the first one is used")
        elif part.content_type in METADATA_TYPES or part.disposition == METADATA_DISPOSITION:
            if metadata_part is None:
                metadata_part = part
                if part.content_type not in METADATA_TYPES:
                    warnings.append(f"metadata part has content type {part.content_type!r}")
            else:
                warnings.append("more than one metadata part; the first one is used")
        elif part.handling_required:
            raise SiprecError(f"required body part of unsupported type {part.content_type[:60]!r}", 415)
        # Other optional parts (e.g. Cisco's application/gtd) are ignored, as RFC 5621 §9.1 allows.
    if sdp_part is None:
        if metadata_part is None:
            raise SiprecError("multipart body has neither an SDP offer nor recording metadata", 488)
        return None, metadata_part.body  # a delayed offer that carries the metadata
    return sdp_part.body, metadata_part.body if metadata_part is not None else None


def _delayed_offer(
    metadata_body: bytes | None,
    body: bytes | None,
    require: str | None,
    contact: str | None,
    warnings: list[str],
) -> RecordingOffer:
    """Our own offer for an INVITE without SDP; the metadata (if any) names and labels the streams."""
    metadata = parse_metadata(metadata_body) if metadata_body is not None else None
    siprec = metadata is not None or is_siprec_request(require, contact)
    labels = [s.label for s in metadata.streams if s.label] if metadata is not None else []
    sdp = recorder_offer(labels, 2 if siprec else 1)
    audio = audio_streams(sdp)
    streams, participants = _associate(audio, metadata, warnings)
    if metadata is not None:
        warnings.extend(metadata.warnings)
    warnings.append("delayed offer (INVITE without SDP): offering in the 200 OK, answer expected in the ACK")
    return RecordingOffer(
        siprec=siprec,
        sdp=sdp,
        streams=streams,
        participants=participants,
        metadata=metadata,
        session_id=_session_id(metadata),
        deferred=False,
        warnings=tuple(warnings),
        metadata_xml=metadata_body,
        delayed=True,
    )


def _associate(
    audio: list[AudioStream], metadata: RecordingMetadata | None, warnings: list[str]
) -> tuple[tuple[OfferStream, ...], tuple[OfferParticipant, ...]]:
    """Tie SDP streams to metadata streams by label, and those to their sending participant."""
    if metadata is None:
        return tuple(OfferStream(a, None, None, None, ()) for a in audio), ()
    label_of: dict[str, str] = {}  # metadata stream id -> SDP label
    stream_id_of: dict[str, str] = {}  # SDP label -> metadata stream id
    for stream in audio:
        if stream.label is None:
            if stream.accepted:
                warnings.append(f"audio m-line {stream.index} has no a=label")
            continue
        matches = metadata.streams_labelled(stream.label)
        if not matches:
            if stream.accepted:
                warnings.append(f"label {stream.label!r} is not described in the metadata")
            continue
        if len(matches) > 1:
            warnings.append(f"label {stream.label!r} names {len(matches)} metadata streams; using the first")
        stream_id_of[stream.label] = matches[0].stream_id
        label_of[matches[0].stream_id] = stream.label
    senders: dict[str, list[str]] = {}
    receivers: dict[str, list[str]] = {}
    for p in metadata.participants:
        for stream_id in p.sends:
            if stream_id in label_of:
                senders.setdefault(label_of[stream_id], []).append(p.participant_id)
        for stream_id in p.receives:
            if stream_id in label_of:
                receivers.setdefault(label_of[stream_id], []).append(p.participant_id)
    basis = "metadata"
    if not senders:
        senders = _order_hint(audio, metadata, warnings)
        basis = "order"
    streams: list[OfferStream] = []
    for stream in audio:
        label = stream.label or ""
        who = senders.get(label, [])
        if len(who) > 1:
            warnings.append(f"stream {label!r} has {len(who)} senders (mixed); the first is its sender")
        streams.append(
            OfferStream(
                stream,
                stream_id_of.get(label),
                who[0] if who else None,
                basis if who else None,
                tuple(receivers.get(label, ())),
            )
        )
    participants = tuple(
        OfferParticipant(
            participant_id=p.participant_id,
            aors=tuple(p.aors),
            names=tuple(p.names),
            sends=tuple(s.label for s in streams if s.sender == p.participant_id and s.label),
            receives=tuple(s.label for s in streams if p.participant_id in s.receivers and s.label),
            calling_party=p.calling_party,
            order=index,
            recorded=p.recorded,
        )
        for index, p in enumerate(metadata.participants)
    )
    return tuple(streams), participants


def _order_hint(
    audio: list[AudioStream], metadata: RecordingMetadata, warnings: list[str]
) -> dict[str, list[str]]:
    """No stream associations at all: pair the i-th participant with the i-th labelled stream,
    but only when the counts match one to one (anything else would be a guess)."""
    declared = [p for p in metadata.participants if p.declared]
    labelled = [s.label for s in audio if s.accepted and s.label is not None]
    if len(declared) < 2 or len(declared) != len(labelled):
        if declared and labelled:
            warnings.append("metadata does not say which participant sends which stream")
        return {}
    warnings.append("metadata does not say which participant sends which stream; assuming document order")
    return {label: [p.participant_id] for label, p in zip(labelled, declared, strict=True)}


def _session_id(metadata: RecordingMetadata | None) -> str | None:
    if metadata is None:
        return None
    if metadata.recording_session_ids:
        return metadata.recording_session_ids[0]
    return next((s.session_id for s in metadata.sessions if s.session_id), None)
