"""The agent PC's configuration files: what IT deploys (``/etc/tandem/agent.toml``) and what a user may add.

Layers, first one holding a key wins (flags and ``TANDEM_RECORDER_*`` variables still come before
all of them, see config.py):

1. installer properties -- on Windows the MSI's SERVERURL / ENROLLTOKEN, stored under
   ``HKLM\\SOFTWARE\\Tandem\\Agent``; on Linux the device enrolment token (``tet_…``) debconf was
   given, in ``/etc/tandem/enroll-token`` (0600 root: the PC's device broker reads it, a user's
   recorder cannot -- ``AgentSettings.root_token_file`` says it is there); debconf's other answers
   (the server URL, a per-agent code) the package writes into (2);
2. machine config -- ``/etc/tandem/agent.toml`` (``%ProgramData%\\Tandem\\agent.toml`` on Windows);
   ``TANDEM_AGENT_CONFIG`` names another file;
3. user config -- ``agent.toml`` in the user's config directory (``~/.config/tandem``).

IT's settings beat the user's: a user must not point the PC's recorder at another server.

Every value is validated where it is read, and an unknown key is an error naming the file and the
known keys -- a misspelt ``sever_url`` silently ignored would leave 500 PCs unenrolled.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from recorder_service.config import ENV_PREFIX, normalise_server_url, parse_fps, parse_monitor
from recorder_service.errors import ConfigError

CONFIG_ENV = "TANDEM_AGENT_CONFIG"
MACHINE_CONFIG_LINUX = Path("/etc/tandem/agent.toml")
TOKEN_FILE_ENV = "TANDEM_AGENT_ENROLL_TOKEN_FILE"  # tests; the package's file is the default
TOKEN_FILE_LINUX = Path("/etc/tandem/enroll-token")
REGISTRY_KEY = r"SOFTWARE\Tandem\Agent"  # under HKEY_LOCAL_MACHINE, written by the MSI


def _text(value: object, source: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{source}: expected a quoted string, got {value!r}")
    return value.strip()


def _level(value: object, source: str) -> str:
    level = _text(value, source).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"{source}: log level must be DEBUG, INFO, WARNING or ERROR")
    return level


def _bool_text(value: object, source: str) -> str:
    # TOML true/false, or the text an installer writes ("true", "0", "" = not answered)
    if isinstance(value, bool):
        return "true" if value else "false"
    text = _text(value, source).lower()
    if text in ("", "true", "false"):
        return text
    if text in ("1", "0"):
        return "true" if text == "1" else "false"
    raise ConfigError(f"{source}: expected true or false, got {value!r}")


def _version_text(value: object, source: str) -> str:
    from packaging.version import InvalidVersion, Version

    text = _text(value, source)
    if text:
        try:
            Version(text)
        except InvalidVersion as exc:
            raise ConfigError(f"{source}: {text!r} is not a version (e.g. 0.2.0 or 0.2.0+g1dfa7b7)") from exc
    return text


# key -> (validator returning the value as text, the TANDEM_RECORDER_* name it stands for or "")
_KEYS: dict[str, tuple[Callable[[object, str], str], str]] = {
    "server_url": (lambda v, s: normalise_server_url(_text(v, s), s), "SERVER"),
    "enroll_token": (_text, ""),
    "fps": (lambda v, s: str(parse_fps(v if isinstance(v, int | float) else _text(v, s), s)), "FPS"),
    "monitor": (lambda v, s: str(parse_monitor(v if isinstance(v, int) else _text(v, s), s)), "MONITOR"),
    "spool": (_text, "SPOOL"),
    "keyring_file": (_text, "KEYRING_FILE"),
    "log_level": (_level, "LOG_LEVEL"),
    # self-update (recorder_service/updater/system.py reads them from the machine layers only)
    "auto_update": (_bool_text, ""),
    "update_pin": (_version_text, ""),
    "update_root": (_text, ""),  # the deployment's TUF root.json, as IT distributes it
}
# Keys that belong to the PC, not to a user: the system updater never reads a user's file, and a
# user's file that sets one is refused (it would look like it works and do nothing).
MACHINE_ONLY_KEYS = ("auto_update", "update_pin", "update_root")
KNOWN_KEYS = tuple(_KEYS)


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """The merged file layers: each key's value and the source it came from."""

    values: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    # The PC's root-only enrolment token file, when it exists but this process may not read it (a
    # user's recorder): the PC is a device whose broker holds the token. "" otherwise.
    root_token_file: str = ""

    @property
    def enroll_token(self) -> str | None:
        return self.values.get("enroll_token") or None

    def as_env(self) -> dict[str, str]:
        """The values as ``TANDEM_RECORDER_*`` defaults, for config.load_config's env layer."""
        return {ENV_PREFIX + _KEYS[k][1]: v for k, v in self.values.items() if _KEYS[k][1] and v}


def parse_layer(data: Mapping[str, object], source: str) -> dict[str, str]:
    """One layer's keys, validated. ``source`` names the file (or registry key) in messages."""
    out: dict[str, str] = {}
    for key, value in data.items():
        if key not in _KEYS:
            raise ConfigError(
                f"{source}: unknown key {key!r} (known keys: {', '.join(KNOWN_KEYS)}); "
                "fix or remove it -- the recorder does not start with a configuration it cannot read"
            )
        text = _KEYS[key][0](value, f"{source}: {key}")
        if text:  # an empty value (an unanswered installer question) does not override a lower layer
            out[key] = text
    return out


def parse_toml(text: str, source: str) -> dict[str, str]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    return parse_layer(data, source)


def merge(layers: list[tuple[str, dict[str, str]]]) -> AgentSettings:
    """First layer holding a key wins (layers are given highest first)."""
    settings = AgentSettings()
    for source, values in layers:
        for key, value in values.items():
            if key not in settings.values:
                settings.values[key] = value
                settings.sources[key] = source
    return settings


def read_toml_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    return parse_toml(text, str(path))


def read_token_file(path: Path) -> tuple[dict[str, str], bool]:
    """The root-only token file's layer, and whether it is there but not ours to read (a user's
    recorder: the point of the file) -- then an empty layer, and True."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, False
    except PermissionError:
        return {}, True
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    token = text.strip()
    if any(ch.isspace() for ch in token):
        raise ConfigError(f"{path}: expected the enrolment token alone on one line")
    return parse_layer({"enroll_token": token}, str(path)), False


def token_file_path(env: Mapping[str, str]) -> Path | None:
    if env.get(TOKEN_FILE_ENV):
        return Path(env[TOKEN_FILE_ENV])
    if sys.platform == "win32":  # pragma: no cover - Windows only: the MSI's property is in HKLM
        return None
    return TOKEN_FILE_LINUX


def exposed_token_warning(settings: AgentSettings, mode_of: Callable[[str], int] | None = None) -> str:
    """A warning when the device enrolment token (``tet_…``) comes from a file every local user
    can read (IT put it into agent.toml by hand, or an older package did): any of them could enrol
    devices of his own with it. "" when it does not."""
    token = settings.enroll_token or ""
    source = settings.sources.get("enroll_token", "")
    if not token.startswith("tet_") or not source or source.startswith("HKLM\\"):
        return ""
    try:
        mode = (mode_of or (lambda p: os.stat(p).st_mode))(source)
    except OSError:
        return ""
    if not mode & 0o004:
        return ""
    return (
        f"the device enrolment token in {source} is readable by every user of this PC (mode "
        f"{mode & 0o777:o}), who could enrol devices of his own with it: move it to "
        f"{TOKEN_FILE_LINUX} (0600 root; `dpkg-reconfigure tandem-agent` writes it there)"
    )


# The MSI's registry values (installers/windows/tandem-agent.wxs) and the keys they stand for.
REGISTRY_VALUES = {"ServerUrl": "server_url", "EnrollToken": "enroll_token"}


def registry_layer(read: Callable[[str], object | None]) -> dict[str, str]:
    """The installer-properties layer from ``read(value name)`` (None: not there), validated."""
    found = {ours: value for name, ours in REGISTRY_VALUES.items() if (value := read(name)) is not None}
    return parse_layer(found, "HKLM\\" + REGISTRY_KEY)


def _winreg_layer() -> dict[str, str]:  # pragma: no cover - Windows only
    if sys.platform != "win32":  # (mypy checks the rest only for Windows)
        return {}
    import winreg

    try:
        key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, REGISTRY_KEY)
    except FileNotFoundError:
        return {}
    with key:

        def read(name: str) -> object | None:
            try:
                return winreg.QueryValueEx(key, name)[0]
            except FileNotFoundError:
                return None

        return registry_layer(read)


def machine_config_path(env: Mapping[str, str]) -> Path:
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return Path(env.get("ProgramData", r"C:\ProgramData")) / "Tandem" / "agent.toml"
    return MACHINE_CONFIG_LINUX


def user_config_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("tandem", appauthor=False)) / "agent.toml"


def load_agent_settings(env: Mapping[str, str] | None = None) -> AgentSettings:
    env = os.environ if env is None else env
    machine = machine_config_path(env)
    user = user_config_path()
    layers, unreadable = _installer_layers(env)
    layers.append((str(machine), read_toml_file(machine)))
    user_values = read_toml_file(user)
    machine_only = sorted(set(user_values) & set(MACHINE_ONLY_KEYS))
    if machine_only:
        raise ConfigError(
            f"{user}: {', '.join(machine_only)} can only be set for the whole PC, in {machine} "
            "(updates are installed for every user of the PC)"
        )
    layers.append((str(user), user_values))
    return replace(merge(layers), root_token_file=unreadable)


def load_machine_settings(env: Mapping[str, str] | None = None) -> AgentSettings:
    """The PC's own layers only (installer properties, machine file): what the system updater,
    running as root/SYSTEM with no user, reads."""
    env = os.environ if env is None else env
    machine = machine_config_path(env)
    layers, unreadable = _installer_layers(env)
    layers.append((str(machine), read_toml_file(machine)))
    return replace(merge(layers), root_token_file=unreadable)


def _installer_layers(env: Mapping[str, str]) -> tuple[list[tuple[str, dict[str, str]]], str]:
    """Layer 1 (see the module's docstring), and the root-only token file if we cannot read it."""
    layers: list[tuple[str, dict[str, str]]] = []
    if sys.platform == "win32":  # pragma: no cover - Windows only
        layers.append(("HKLM\\" + REGISTRY_KEY, _winreg_layer()))
    path = token_file_path(env)
    if path is None:  # pragma: no cover - Windows only
        return layers, ""
    values, unreadable = read_token_file(path)
    layers.append((str(path), values))
    return layers, str(path) if unreadable else ""
