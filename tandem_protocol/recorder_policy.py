"""The recorder policy: what an administrator decides about every agent PC's screen recorder.

One JSON object, stored by the server (setting ``recorder_policy``), changed through one service
(web, API and CLI alike) and delivered to each recorder in the ``policy`` field of
``screen.start`` and on connect (event ``recorder.policy``). Pure data + validation, shared by the
server and the recorder so both read it the same way; a field the recorder does not know is
ignored, an invalid value is refused with a message that names the field.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

MONITORS = ("all", "primary")
MASK_KINDS = ("window", "region")
MASK_ACTIONS = ("mask", "pause")  # black the area out / pause the screen recording while shown
MAX_RULES = 50
MAX_PATTERN = 200


class PolicyError(ValueError):
    """A policy value is invalid; the message names the field."""


@dataclass(frozen=True, slots=True)
class MaskRule:
    """A window (by title and/or application, regular expressions, case-insensitive search) or a
    fixed region of the canvas (x, y, width, height in canvas pixels) never to be recorded."""

    name: str
    kind: str  # "window" | "region"
    action: str = "mask"  # "mask" | "pause"
    title: str = ""  # window kind: regex searched in the window title
    app: str = ""  # window kind: regex searched in the application (WM_CLASS / exe name)
    rect: tuple[int, int, int, int] | None = None  # region kind

    @classmethod
    def from_dict(cls, raw: Any, where: str = "masking") -> MaskRule:
        if not isinstance(raw, dict):
            raise PolicyError(f"{where}: a rule must be an object")
        name = str(raw.get("name", "")).strip()[:100]
        kind = raw.get("kind")
        action = raw.get("action", "mask")
        if kind not in MASK_KINDS:
            raise PolicyError(f"{where}.kind: one of {', '.join(MASK_KINDS)}")
        if action not in MASK_ACTIONS:
            raise PolicyError(f"{where}.action: one of {', '.join(MASK_ACTIONS)}")
        title = str(raw.get("title", "") or "")
        app = str(raw.get("app", "") or "")
        rect_raw = raw.get("rect")
        rect: tuple[int, int, int, int] | None = None
        if kind == "window":
            if not title and not app:
                raise PolicyError(f"{where}: a window rule needs a title or an app pattern")
            for key, pattern in (("title", title), ("app", app)):
                if len(pattern) > MAX_PATTERN:
                    raise PolicyError(f"{where}.{key}: at most {MAX_PATTERN} characters")
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise PolicyError(f"{where}.{key}: not a regular expression ({exc})") from None
        else:
            if action != "mask":
                raise PolicyError(f"{where}.action: a region can only be masked")
            if not (isinstance(rect_raw, list | tuple) and len(rect_raw) == 4):
                raise PolicyError(f"{where}.rect: [x, y, width, height]")
            try:
                x, y, w, h = (int(v) for v in rect_raw)
            except (TypeError, ValueError):
                raise PolicyError(f"{where}.rect: four integers") from None
            if x < 0 or y < 0 or w <= 0 or h <= 0:
                raise PolicyError(f"{where}.rect: x, y ≥ 0 and width, height > 0")
            rect = (x, y, w, h)
        return cls(name or f"{kind} rule", kind, action, title, app, rect)

    def title_matches(self, title: str, app: str) -> bool:
        """Whether a window with this title and application is covered (window rules only)."""
        if self.kind != "window":
            return False
        if self.title and not re.search(self.title, title, re.IGNORECASE):
            return False
        return not (self.app and not re.search(self.app, app, re.IGNORECASE))


@dataclass(frozen=True, slots=True)
class RecorderPolicy:
    fps: float = 5.0
    segment_seconds: float = 60.0  # a new segment at least this often
    monitors: str = "all"  # "all" (one canvas) | "primary"
    max_width: int = 0  # downscale wider canvases to this width; 0 = never
    masking: tuple[MaskRule, ...] = ()
    upload_window: tuple[str, str] | None = None  # ("HH:MM", "HH:MM") local time; None = any time
    bandwidth_kbps: int = 0  # upload cap; 0 = none
    endpoint_audio: bool = False  # microphone (+ what the agent hears) as an audio track
    spool_min_free_percent: float = 10.0  # stop capturing (and alarm) below this free disk space
    spool_max_mb: int = 4096  # and above this spool size
    heartbeat_seconds: float = 15.0
    extra: dict[str, Any] = field(default_factory=dict)  # fields this version does not know

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("extra")
        # JSON-shaped (lists, not tuples): equal to the same policy read back from JSON.
        out["masking"] = [
            {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(r).items() if v not in ("", None)}
            for r in self.masking
        ]
        out["upload_window"] = list(self.upload_window) if self.upload_window else None
        return out

    @classmethod
    def from_dict(cls, raw: Any) -> RecorderPolicy:
        """Validated; a ``PolicyError`` names the first bad field. Unknown fields are kept in
        ``extra`` (a newer server may send more than this recorder knows)."""
        if not isinstance(raw, dict):
            raise PolicyError("policy: must be an object")
        known = set(cls.__dataclass_fields__) - {"extra"}
        d = cls()
        fps = _number(raw, "fps", d.fps, 0.2, 30.0)
        segment = _number(raw, "segment_seconds", d.segment_seconds, 5.0, 600.0)
        monitors = raw.get("monitors", d.monitors)
        if monitors not in MONITORS:
            raise PolicyError(f"monitors: one of {', '.join(MONITORS)}")
        max_width = int(_number(raw, "max_width", d.max_width, 0, 7680))
        if 0 < max_width < 320:
            raise PolicyError("max_width: 0 (no downscale) or at least 320")
        rules_raw = raw.get("masking", [])
        if not isinstance(rules_raw, list) or len(rules_raw) > MAX_RULES:
            raise PolicyError(f"masking: a list of at most {MAX_RULES} rules")
        rules = tuple(MaskRule.from_dict(r, f"masking[{i}]") for i, r in enumerate(rules_raw))
        window = raw.get("upload_window", None)
        if window is not None:
            if not (isinstance(window, list | tuple) and len(window) == 2) or not all(
                isinstance(t, str) and re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", t) for t in window
            ):
                raise PolicyError('upload_window: null or ["HH:MM", "HH:MM"]')
            window = (window[0], window[1])
        bandwidth = int(_number(raw, "bandwidth_kbps", d.bandwidth_kbps, 0, 10_000_000))
        audio = raw.get("endpoint_audio", d.endpoint_audio)
        if not isinstance(audio, bool):
            raise PolicyError("endpoint_audio: true or false")
        free = _number(raw, "spool_min_free_percent", d.spool_min_free_percent, 1.0, 90.0)
        spool_max = int(_number(raw, "spool_max_mb", d.spool_max_mb, 64, 1_000_000))
        heartbeat = _number(raw, "heartbeat_seconds", d.heartbeat_seconds, 2.0, 300.0)
        extra = {k: v for k, v in raw.items() if k not in known}
        return cls(
            fps,
            segment,
            monitors,
            max_width,
            rules,
            window,
            bandwidth,
            audio,
            free,
            spool_max,
            heartbeat,
            extra,
        )


def _number(raw: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise PolicyError(f"{key}: a number")
    if not low <= value <= high:
        raise PolicyError(f"{key}: between {low:g} and {high:g}")
    return float(value)
