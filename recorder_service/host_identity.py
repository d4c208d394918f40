"""Who this PC is, as the recorder names itself to the server when it enrols: the host name and the
OS user who ran the enrolment. A refused enrolment is then a row on IT's fleet page with the PC's
name on it, not only an audit record with an address."""

from __future__ import annotations

import getpass
import socket


def hostname() -> str:
    return socket.gethostname()


def os_user() -> str:
    """The OS account name, or "" when there is none to read (a service without a login name, a
    container with an unnamed uid): the enrolment goes ahead without it."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # KeyError/ImportError: Python < 3.13 on an unnamed uid
        return ""
