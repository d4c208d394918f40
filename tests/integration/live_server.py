"""The real app served by uvicorn on a loopback port the OS picks, in a thread: for the tests whose
clients need a real socket (WebSocket event channels, the recorder's tus uploads, the updater's
HTTP fetches) rather than the in-process TestClient."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI


class LiveServer:
    """``with LiveServer(app) as url:`` — serves ``app`` until the block ends; ``url`` is its
    ``http://127.0.0.1:<port>``. Starting may take ``start_timeout`` seconds (a loaded CI machine)."""

    def __init__(self, app: FastAPI, start_timeout: float = 30) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.start_timeout = start_timeout

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
