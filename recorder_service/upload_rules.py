"""The segment uploader's rules (pure: no network, no files): what a failed tus request's answer
means, and when the next try may come — for the server as a whole and for each segment apart.

`recorder_service.segment_uploader` does the requests and acts on these answers; keeping the
rules here lets them be tested directly, one answer at a time, without a server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tandem_protocol.backoff import backoff_delay

RETRY_BASE = 1.0
# After a long outage the next try comes at most this long after the server is back.
RETRY_CAP = 60.0
UNAUTHORIZED_RETRY = 300.0  # the token must be renewed (`tandem-recorder login`); asking fast won't help
MAX_CHECKSUM_RESENDS = 3  # a chunk damaged this often in a row: the path is bad, back off
MAX_RECREATES = 2  # per attempt: the server lost the upload again and again
MAX_CUTS = 3  # per attempt: the server keeps finding paused frames after our cuts


class Answer(StrEnum):
    """What a failed request (``POST``, ``HEAD`` or ``PATCH`` after its own fixes) means."""

    NETWORK = "network"  # no answer at all: the server's backoff only, not this segment's
    TRANSIENT = "transient"  # 408, 429, 5xx, 409 upload_in_progress: back off server and segment
    UNAUTHORIZED = "unauthorized"  # 401: only a renewed token helps
    REDIRECTED = "redirected"  # 3xx: a proxy or a moved server, the recorder's configuration
    ALREADY_UPLOADED = "already_uploaded"  # 409: compare the server's sha256 with ours
    FRAMES_IN_PAUSE = "frames_in_pause"  # 422: cut the paused frames and upload the new segment
    REFUSED = "refused"  # every other 4xx: final, the file is kept


def classify(status: int | None, code: str | None, *, cuts: int) -> Answer:
    """The answer ``status`` / ``code`` (the JSON error code) after ``cuts`` pause cuts of this
    segment in the current attempt."""
    if status is None:
        return Answer.NETWORK
    if status in (408, 429) or status >= 500 or (status == 409 and code == "upload_in_progress"):
        return Answer.TRANSIENT
    if status == 401:
        return Answer.UNAUTHORIZED
    if 300 <= status < 400:
        return Answer.REDIRECTED
    if status == 409 and code == "already_uploaded":
        return Answer.ALREADY_UPLOADED
    if status == 422 and code == "frames_in_pause" and cuts < MAX_CUTS:
        return Answer.FRAMES_IN_PAUSE
    return Answer.REFUSED


class PatchFix(StrEnum):
    """What to do about a failed ``PATCH`` within the attempt, before it counts as failed."""

    TAKE_OFFSET = "take_offset"  # 409 offset_mismatch: continue from the server's offset
    RESEND = "resend"  # 460: the chunk was damaged on the way, send it again
    DAMAGED = "damaged"  # 460 too often in a row: the path is bad, retry later
    RECREATE = "recreate"  # 404: the server lost the upload, create it again
    NONE = "none"  # nothing to fix here: the answer goes to `classify`


def patch_fix(
    status: int | None, code: str | None, *, has_offset: bool, resends: int, recreates: int
) -> PatchFix:
    """``resends`` and ``recreates``: how often this attempt already did either."""
    if status == 409 and code == "offset_mismatch" and has_offset:
        return PatchFix.TAKE_OFFSET
    if status == 460:
        return PatchFix.RESEND if resends < MAX_CHECKSUM_RESENDS else PatchFix.DAMAGED
    if status == 404 and recreates < MAX_RECREATES:
        return PatchFix.RECREATE
    return PatchFix.NONE


@dataclass(slots=True)
class Track:
    """What the uploader remembers about one segment between attempts."""

    location: str | None = None
    sent_high: int = 0  # highest offset ever handed to the network for this file
    failures: int = 0
    due: float = 0.0


class RetrySchedule:
    """When the next try may come: capped exponential backoff with jitter for the server as a
    whole (``not_before``: a server that is down is not hammered) and for a segment whose answer
    was about it (`Track.due`: one segment the server chokes on cannot starve the others)."""

    def __init__(self, rand: Callable[[], float] | None = None) -> None:
        self._backoff_args: dict[str, Any] = {"base": RETRY_BASE, "cap": RETRY_CAP}
        if rand is not None:
            self._backoff_args["rand"] = rand
        self.failures = 0  # consecutive server-level failures
        self.not_before = 0.0

    def back_off(self, now: float, track: Track | None, retry_after: float | None = None) -> float:
        """Back off: the server always (it is down, busy or cut off), the segment too when the
        server's answer was about it (``track``), so that it waits behind the others. Returns the
        seconds until this segment's next try."""
        server = backoff_delay(self.failures, **self._backoff_args)
        self.failures += 1
        own = 0.0
        if track is not None:
            own = backoff_delay(track.failures, **self._backoff_args)
            track.failures += 1
            track.due = now + own
        # A server asking for more patience (Retry-After) gets it, within reason.
        self.not_before = now + max(server, min(retry_after or 0.0, UNAUTHORIZED_RETRY))
        return max(own, self.not_before - now)

    def hold(self, now: float) -> None:
        """Nothing but a change on this PC helps (a new token, the server URL): ask rarely."""
        self.not_before = now + UNAUTHORIZED_RETRY

    def progressed(self, track: Track) -> None:
        """The server took bytes: it and the segment are well again."""
        track.failures = 0
        self.failures = 0
        self.not_before = 0.0

    def succeeded(self) -> None:
        self.failures = 0
