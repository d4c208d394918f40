"""Voice formats end to end in process (SIP off): the admin's selection through the API, a stored
stereo WAV finalised by the real media worker into each selected format, and the downloads —
decoded with PyAV, served with Range, refused to another team's supervisor, audited."""

from __future__ import annotations

import time
import uuid
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.calls.voice_encodings import supported_formats
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user
from server.voice import formats as voice_formats_module

PASSWORD = "correct-horse-battery"
RATE = 8000
SECONDS = 3.2
# Channels and decoded rate per format; Opus always decodes at 48 kHz.
EXPECTED = {
    "mp3_8k_mono": (1, 8000, "audio/mpeg"),
    "mp3_16k_stereo": (2, 8000, "audio/mpeg"),
    "mp3_32k_stereo": (2, 8000, "audio/mpeg"),
    "wav_ulaw": (2, 8000, "audio/wav"),
    "opus": (2, 48000, "audio/ogg"),
}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    # In-process encoding: one test simulates a missing encoder by monkeypatching this process.
    settings = load_settings(None, data_dir=tmp_path / "data", sip_enabled=False, media_encoder_process=False)
    app = create_app(settings)
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "sup", PASSWORD, "supervisor", supervises=["Blue"])
        create_user(s, "sup2", PASSWORD, "supervisor", supervises=["Red"])
        create_user(s, "agent1", PASSWORD, "agent", team="Blue")
        create_user(s, "agent2", PASSWORD, "agent", team="Red")
    with TestClient(app) as c:
        yield c


def auth(http: TestClient, user: str) -> dict[str, str]:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def ctx(http: TestClient) -> Any:
    return http.app.state.ctx  # type: ignore[attr-defined]


def stereo_wav(path: Path, seconds: float) -> Path:
    """Caller on the left (a 300 Hz tone), agent on the right (500 Hz), both with pauses."""
    t = np.arange(round(seconds * RATE)) / RATE
    gate = np.sin(2 * np.pi * 0.7 * t) > -0.5
    left = 9000 * np.sin(2 * np.pi * 300 * t) * gate
    right = 6000 * np.sin(2 * np.pi * 500 * t) * ~gate
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(np.stack([left, right], axis=1).astype("<i2").tobytes())
    return path


def record_call(http: TestClient, agent: str, seconds: float) -> str:
    """An ended interaction of ``agent`` whose voice WAV goes through the real media worker."""
    context = ctx(http)
    interaction_id = str(uuid.uuid4())
    started = time.time() - 60
    with session_scope(context.sessions) as s:
        agent_row = s.query(models.User).filter_by(username=agent).one()
        s.add(
            models.Interaction(
                id=interaction_id,
                call_id=f"call-{interaction_id}",
                dn="1001",
                agent_id=agent_row.id,
                caller="+15550123",
                callee="1001",
                state="done",
                started_at=started,
                answered_at=started + 1,
                ended_at=started + 1 + seconds,
                acw_ended_at=started + 2 + seconds,
                screen_decision=False,
                screen_percentage=0,
                voice_state="stopped",
                screen_state="off",
            )
        )
    wav = stereo_wav(context.settings.live_dir / interaction_id / "voice.wav", seconds)

    async def store() -> None:
        context.media.submit_voice(interaction_id, wav, started + 1)
        await context.media.drain()

    assert http.portal is not None, "the client's lifespan is not running"
    http.portal.call(store)
    assert not wav.exists(), "the WAV master was not moved into storage"
    return interaction_id


def decode(data: bytes, path: Path) -> tuple[int, int, float]:
    """Channels, decoded sample rate and decoded duration of a downloaded file."""
    path.write_bytes(data)
    samples = 0
    channels = rate = 0
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.audio[0]):
            samples += frame.samples
            rate = frame.sample_rate
            channels = len(frame.layout.channels)
    return channels, rate, samples / rate


def audit_records(http: TestClient, target: str) -> list[dict[str, Any]]:
    r = http.get("/api/audit", params={"target_id": target}, headers=auth(http, "admin"))
    assert r.status_code == 200
    return list(r.json())


def test_default_selection_is_mp3_16k_stereo_and_put_is_validated_and_audited(client: TestClient) -> None:
    admin = auth(client, "admin")
    r = client.get("/api/admin/voice-formats", headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["formats"] == ["mp3_16k_stereo"]
    assert [o["id"] for o in body["options"]] == list(EXPECTED)
    assert all(o["available"] for o in body["options"]), body["options"]

    r = client.put(
        "/api/admin/voice-formats", headers=admin, json={"formats": ["opus", "mp3_8k_mono", "opus"]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["formats"] == ["mp3_8k_mono", "opus"]  # once each, in display order
    assert client.get("/api/admin/voice-formats", headers=admin).json()["formats"] == ["mp3_8k_mono", "opus"]

    r = client.put("/api/admin/voice-formats", headers=admin, json={"formats": ["mp3_8k_mono", "flac"]})
    assert r.status_code == 422
    assert r.json()["error"] == "unknown_voice_format" and "'flac'" in r.json()["message"]
    r = client.put("/api/admin/voice-formats", headers=admin, json={"formats": "opus"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    assert client.get("/api/admin/voice-formats", headers=admin).json()["formats"] == ["mp3_8k_mono", "opus"]

    r = client.put("/api/admin/voice-formats", headers=admin, json={"formats": []})
    assert r.status_code == 200 and r.json()["formats"] == []  # WAV master only

    sup = auth(client, "sup")
    assert client.get("/api/admin/voice-formats", headers=sup).status_code == 403
    assert client.put("/api/admin/voice-formats", headers=sup, json={"formats": []}).status_code == 403

    records = audit_records(client, "voice_formats")
    changes = [r for r in records if r["action"] == "policy.voice_formats" and r["outcome"] == "allowed"]
    assert [c["detail"] for c in changes] == ['{"formats": []}', '{"formats": ["mp3_8k_mono", "opus"]}']
    assert all(c["username"] == "admin" for c in changes)
    refused = [r for r in records if r["action"] == "policy.voice_formats" and r["outcome"] == "denied"]
    assert [r["detail"].split(":")[0] for r in refused] == ["unknown_voice_format"]  # refusals too
    denied = [r for r in audit_records(client, "/api/admin/voice-formats") if r["username"] == "sup"]
    assert len(denied) == 2 and all(r["outcome"] == "denied" for r in denied)


def test_stored_wav_yields_each_selected_format(client: TestClient, tmp_path: Path) -> None:
    admin = auth(client, "admin")
    selected = ["mp3_8k_mono", "mp3_32k_stereo", "wav_ulaw", "opus"]
    assert (
        client.put("/api/admin/voice-formats", headers=admin, json={"formats": selected}).status_code == 200
    )
    interaction_id = record_call(client, "agent1", SECONDS)
    assert ctx(client).media.format_failures == 0

    sup = auth(client, "sup")
    summary = client.get(f"/api/interactions/{interaction_id}", headers=sup).json()
    assert summary["media"] == ["voice"]
    assert summary["voice_formats"] == selected

    base = f"/api/interactions/{interaction_id}/media"
    r = client.get(f"{base}/voice", headers=sup)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert decode(r.content, tmp_path / "master.wav")[:2] == (2, RATE)
    for fmt in selected:
        channels, rate, content_type = EXPECTED[fmt]
        r = client.get(f"{base}/voice:{fmt}", headers=sup)
        assert r.status_code == 200, (fmt, r.text)
        assert r.headers["content-type"] == content_type
        got_channels, got_rate, duration = decode(r.content, tmp_path / f"download-{fmt}")
        assert (got_channels, got_rate) == (channels, rate), fmt
        assert abs(duration - SECONDS) <= 0.05, (fmt, duration)
    # Not selected, so not made.
    r = client.get(f"{base}/voice:mp3_16k_stereo", headers=sup)
    assert r.status_code == 404 and r.json()["error"] == "media_not_ready"
    assert client.get(f"{base}/voice:flac", headers=sup).json()["error"] == "unknown_media"

    # Range, as a player seeking in the MP3 sends it.
    whole = client.get(f"{base}/voice:mp3_32k_stereo", headers=sup).content
    r = client.get(f"{base}/voice:mp3_32k_stereo", headers={**sup, "Range": "bytes=100-299"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 100-299/{len(whole)}"
    assert r.content == whole[100:300]

    with session_scope(ctx(client).sessions) as s:
        rows = s.query(models.MediaFile).filter_by(interaction_id=interaction_id).all()
        durations = {m.kind: m.duration for m in rows}
    assert set(durations) == {"voice", *(f"voice:{fmt}" for fmt in selected)}
    assert all(d is not None and abs(d - SECONDS) <= 0.05 for d in durations.values()), durations

    records = audit_records(client, interaction_id)
    reads = [r["detail"] for r in records if r["action"] == "recording.read" and r["username"] == "sup"]
    assert any(d.startswith("voice:opus bytes 0-") for d in reads), reads
    assert any(d.startswith("voice:mp3_32k_stereo bytes 100-299/") for d in reads), reads


def test_other_team_supervisor_and_agent_are_refused_and_audited(client: TestClient) -> None:
    interaction_id = record_call(client, "agent1", 1.0)  # default selection: MP3 16 kbit/s stereo
    path = f"/api/interactions/{interaction_id}/media/voice:mp3_16k_stereo"
    assert client.get(path, headers=auth(client, "sup")).status_code == 200
    r = client.get(path, headers=auth(client, "sup2"))
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert client.get(path, headers=auth(client, "agent1")).status_code == 403
    records = audit_records(client, interaction_id)
    denied = {(r["username"], r["action"]) for r in records if r["outcome"] == "denied"}
    assert denied == {("sup2", "recording.read"), ("agent1", "recording.read")}
    allowed = [r for r in records if r["outcome"] == "allowed" and r["action"] == "recording.read"]
    assert [r["username"] for r in allowed] == ["sup"]
    assert allowed[0]["detail"].startswith("voice:mp3_16k_stereo bytes 0-")


def test_one_format_failing_keeps_the_others_and_the_master(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = auth(client, "admin")
    selected = ["mp3_16k_stereo", "wav_ulaw", "opus"]
    assert (
        client.put("/api/admin/voice-formats", headers=admin, json={"formats": selected}).status_code == 200
    )
    # An FFmpeg build without any Opus encoder (the selection was made before it was swapped in).
    real = voice_formats_module.encoder_available
    monkeypatch.setattr(
        voice_formats_module,
        "encoder_available",
        lambda codec: codec not in ("libopus", "opus") and real(codec),
    )
    interaction_id = record_call(client, "agent1", 1.5)
    assert ctx(client).media.format_failures == 1
    summary = client.get(f"/api/interactions/{interaction_id}", headers=admin).json()
    assert summary["media"] == ["voice"]
    assert summary["voice_formats"] == ["mp3_16k_stereo", "wav_ulaw"]
    storage_files = sorted(
        p.name for p in (ctx(client).settings.resolved_storage_dir).rglob("*") if p.is_file()
    )
    assert storage_files == ["voice-16k-stereo.mp3", "voice-ulaw.wav", "voice.wav"]
    assert not list(ctx(client).settings.tmp_dir.rglob("*.part"))


def test_empty_recording_keeps_only_the_wav(client: TestClient) -> None:
    interaction_id = record_call(client, "agent1", 0.0)
    assert ctx(client).media.format_failures == 0
    summary = client.get(f"/api/interactions/{interaction_id}", headers=auth(client, "admin")).json()
    assert summary["media"] == ["voice"] and summary["voice_formats"] == []


def test_supported_formats_are_the_encoders_formats() -> None:
    assert supported_formats() == list(EXPECTED)
    assert {f.value for f in voice_formats_module.VoiceFormat} == set(EXPECTED)
