"""The voice-formats policy: names kept in step with the encoder, validation, the stored setting."""

from __future__ import annotations

import json

import pytest

from server.errors import VoiceFormatsPolicyError
from server.policy import voice_formats as policy
from server.voice.formats import SPECS, VoiceFormat


def test_labels_and_content_types_cover_exactly_the_encoders_formats() -> None:
    assert set(policy.LABELS) == {f.value for f in VoiceFormat}
    assert set(policy.CONTENT_TYPES) == set(policy.LABELS)
    for fmt, spec in SPECS.items():
        expected = {"mp3": "audio/mpeg", "ogg": "audio/ogg", None: "audio/wav"}[spec.container]
        assert policy.CONTENT_TYPES[fmt.value] == expected, fmt


def test_media_kinds_fit_the_column_and_round_trip() -> None:
    for fmt in policy.LABELS:
        kind = policy.media_kind(fmt)
        assert len(kind) <= 20  # media_files.kind is String(20)
        assert policy.format_of_kind(kind) == fmt
    for kind in ("voice", "muxed", "screen", "voice:", "voice:flac", "voicemp3_8k_mono", "VOICE:opus"):
        assert policy.format_of_kind(kind) is None, kind


def test_validate_orders_deduplicates_and_names_what_is_wrong() -> None:
    assert policy.validate(["opus", "mp3_8k_mono", "opus"], lambda _f: True) == ["mp3_8k_mono", "opus"]
    assert policy.validate([], lambda _f: True) == []
    with pytest.raises(VoiceFormatsPolicyError) as unknown:
        policy.validate(["mp3_8k_mono", "flac", "aac"], lambda _f: True)
    assert unknown.value.code == "unknown_voice_format"
    assert "'aac', 'flac'" in str(unknown.value) and "mp3_8k_mono" in str(unknown.value)
    with pytest.raises(VoiceFormatsPolicyError) as missing:
        policy.validate(["opus", "wav_ulaw"], lambda f: f != "opus")
    assert missing.value.code == "voice_format_unavailable" and "opus" in str(missing.value)


def test_stored_value_round_trips_and_damage_falls_back() -> None:
    assert policy.parse_stored(None) == ["mp3_16k_stereo"]
    assert policy.parse_stored(policy.dump(["wav_ulaw", "mp3_8k_mono"])) == ["mp3_8k_mono", "wav_ulaw"]
    assert policy.parse_stored(policy.dump([])) == []  # WAV only is a choice, not "unset"
    assert policy.parse_stored("not json") == ["mp3_16k_stereo"]
    assert policy.parse_stored(json.dumps({"formats": ["opus"]})) == ["mp3_16k_stereo"]
    assert policy.parse_stored(json.dumps([1, 2])) == ["mp3_16k_stereo"]
    # A format a later version dropped is ignored, the rest kept.
    assert policy.parse_stored(json.dumps(["opus", "speex"])) == ["opus"]
