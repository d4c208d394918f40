"""Secrets out of the server's logs.

uvicorn writes each request's path *with its query string* to the access log, and each
WebSocket handshake's to its error log. Tokens are no longer accepted in a query string, but
a client that still sends one (or a one-time ticket) must not leave it in a log file that
more people read than should log in: ``token=``/``ticket=`` values are replaced by
``[redacted]`` in every record of those loggers before any handler formats it.
"""

from __future__ import annotations

import logging
import re

SECRET_PARAMS = re.compile(r"(?i)((?:^|[?&;\s\"'])(?:token|ticket|access_token)=)[^&;\s\"']*")
REDACTED = "[redacted]"
UVICORN_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    return SECRET_PARAMS.sub(lambda m: m.group(1) + REDACTED, text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def install(loggers: tuple[str, ...] = UVICORN_LOGGERS) -> None:
    """Add the filter to uvicorn's loggers; call after uvicorn configured its logging."""
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
