"""``MediaSession``: how the SIP side drives a call's media, wherever it runs.

``server.callmedia.media.CallMedia`` implements it in this process and
``server.rtp.workers.proxy.WorkerMediaSession`` in an RTP worker process; tests may plug in
another implementation. It lives here, not in ``server.sip``, so the worker pool names it without
importing the SIP layer.
"""

from __future__ import annotations

from typing import Protocol


class MediaSession(Protocol):
    @property
    def ports(self) -> dict[int, int]: ...  # m-line index -> local RTP port

    @property
    def last_packet_at(self) -> float | None: ...

    def start(self, answered_at: float) -> None: ...
    def pause(self, at: float) -> None: ...
    def resume(self, at: float) -> None: ...
    def relatch(self, index: int, remote: tuple[str, int] | None) -> None: ...
    async def close(self, ended_at: float) -> None: ...
    def stats(self) -> dict[str, object]: ...
