"""The endpoint audio in the player, in a real browser (Debian's chromium) against a running server:
the player offers the derived M4A beside the SIP voice files, and Chromium decodes it — stereo,
the tone the recorder's microphone heard at its time from the mux's t=0 (the file the server's
mux job makes from segments of the recorder's own encoder)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from recorder_service.encoder import AudioFormat, ScreenEncoder
from server.media.endpoint_audio_track import build_endpoint_audio
from tests.e2e.browser import log_in, new_page
from tests.e2e.player_media import voice_samples, write_muxed, write_wav
from tests.e2e.seeded_call import finished_call, seeding, server_and_browser, stored_media

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(240)]

SECONDS = 10.0
TONE_AT = 4.0  # seconds from the mux's t=0 (the segment starts at 1.0, the tone 3.0 into it)
RATE = 48000


def _endpoint_audio(work: Path, t0: float) -> Path:
    segment = work / "segment.mp4"
    enc = ScreenEncoder(segment, fps=5, audio=AudioFormat())
    signal = np.zeros(8 * RATE, np.float32)
    i = round((TONE_AT - 1.0) * RATE)
    signal[i : i + RATE // 2] = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(RATE // 2) / RATE)
    for k in range(40):
        enc.encode(np.full((48, 64, 4), k * 5, np.uint8), k * 200)
        a = k * RATE // 5
        mic = signal[a : a + RATE // 5]
        enc.encode_audio(np.stack([mic, np.zeros_like(mic)], axis=1), a)
    enc.close()
    out = work / "endpoint.m4a"
    track = build_endpoint_audio([(segment, t0 + 1.0)], out, started_at=t0, ended_at=t0 + SECONDS)
    assert track is not None
    return out


def _seed(data_dir: Path, work: Path) -> None:
    samples = voice_samples(SECONDS, [(0.0, 2.0, 0)])
    wav, mp4 = work / "voice.wav", work / "muxed.mp4"
    write_wav(wav, samples)
    write_muxed(mp4, samples, SECONDS, 0.0, (8.0, 9.0))
    t0 = time.time() - 3600
    m4a = _endpoint_audio(work, t0)
    with seeding(data_dir) as (s, agent_id):
        s.add(
            finished_call(
                "with-audio",
                "call-with-audio",
                agent_id,
                t0,
                answered_at=t0,
                ended_at=t0 + SECONDS - 0.5,
                acw_ended_at=t0 + SECONDS - 0.2,
                screen=True,
            )
        )
        s.flush()
        for kind, source, ctype in (
            ("muxed", mp4, "video/mp4"),
            ("voice", wav, "audio/wav"),
            ("endpoint_audio", m4a, "audio/mp4"),
        ):
            s.add(
                stored_media(
                    data_dir,
                    "endpoint",
                    "with-audio",
                    kind,
                    source,
                    ctype,
                    started_at=t0,
                    duration=SECONDS,
                    created_at=t0,
                )
            )


def test_player_offers_the_endpoint_audio_and_chromium_decodes_it(tmp_path: Path) -> None:
    with server_and_browser(tmp_path) as (server, browser):
        _seed(server.data_dir, tmp_path)
        with new_page(browser) as page:
            log_in(page, server.url, "supervisor", server.creds["supervisor"]["password"])
            page.goto(f"{server.url}/#/recordings/with-audio")
            link = page.wait_for_selector("#player-voice-files a[data-kind='endpoint_audio']")
            assert link is not None and "Endpoint audio" in link.inner_text()
            href = link.get_attribute("href")
            assert href == "/api/interactions/with-audio/media/endpoint_audio"
            assert page.is_visible("#player-voice-files a[data-kind='voice']")  # beside the SIP voice
            decoded = page.evaluate(
                """async (href) => {
                  const data = await (await fetch(href)).arrayBuffer();
                  const ctx = new OfflineAudioContext(2, 48000, 48000);
                  const buf = await ctx.decodeAudioData(data);
                  const left = buf.getChannelData(0), right = buf.getChannelData(1);
                  let onset = -1, rightMax = 0;
                  for (let i = 0; i < left.length; i++) {
                    if (onset < 0 && Math.abs(left[i]) > 0.1) onset = i;
                    rightMax = Math.max(rightMax, Math.abs(right[i]));
                  }
                  return {channels: buf.numberOfChannels, duration: buf.duration,
                          onset: onset / buf.sampleRate, rightMax};
                }""",
                href,
            )
            print(f"\nChromium decoded the endpoint audio: {decoded}")
            assert decoded["channels"] == 2
            assert abs(decoded["duration"] - SECONDS) < 0.1
            assert abs(decoded["onset"] - TONE_AT) < 0.040  # the microphone's tone, left
            assert decoded["rightMax"] < 0.01  # nothing was heard on the right
