"""The Windows side of the pairing endpoint's same-user check: the user SID behind a named-pipe
client, compared with the recorder's own (``pairing_ipc.windows_refusal``).

The flow — pipe → client process id → its access token → its user SID as a string, every handle
closed, any failure "unknown" (refused) — is here with the Win32 calls behind ``Win32Calls`` so it
is unit-tested on Linux with a fake; ``ctypes_calls()`` builds the real one (advapi32/kernel32
through ctypes, no extra package). Written, not run on Windows (README, "Not there yet").
Importable on any platform: ctypes' Windows parts are reached only in ``ctypes_calls``.
"""

from __future__ import annotations

import ctypes
from typing import Any, Protocol

PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
TOKEN_QUERY = 0x0008


class Win32Calls(Protocol):
    def client_pid(self, pipe: object) -> int | None: ...  # GetNamedPipeClientProcessId

    def current_process(self) -> object: ...  # GetCurrentProcess (a pseudo handle: not closed)

    def open_process(self, pid: int) -> object | None: ...  # OpenProcess(QUERY_LIMITED_INFORMATION)

    def user_sid(self, process: object) -> str | None: ...  # OpenProcessToken + TokenUser + string SID

    def close(self, handle: object) -> None: ...  # CloseHandle


class Win32PipePeer:
    """``pairing_ipc.WindowsPeer`` on the Win32 API."""

    def __init__(self, calls: Win32Calls) -> None:
        self._calls = calls

    def client_sid(self, pipe: object) -> str | None:
        pid = self._calls.client_pid(pipe)
        if not pid:
            return None
        process = self._calls.open_process(pid)
        if process is None:
            return None
        try:
            return self._calls.user_sid(process)
        finally:
            self._calls.close(process)

    def own_sid(self) -> str:
        sid = self._calls.user_sid(self._calls.current_process())
        if sid is None:  # without our own SID nobody could be matched: refuse everyone, loudly
            raise OSError("cannot read the recorder's own user SID")
        return sid


class _CtypesCalls:
    def __init__(self) -> None:
        windll: Any = getattr(ctypes, "windll")  # noqa: B009 - absent off Windows
        self._k32 = windll.kernel32
        self._adv = windll.advapi32

    def client_pid(self, pipe: object) -> int | None:
        pid = ctypes.c_ulong(0)
        ok = self._k32.GetNamedPipeClientProcessId(pipe, ctypes.byref(pid))
        return int(pid.value) if ok else None

    def current_process(self) -> object:
        return self._k32.GetCurrentProcess()

    def open_process(self, pid: int) -> object | None:
        handle = self._k32.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
        return handle or None

    def user_sid(self, process: object) -> str | None:
        token = ctypes.c_void_p()
        if not self._adv.OpenProcessToken(process, TOKEN_QUERY, ctypes.byref(token)):
            return None
        try:
            size = ctypes.c_ulong(0)
            self._adv.GetTokenInformation(token, 1, None, 0, ctypes.byref(size))  # 1 = TokenUser
            buf = ctypes.create_string_buffer(size.value)
            if not self._adv.GetTokenInformation(token, 1, buf, size, ctypes.byref(size)):
                return None
            sid = ctypes.cast(buf, ctypes.POINTER(ctypes.c_void_p))[0]  # TOKEN_USER.User.Sid
            text = ctypes.c_wchar_p()
            if not self._adv.ConvertSidToStringSidW(ctypes.c_void_p(sid), ctypes.byref(text)):
                return None
            try:
                return str(text.value)
            finally:
                self._k32.LocalFree(text)
        finally:
            self._k32.CloseHandle(token)

    def close(self, handle: object) -> None:
        self._k32.CloseHandle(handle)


def ctypes_calls() -> Win32Calls:
    return _CtypesCalls()
