"""Server transactions (RFC 3261 §17.2), reduced to what a recording UAS needs over UDP:
match retransmitted requests to the last response we sent, and find the INVITE a CANCEL names.

Entries live 32 s (64*T1, Timer J/H) after the final response and the table is bounded, so a
flood of distinct branches cannot grow memory without limit.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass

from server.sip.message import SipRequest

T1 = 0.5
T2 = 4.0
TRANSACTION_LINGER = 64 * T1
MAX_TRANSACTIONS = 8192


def retransmit_intervals(limit: float = 64 * T1) -> Iterator[tuple[float, bool]]:
    """RFC 3261's retransmission schedule (Timers A, E, G, and 2xx resends): wait T1, doubling up
    to T2, until ``limit`` (64*T1: Timers B, F, H) has passed. Yields (wait, is_last); after the
    last wait the sender gives up instead of resending."""
    interval, elapsed = T1, 0.0
    while elapsed + interval < limit:
        yield interval, False
        elapsed += interval
        interval = min(interval * 2, T2)
    yield limit - elapsed, True


def transaction_key(request: SipRequest, method: str | None = None) -> tuple[str, str]:
    """(branch, method) with ACK folded into INVITE (an ACK to a non-2xx shares the INVITE's
    branch). Without an RFC 3261 branch we fall back to Call-ID + CSeq + From tag (RFC 2543)."""
    vias = request.vias
    branch = vias[0].branch if vias else None
    method = method or ("INVITE" if request.method == "ACK" else request.method)
    if branch and branch.startswith("z9hG4bK") and len(branch) > 7:
        return branch, method
    cseq = request.cseq
    from_ = request.from_
    number = cseq.number if cseq else 0
    return f"{request.call_id}|{number}|{from_.tag if from_ else ''}|{branch}", method


@dataclass(eq=False)
class ServerTransaction:
    request: SipRequest
    source: tuple[str, int]
    last_response: bytes = b""
    final: bool = False
    cancelled: bool = False
    acked: bool = False  # an ACK for our final (error) response arrived
    finished_at: float | None = None
    key: tuple[str, str] | None = None  # set by the table that holds it

    @property
    def final_status(self) -> int | None:
        """Status of the final response sent (None while none was), read from its bytes."""
        if not self.final or not self.last_response.startswith(b"SIP/2.0 "):
            return None
        code = self.last_response[8:11]
        return int(code) if code.isdigit() else None


class TransactionTable:
    def __init__(self, max_entries: int = MAX_TRANSACTIONS) -> None:
        self._items: OrderedDict[tuple[str, str], ServerTransaction] = OrderedDict()
        self._finished: deque[tuple[float, tuple[str, str], ServerTransaction]] = deque()  # finish order
        self._max = max_entries
        self.evicted = 0

    def get(self, key: tuple[str, str]) -> ServerTransaction | None:
        self._expire()
        return self._items.get(key)

    def add(self, key: tuple[str, str], txn: ServerTransaction) -> None:
        self._expire()
        while len(self._items) >= self._max:
            self._items.popitem(last=False)
            self.evicted += 1
        self._items[key] = txn
        txn.key = key

    def finish(self, txn: ServerTransaction, response: bytes) -> None:
        txn.last_response = response
        txn.final = True
        txn.finished_at = time.monotonic()
        if txn.key is not None:
            self._finished.append((txn.finished_at, txn.key, txn))

    def _expire(self) -> None:
        """Amortised O(1): finished transactions leave in the order they finished."""
        cutoff = time.monotonic() - TRANSACTION_LINGER
        finished = self._finished
        while finished and (finished[0][0] < cutoff or len(finished) > 4 * self._max):
            _, key, txn = finished.popleft()
            if self._items.get(key) is txn:
                del self._items[key]

    def __len__(self) -> int:
        return len(self._items)
