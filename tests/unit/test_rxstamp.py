"""server.rxstamp: the kernel's receive time of the last datagram read, on a real socket."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from server.rxstamp import ReceiveClock, enable, receive_clock


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    yield receiver, sender
    receiver.close()
    sender.close()


def test_a_datagram_read_late_keeps_its_arrival_time(pair: tuple[socket.socket, socket.socket]) -> None:
    receiver, sender = pair
    clock = receive_clock(receiver, time.time)
    assert isinstance(clock, ReceiveClock)
    # The arrival is bracketed by clock readings taken around the send (on loopback the kernel
    # stamps the datagram inside sendto), so a descheduled test process cannot make it fail.
    before = time.time()
    sender.sendto(b"first", receiver.getsockname())
    after = time.time()
    time.sleep(0.25)  # a busy process: the datagram waits in the socket
    receiver.recvfrom(64)
    assert before - 0.001 <= clock() <= after + 0.001
    before_again = time.time()
    sender.sendto(b"second", receiver.getsockname())
    after_again = time.time()
    time.sleep(0.1)
    receiver.recvfrom(64)
    assert before_again - 0.001 <= clock() <= after_again + 0.001  # the last datagram read, not the first
    assert clock.failures == 0


def test_before_any_datagram_the_fallback_answers(pair: tuple[socket.socket, socket.socket]) -> None:
    receiver, _ = pair
    clock = receive_clock(receiver, lambda: 42.0)
    assert clock() == 42.0
    assert isinstance(clock, ReceiveClock) and clock.failures == 1


def test_a_closed_socket_falls_back_and_counts(pair: tuple[socket.socket, socket.socket]) -> None:
    receiver, _ = pair
    assert enable(receiver)
    clock = ReceiveClock(receiver.fileno(), lambda: 7.0)
    receiver.close()
    assert clock() == 7.0
    assert clock.failures == 1


def test_no_socket_means_the_fallback_itself() -> None:
    def fallback() -> float:
        return 1.0

    assert receive_clock(None, fallback) is fallback
