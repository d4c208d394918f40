"""Where IT's update policy is read from, behind one interface: ``load_update_settings``.

Layers, first wins per key (``policy.settings_from_layers``):

1. Windows: ``HKLM\\SOFTWARE\\Policies\\Tandem\\Agent`` -- ``AutoUpdate`` (DWORD 0/1, written by the
   MSI's ``AUTOUPDATE``; group policy can set it too) and ``UpdatePin`` (string);
2. the machine config's ``auto_update`` / ``update_pin`` (passed in by the caller: the keys are
   read with the rest of ``/etc/tandem/agent.toml`` by ``recorder_service.machine_config``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

from recorder_service.updater.policy import (
    POLICY_REGISTRY_KEY,
    UpdateSettings,
    registry_policy_layer,
    settings_from_layers,
)

RegistryReader = Callable[[], Mapping[str, object]]


def _winreg_policy() -> dict[str, object]:  # pragma: no cover - Windows only
    if sys.platform != "win32":  # (mypy checks the rest only for Windows)
        return {}
    import winreg

    try:
        key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, POLICY_REGISTRY_KEY)
    except FileNotFoundError:
        return {}
    with key:

        def read(name: str) -> object | None:
            try:
                value: object = winreg.QueryValueEx(key, name)[0]
            except FileNotFoundError:
                return None
            return value

        return registry_policy_layer(read)


def load_update_settings(
    machine: Mapping[str, object], machine_source: str, registry: RegistryReader | None = None
) -> UpdateSettings:
    """IT's update policy on this PC. ``registry`` defaults to the real HKLM reader (nothing off
    Windows); tests pass their own."""
    read_registry = registry if registry is not None else _winreg_policy
    layers: list[tuple[str, Mapping[str, object]]] = [("HKLM\\" + POLICY_REGISTRY_KEY, read_registry())]
    layers.append((machine_source, {k: v for k, v in machine.items() if k in ("auto_update", "update_pin")}))
    return settings_from_layers(layers)
