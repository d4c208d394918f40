"""The recorder policy payload: defaults, round trip, and each invalid field named."""

from __future__ import annotations

import re

import pytest

from tandem_protocol.recorder_policy import MaskRule, PolicyError, RecorderPolicy


def test_defaults_round_trip() -> None:
    policy = RecorderPolicy.from_dict({})
    assert policy == RecorderPolicy()
    assert RecorderPolicy.from_dict(policy.to_dict()) == policy


def test_a_full_policy_round_trips_and_keeps_unknown_fields() -> None:
    raw = {
        "fps": 2,
        "segment_seconds": 30,
        "monitors": "primary",
        "max_width": 1280,
        "masking": [
            {"name": "card form", "kind": "window", "title": "card|payment", "action": "pause"},
            {"kind": "region", "rect": [0, 0, 200, 40]},
        ],
        "upload_window": ["18:00", "07:30"],
        "bandwidth_kbps": 512,
        "endpoint_audio": True,
        "future_field": 1,
    }
    policy = RecorderPolicy.from_dict(raw)
    assert policy.masking[0].action == "pause" and policy.masking[1].rect == (0, 0, 200, 40)
    assert policy.extra == {"future_field": 1}
    assert RecorderPolicy.from_dict(policy.to_dict()).masking == policy.masking


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"fps": 0}, "fps"),
        ({"fps": "5"}, "fps"),
        ({"fps": True}, "fps"),
        ({"segment_seconds": 1}, "segment_seconds"),
        ({"monitors": "left"}, "monitors"),
        ({"max_width": 100}, "max_width"),
        ({"masking": {}}, "masking"),
        ({"masking": [{"kind": "window"}]}, "masking[0]"),
        ({"masking": [{"kind": "window", "title": "("}]}, "masking[0].title"),
        ({"masking": [{"kind": "region", "rect": [0, 0, -1, 5]}]}, "masking[0].rect"),
        ({"masking": [{"kind": "region", "rect": [0, 0, 1, 5], "action": "pause"}]}, "masking[0].action"),
        ({"upload_window": ["25:00", "01:00"]}, "upload_window"),
        ({"endpoint_audio": "yes"}, "endpoint_audio"),
        ({"spool_min_free_percent": 0}, "spool_min_free_percent"),
    ],
)
def test_each_bad_field_is_named(raw: dict[str, object], field: str) -> None:
    with pytest.raises(PolicyError, match="^" + re.escape(field) + ":"):
        RecorderPolicy.from_dict(raw)


def test_window_rule_matching_is_a_case_insensitive_search() -> None:
    rule = MaskRule.from_dict({"kind": "window", "title": "card payment", "app": "^chrom"})
    assert rule.title_matches("Checkout — Card Payment form", "Chromium")
    assert not rule.title_matches("Card Payment", "firefox")
    assert not rule.title_matches("Inbox", "chromium")
