"""Media processing on the server: mux the agent's screen with the call's voice, probe media files.

The PyAV-facing code lives in :mod:`server.media.mux` and :mod:`server.media.probe`; the arithmetic
and file-format parsing they rely on is kept pure (``timeline``, ``riff``, ``boxes``) so it can be
tested without codecs. Its exceptions are in :mod:`server.errors`.
"""
