"""Global hotkeys as the agent writes them ("Ctrl+Alt+P"): parsing, and what each platform's key
grab needs (X11 modifier mask and keysym name; Windows MOD_* flags and virtual-key code). Pure.

A hotkey is global: it fires in whichever application has the focus, so a bare letter or digit
would swallow that key from every other program. Letters, digits and Space therefore need Ctrl,
Alt or Super; F1–F24, Pause and Scroll Lock may stand alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_app.errors import AgentAppError


class HotKeyError(AgentAppError):
    """A hotkey that cannot be written or registered; the message says why."""


_MODIFIER_NAMES = {
    "ctrl": "ctrl",
    "control": "ctrl",
    "alt": "alt",
    "shift": "shift",
    "super": "super",
    "win": "super",
    "meta": "super",
}
_MODIFIER_ORDER = ("ctrl", "alt", "shift", "super")
_MODIFIER_LABELS = {"ctrl": "Ctrl", "alt": "Alt", "shift": "Shift", "super": "Super"}
# Named keys: our name → (label, X11 keysym name, Windows virtual-key code).
_NAMED = {
    "pause": ("Pause", "Pause", 0x13),
    "scrolllock": ("ScrollLock", "Scroll_Lock", 0x91),
    "space": ("Space", "space", 0x20),
    **{f"f{n}": (f"F{n}", f"F{n}", 0x70 + n - 1) for n in range(1, 25)},
}
_MAY_STAND_ALONE = {"pause", "scrolllock", *(f"f{n}" for n in range(1, 25))}

# X11 modifier masks (X.h) and the lock bits that must not change whether the key matches.
X11_MASKS = {"shift": 1 << 0, "ctrl": 1 << 2, "alt": 1 << 3, "super": 1 << 6}
X11_LOCK = 1 << 1  # Caps Lock
X11_NUM_LOCK = 1 << 4  # Mod2: Num Lock on every common layout
X11_IGNORED = (0, X11_LOCK, X11_NUM_LOCK, X11_LOCK | X11_NUM_LOCK)
# Windows RegisterHotKey flags (winuser.h).
MOD_ALT, MOD_CONTROL, MOD_SHIFT, MOD_WIN, MOD_NOREPEAT = 0x1, 0x2, 0x4, 0x8, 0x4000
_WIN_MODS = {"alt": MOD_ALT, "ctrl": MOD_CONTROL, "shift": MOD_SHIFT, "super": MOD_WIN}


@dataclass(frozen=True, slots=True)
class HotKey:
    modifiers: frozenset[str]  # of "ctrl", "alt", "shift", "super"
    key: str  # "p", "7", "f9", "pause", "space", ...

    def __str__(self) -> str:
        mods = [_MODIFIER_LABELS[m] for m in _MODIFIER_ORDER if m in self.modifiers]
        label = _NAMED[self.key][0] if self.key in _NAMED else self.key.upper()
        return "+".join([*mods, label])

    @property
    def x11_keysym_name(self) -> str:
        return _NAMED[self.key][1] if self.key in _NAMED else self.key

    @property
    def x11_mask(self) -> int:
        mask = 0
        for m in self.modifiers:
            mask |= X11_MASKS[m]
        return mask

    def x11_grab_masks(self) -> tuple[int, ...]:
        """One grab per lock combination: with Caps or Num Lock on, X reports their bits too."""
        return tuple(self.x11_mask | extra for extra in X11_IGNORED)

    def x11_matches(self, state: int) -> bool:
        """Does a KeyPress with this modifier ``state`` (its keycode already matched) fire us?"""
        relevant = 0
        for bit in X11_MASKS.values():
            relevant |= bit
        return state & relevant == self.x11_mask

    def windows_registration(self) -> tuple[int, int]:
        """``(fsModifiers, vk)`` for RegisterHotKey; MOD_NOREPEAT so holding the key fires once."""
        mods = MOD_NOREPEAT
        for m in self.modifiers:
            mods |= _WIN_MODS[m]
        vk = _NAMED[self.key][2] if self.key in _NAMED else ord(self.key.upper())
        return mods, vk


def parse_hotkey(text: str) -> HotKey:
    """``"Ctrl+Alt+P"`` → HotKey; case and spaces do not matter. ``HotKeyError`` says what is wrong."""
    parts = [p.strip().lower() for p in text.split("+")]
    if not text.strip() or any(not p for p in parts):
        raise HotKeyError(f"hotkey {text!r}: write it like Ctrl+Alt+P")
    *mod_parts, key = parts
    modifiers: set[str] = set()
    for part in mod_parts:
        if part not in _MODIFIER_NAMES:
            raise HotKeyError(f"hotkey {text!r}: {part!r} is not Ctrl, Alt, Shift or Super")
        name = _MODIFIER_NAMES[part]
        if name in modifiers:
            raise HotKeyError(f"hotkey {text!r}: {part!r} given twice")
        modifiers.add(name)
    key = key.replace(" ", "").replace("_", "")
    if key in _MODIFIER_NAMES:
        raise HotKeyError(f"hotkey {text!r}: ends in a modifier; name the key too, e.g. Ctrl+Alt+P")
    if not (key in _NAMED or (len(key) == 1 and (key.isascii() and key.isalnum()))):
        raise HotKeyError(
            f"hotkey {text!r}: {key!r} is not a letter, digit, F1–F24, Pause, ScrollLock or Space"
        )
    if key not in _MAY_STAND_ALONE and not modifiers & {"ctrl", "alt", "super"}:
        raise HotKeyError(
            f"hotkey {text!r}: a letter, digit or Space needs Ctrl, Alt or Super, "
            "or it would be taken from every other program"
        )
    return HotKey(frozenset(modifiers), key)


class Debounce:
    """Holding a key down repeats it (X11 auto-repeat sends press after press): a press fires
    only after ``gap`` seconds without one, so a held hotkey pauses and does not pause-resume-pause."""

    def __init__(self, gap: float = 0.5) -> None:
        self._gap = gap
        self._last: float | None = None

    def accept(self, now: float) -> bool:
        """Every press restarts the gap: a key held for seconds fires once, at its first press."""
        last, self._last = self._last, now
        return last is None or not 0 <= now - last < self._gap
