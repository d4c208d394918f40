"""A TCP-to-TLS relay for SIPp: Debian's SIPp 3.6.1 is built without TLS (no ``-t ln``), so a
SIPREC call "over TLS" is SIPp over TCP to this relay, which carries each connection to the
server's TLS port as a TLS client (verifying the server's certificate) and pumps bytes both ways.
The server sees a real TLS connection; SIPp's messages still say ``SIP/2.0/TCP`` in their Via."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class RelayStats:
    handshakes: int = 0  # TLS connections to the server that completed their handshake
    to_server: int = 0  # bytes relayed each way
    to_client: int = 0


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stats: RelayStats, upstream: bool
) -> None:
    try:
        while data := await reader.read(65536):
            if upstream:
                stats.to_server += len(data)
            else:
                stats.to_client += len(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@contextlib.contextmanager
def tls_relay(server_port: int, client_context: ssl.SSLContext) -> Iterator[tuple[int, RelayStats]]:
    """Listen on a loopback port (yielded with the stats); relay to TLS 127.0.0.1:``server_port``."""
    stats = RelayStats()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    listening: list[int] = []

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(
                "127.0.0.1", server_port, ssl=client_context, server_hostname="127.0.0.1"
            )
        except (OSError, ssl.SSLError):
            client_writer.close()
            return
        stats.handshakes += 1
        await asyncio.gather(
            _pump(client_reader, server_writer, stats, upstream=True),
            _pump(server_reader, client_writer, stats, upstream=False),
        )

    async def serve() -> asyncio.Server:
        server = await asyncio.start_server(relay, "127.0.0.1", 0)
        listening.append(int(server.sockets[0].getsockname()[1]))
        return server

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(serve())
        started.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()

    thread = threading.Thread(target=run, name="tls-relay", daemon=True)
    thread.start()
    if not started.wait(30):
        raise AssertionError("the TLS relay did not start")
    try:
        yield listening[0], stats
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
