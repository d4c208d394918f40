"""RTP worker processes: a call's media (sockets, decoding, timeline, WAV) recorded in one of N
child processes, each on its own uvloop event loop, so live media uses every core while the main
process keeps SIP and the database.

- ``protocol``: the messages between the main process and a worker, and their framing (pure).
- ``worker``: the worker process (``python -m server.rtp.workers.worker``).
- ``link``: the main process's end of one worker: process, stream, pending replies.
- ``proxy``: ``WorkerMediaSession``, the ``MediaSession`` the SIP layer drives.
- ``pool``: starts, places calls on and supervises the workers; ``pool.media_factory``.
- ``ranges``: pure port sub-ranges (restart pacing: ``tandem_protocol.backoff``).
"""
