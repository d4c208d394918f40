"""Recorder settings from command-line flags and ``TANDEM_RECORDER_*`` environment variables.

Precedence: flag, then environment, then default. Every value is validated here so a typo fails
at start-up with a sentence naming the flag and the variable, not later inside a thread.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from recorder_service.errors import ConfigError

ENV_PREFIX = "TANDEM_RECORDER_"
DEFAULT_FPS = 5.0
MAX_FPS = 30.0


@dataclass(frozen=True, slots=True)
class RecorderConfig:
    server_url: str | None  # None: use the server of the last login
    spool_dir: Path
    fps: float
    monitor: int  # 0 = all monitors (their union), 1 = primary, n = the n-th
    keyring_file: Path | None  # plaintext file keyring, opt-in (see credentials.py)
    log_level: str = "INFO"


def default_spool_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("tandem-recorder", appauthor=False)) / "spool"


def normalise_server_url(value: str, source: str = "--server") -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{source}: {value!r} is not an http(s) URL such as https://tandem.example:8443")
    if parts.query or parts.fragment:
        raise ConfigError(f"{source}: the server URL must not have a query or fragment")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def parse_fps(value: str | float, source: str = "--fps") -> float:
    try:
        fps = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {value!r} is not a number") from exc
    if not math.isfinite(fps) or not 0 < fps <= MAX_FPS:
        raise ConfigError(f"{source}: frames per second must be above 0 and at most {MAX_FPS:g}")
    return fps


def parse_monitor(value: str | int, source: str = "--monitor") -> int:
    try:
        monitor = int(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {value!r} is not a whole number") from exc
    if monitor < 0:
        raise ConfigError(f"{source}: 0 means all monitors, 1 the primary; negative values are invalid")
    return monitor


def _pick(flag: object | None, env: Mapping[str, str], name: str) -> tuple[object | None, str]:
    if flag is not None:
        return flag, f"--{name.lower().replace('_', '-')}"
    key = ENV_PREFIX + name
    return env.get(key) or None, key


def load_config(
    *,
    server: str | None = None,
    spool: str | None = None,
    fps: str | float | None = None,
    monitor: str | int | None = None,
    keyring_file: str | None = None,
    log_level: str | None = None,
    env: Mapping[str, str] | None = None,
) -> RecorderConfig:
    env = os.environ if env is None else env
    raw_server, src = _pick(server, env, "SERVER")
    server_url = None if raw_server is None else normalise_server_url(str(raw_server), src)
    raw_spool, _ = _pick(spool, env, "SPOOL")
    spool_dir = Path(str(raw_spool)).expanduser() if raw_spool else default_spool_dir()
    raw_fps, src = _pick(fps, env, "FPS")
    fps_value = DEFAULT_FPS if raw_fps is None else parse_fps(str(raw_fps), src)
    raw_monitor, src = _pick(monitor, env, "MONITOR")
    monitor_value = 0 if raw_monitor is None else parse_monitor(str(raw_monitor), src)
    raw_keyring, _ = _pick(keyring_file, env, "KEYRING_FILE")
    keyring_path = Path(str(raw_keyring)).expanduser() if raw_keyring else None
    raw_level, src = _pick(log_level, env, "LOG_LEVEL")
    level = "INFO" if raw_level is None else str(raw_level).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"{src}: log level must be DEBUG, INFO, WARNING or ERROR")
    return RecorderConfig(server_url, spool_dir, fps_value, monitor_value, keyring_path, level)
