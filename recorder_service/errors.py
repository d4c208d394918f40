"""Every exception the recorder service raises on purpose, in one tree.

::

    RecorderError
    ├── ConfigError (ValueError)         a flag, environment variable or default is unusable
    ├── CredentialsError                 no keyring, no stored token, or the login was refused
    │   ├── ServerUnreachableError       the server did not answer (a wrong URL, no network)
    │   └── EnrolmentRefusedError        the server refused the enrolment code or token
    ├── CaptureError                     the screen could not be grabbed
    ├── EncoderError                     PyAV/libx264 failed to open, encode or finalise
    ├── Mp4StructureError (ValueError)   not a fragmented MP4 with a complete fragment
    ├── SpoolError                       a spool file or manifest could not be read or written
    │   └── ManifestError (ValueError)   a manifest on disk is malformed
    └── UploadError                      an upload failed in a way retrying will not fix

One root so the CLI can turn any expected failure into a clear message and an exit code, while
programming errors still surface as tracebacks.
"""

from __future__ import annotations


class RecorderError(Exception):
    """Base of every expected recorder failure."""


class ConfigError(RecorderError, ValueError):
    """A flag, environment variable or default is unusable."""


class CredentialsError(RecorderError):
    """No usable keyring, no stored token, or the server refused the login."""


class ServerUnreachableError(CredentialsError):
    """The server could not be reached at all: a wrong URL or no network, nothing refused."""


class EnrolmentRefusedError(CredentialsError):
    """The server refused the enrolment code or token (used, expired, revoked, unknown)."""


class CaptureError(RecorderError):
    """The screen could not be grabbed."""


class EncoderError(RecorderError):
    """PyAV/libx264 failed to open, encode or finalise the screen file."""


class Mp4StructureError(RecorderError, ValueError):
    """The bytes are not a fragmented MP4 with at least one complete fragment."""


class SpoolError(RecorderError):
    """A spool file or manifest could not be read or written."""


class ManifestError(SpoolError, ValueError):
    """A manifest on disk is malformed (bad JSON, missing or mistyped fields)."""


class UploadError(RecorderError):
    """An upload failed in a way retrying will not fix."""
