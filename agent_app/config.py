"""The desktop's settings from the agent PC's configuration files.

``/etc/tandem/agent.toml`` is the machine's, written by IT (the tandem-agent package writes its
``server_url`` there): a server URL set there is fixed — the login form shows it and does not let
the agent change it. ``~/.config/tandem/agent.toml`` (``$XDG_CONFIG_HOME``) is the user's: its
``server_url`` only pre-fills the form. Both files are shared with the recorder, which refuses
keys it does not know, so the desktop's own keys live beside them in ``desktop.toml`` (machine,
then user; the user's wins): ``pause_hotkey = "Ctrl+Alt+P"`` (``""`` turns the hotkey off).
A file that cannot be read is logged and skipped: the desktop must start whatever IT wrote.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
MACHINE_DIR = Path("/etc/tandem")
DEFAULT_HOTKEY = "Ctrl+Alt+P"


@dataclass(frozen=True, slots=True)
class DesktopSettings:
    server_url: str = ""
    server_fixed: bool = False  # set by IT in the machine's file: not editable at login
    pause_hotkey: str = ""  # "" : no global hotkey


def user_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "tandem"


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return {}


def _text(values: Mapping[str, Any], key: str, path: Path) -> str | None:
    value = values.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        log.warning("ignoring %s in %s: not a string", key, path)
        return None
    return value.strip()


def load_settings(
    env: Mapping[str, str] | None = None, machine_dir: Path = MACHINE_DIR, user: Path | None = None
) -> DesktopSettings:
    env = os.environ if env is None else env
    user = user or user_dir(env)
    server_url, fixed = "", False
    machine_url = _text(_read(machine_dir / "agent.toml"), "server_url", machine_dir / "agent.toml")
    if machine_url:
        server_url, fixed = machine_url, True
    else:
        server_url = _text(_read(user / "agent.toml"), "server_url", user / "agent.toml") or ""
    hotkey = DEFAULT_HOTKEY
    for directory in (machine_dir, user):
        value = _text(_read(directory / "desktop.toml"), "pause_hotkey", directory / "desktop.toml")
        if value is not None:
            hotkey = value
    return DesktopSettings(server_url=server_url, server_fixed=fixed, pause_hotkey=hotkey)
