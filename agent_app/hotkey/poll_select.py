"""``select.select`` on ``poll``: select() refuses descriptors ≥ 1024 ("filedescriptor out of
range"), which a long-running process with many sockets reaches; python-xlib calls select() on
its display socket, so the X11 hotkey gets this instead (``install_for_xlib``)."""

from __future__ import annotations

import select
import types
from typing import Any


def poll_select(
    rlist: list[Any], wlist: list[Any], xlist: list[Any], timeout: float | None = None
) -> tuple[list[Any], list[Any], list[Any]]:
    poller = select.poll()
    wanted: dict[int, tuple[Any, int]] = {}
    for objs, flag in ((rlist, select.POLLIN), (wlist, select.POLLOUT), (xlist, select.POLLPRI)):
        for obj in objs:
            fd = obj if isinstance(obj, int) else obj.fileno()
            old = wanted.get(fd, (obj, 0))[1]
            wanted[fd] = (obj, old | flag)
    for fd, (_, mask) in wanted.items():
        poller.register(fd, mask)
    events = poller.poll(None if timeout is None else max(0.0, timeout) * 1000)
    r: list[Any] = []
    w: list[Any] = []
    x: list[Any] = []
    ready_in = select.POLLIN | select.POLLHUP | select.POLLERR
    for fd, ev in events:
        obj = wanted[fd][0]
        if ev & ready_in and obj in rlist:
            r.append(obj)
        if ev & (select.POLLOUT | select.POLLERR) and obj in wlist:
            w.append(obj)
        if ev & select.POLLPRI and obj in xlist:
            x.append(obj)
    return r, w, x


def install_for_xlib() -> None:
    """python-xlib's protocol module uses ``select.select`` and ``select.error``."""
    import Xlib.protocol.display as xlib_display

    xlib_display.select = types.SimpleNamespace(select=poll_select, error=OSError)
