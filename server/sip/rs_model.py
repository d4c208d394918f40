"""The model of a SIPREC offer's recording metadata (RFC 7865): the participants, their media
streams, the communication sessions, and the warnings met while reading them.

Separate from the XML reading (``rs_metadata``, ``rs_xml``) because the rest of the SIP stack
(routing, the recording request) works with this model and never with the XML.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_WARNINGS = 32


@dataclass(slots=True)
class Participant:
    participant_id: str
    aors: list[str] = field(default_factory=list)  # nameID aor= and <aor>, in document order
    names: list[str] = field(default_factory=list)  # display names
    sends: list[str] = field(default_factory=list)  # stream ids
    receives: list[str] = field(default_factory=list)
    session_ids: list[str] = field(default_factory=list)
    calling_party: bool | None = None  # vendor hint (Acme apkt:callingParty), None if absent
    # The SRC's mark of the party being recorded (an extension element such as
    # ``recordedParty``/``isRecorded``, or a participant attribute ``recorded``), None if absent.
    recorded: bool | None = None
    extensions: list[str] = field(default_factory=list)  # raw XML of extension data
    declared: bool = True  # False: only named by an association element


@dataclass(slots=True)
class Stream:
    stream_id: str
    label: str | None = None
    session_id: str | None = None
    mode: str | None = None  # legacy: "separate" / "mixed"


@dataclass(slots=True)
class Session:
    session_id: str
    sip_session_ids: list[str] = field(default_factory=list)
    group_ref: str | None = None
    start_time: str | None = None


@dataclass(slots=True)
class RecordingMetadata:
    root: str | None = None  # local name of the root element
    namespace: str | None = None
    datamode: str | None = None
    group_ids: list[str] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    recording_session_ids: list[str] = field(default_factory=list)  # sessionrecordingassoc
    participants: list[Participant] = field(default_factory=list)  # document order
    streams: list[Stream] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)  # raw XML outside participants
    salvaged_uris: list[str] = field(default_factory=list)  # guesses from damaged metadata text
    warnings: list[str] = field(default_factory=list)

    def participant(self, participant_id: str) -> Participant | None:
        return next((p for p in self.participants if p.participant_id == participant_id), None)

    def stream(self, stream_id: str) -> Stream | None:
        return next((s for s in self.streams if s.stream_id == stream_id), None)

    def streams_labelled(self, label: str) -> list[Stream]:
        return [s for s in self.streams if s.label == label]

    def warn(self, text: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(text)
