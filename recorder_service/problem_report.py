"""What stopped the recorder, written where the agent's desktop finds it (tandem_protocol.recorder_problem).

A recorder that cannot start (an unknown config key, a wrong server URL, a refused enrolment)
never reaches the server, so IT's fleet page would not know. ``tandem-recorder run`` writes its
fatal problem to the per-user problem file; the agent's desktop, logged in to the server, reports
it (agent_app/recorder_problem_report.py). A clean start removes the file, which the desktop
reports as the problem cleared.

The kind is chosen from the exception's type (recorder_service/errors.py), not its words.
Writing the file is best effort: the problem is in the log already, and a full or read-only disk
must not turn a clear "unknown key" into a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from recorder_service.errors import (
    ConfigError,
    CredentialsError,
    EnrolmentRefusedError,
    RecorderError,
    ServerUnreachableError,
)
from recorder_service.updater.policy import UpdatePolicyError
from tandem_protocol.recorder_problem import RecorderProblem, clear_problem, problem_path, write_problem

log = logging.getLogger(__name__)

# The server's answers to a device credential it no longer takes (server/services/devices.py).
CREDENTIAL_REFUSALS = ("invalid_device_credential", "device_revoked")


def kind_of(exc: BaseException) -> str:
    """The problem kind the fleet page shows for this failure. Subclasses first."""
    if isinstance(exc, ConfigError | UpdatePolicyError):  # the latter: an unreadable update setting
        return "config"
    if isinstance(exc, ServerUnreachableError):
        return "unreachable"
    if isinstance(exc, EnrolmentRefusedError):
        return "enrolment"
    if isinstance(exc, CredentialsError):  # no stored token, no keyring, a refused login
        return "credential"
    if isinstance(exc, RecorderError):
        return "other"
    return "crashed"  # not an expected failure: a bug, reported with its type


def _version() -> str | None:
    try:
        from recorder_service.updater.layout import installed_version

        return installed_version() or None
    except Exception:  # the version is a detail: never let it hide the problem itself
        return None


def record(kind: str, message: str, env: Mapping[str, str] | None = None) -> None:
    path = problem_path(env)
    try:
        write_problem(RecorderProblem.now(kind, message, _version()), path)
    except OSError as exc:
        log.warning("could not write the problem file %s for the agent's desktop: %s", path, exc)


def record_failure(exc: BaseException, env: Mapping[str, str] | None = None) -> None:
    kind = kind_of(exc)
    record(kind, str(exc) if kind != "crashed" else f"{type(exc).__name__}: {exc}", env)


def record_pair_refusal(status: int, body: Mapping[str, Any], message: str) -> None:
    """A pairing refused because of this PC's device credential (revoked by IT, unknown): the
    recorder keeps listening but records nobody until the PC is enrolled again."""
    if status == 401 and body.get("error") in CREDENTIAL_REFUSALS:
        record("credential", message)


def started(env: Mapping[str, str] | None = None) -> None:
    """The recorder started cleanly (or paired): whatever stopped it before is over."""
    path = problem_path(env)
    try:
        if clear_problem(path):
            log.info("the earlier problem (%s) is over: removed", path)
    except OSError as exc:
        log.warning("could not remove the problem file %s: %s", path, exc)
