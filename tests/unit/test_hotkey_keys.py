"""Global hotkeys as written by the agent: parsing, refusals that say why, the X11 grab and match,
the Windows registration, and the auto-repeat debounce."""

from __future__ import annotations

import pytest

from agent_app.hotkey.keys import (
    MOD_ALT,
    MOD_CONTROL,
    MOD_NOREPEAT,
    MOD_SHIFT,
    MOD_WIN,
    X11_LOCK,
    X11_NUM_LOCK,
    Debounce,
    HotKey,
    HotKeyError,
    parse_hotkey,
)


def test_parse_and_format_round_trip() -> None:
    key = parse_hotkey(" ctrl + ALT +p ")
    assert key == HotKey(frozenset({"ctrl", "alt"}), "p") and str(key) == "Ctrl+Alt+P"
    assert str(parse_hotkey("Win+Shift+F9")) == "Shift+Super+F9"
    assert str(parse_hotkey("Pause")) == "Pause" and str(parse_hotkey("scroll lock")) == "ScrollLock"
    assert parse_hotkey("Control+Meta+7").modifiers == frozenset({"ctrl", "super"})


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "write it like"),
        ("Ctrl++P", "write it like"),
        ("Hyper+P", "not Ctrl, Alt, Shift or Super"),
        ("Ctrl+Ctrl+P", "given twice"),
        ("Ctrl+Alt", "ends in a modifier"),
        ("Ctrl+Enter", "not a letter"),
        ("Ctrl+é", "not a letter"),
        ("P", "taken from every other program"),
        ("Shift+P", "taken from every other program"),
        ("Space", "taken from every other program"),
    ],
)
def test_refusals_say_why(text: str, why: str) -> None:
    with pytest.raises(HotKeyError, match=why):
        parse_hotkey(text)


def test_x11_grab_covers_caps_and_num_lock_and_match_ignores_them() -> None:
    key = parse_hotkey("Ctrl+Alt+P")
    assert key.x11_keysym_name == "p" and key.x11_mask == 4 | 8
    assert set(key.x11_grab_masks()) == {12, 12 | X11_LOCK, 12 | X11_NUM_LOCK, 12 | X11_LOCK | X11_NUM_LOCK}
    assert key.x11_matches(12) and key.x11_matches(12 | X11_NUM_LOCK | X11_LOCK)
    assert not key.x11_matches(12 | 1)  # Ctrl+Alt+Shift+P is another key
    assert not key.x11_matches(4)
    assert parse_hotkey("F9").x11_keysym_name == "F9" and parse_hotkey("Pause").x11_keysym_name == "Pause"


def test_windows_registration() -> None:
    assert parse_hotkey("Ctrl+Alt+P").windows_registration() == (
        MOD_NOREPEAT | MOD_CONTROL | MOD_ALT,
        ord("P"),
    )
    assert parse_hotkey("Win+Shift+F9").windows_registration() == (MOD_NOREPEAT | MOD_WIN | MOD_SHIFT, 0x78)
    assert parse_hotkey("Pause").windows_registration() == (MOD_NOREPEAT, 0x13)
    assert parse_hotkey("Ctrl+Alt+5").windows_registration()[1] == ord("5")


def test_debounce_swallows_auto_repeat_but_not_a_second_press() -> None:
    d = Debounce(0.5)
    assert d.accept(10.0)
    assert not d.accept(10.03) and not d.accept(10.4) and not d.accept(10.8)  # held: auto-repeat
    assert d.accept(11.4)  # released, pressed again
