"""A recorded call's media: the plan (which streams, which channel), the ``MediaSession`` the SIP
side drives, and ``CallMedia``, what runs it (RTP sessions into one voice file). Imported by
``server.sip`` and by ``server.rtp.workers``; it imports neither."""
