"""The player in a real browser (Debian's chromium) against a running server, on real media: a muxed
MP4 (H.264 + the voice as stereo AAC) whose screen has a gap, the voice WAV it came from, pauses,
a hold. Open, play, seek, speed, ±5/15 s skips, keyboard, skip silence, per-channel volume (the
Web Audio GainNode's gain), markers and shaded spans where the timeline data puts them, a deep
link that opens at its time, a bookmark shown on the timeline, an audio-only call. Screenshot:
docs/screenshots/player.png."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page
from sqlalchemy import select

from server.store import models
from server.store.db import make_engine, make_session_factory, session_scope
from server.store.storage import sha256_file
from tests.e2e.browser import chromium, log_in, new_page
from tests.e2e.harness import run_server
from tests.e2e.player_media import voice_samples, write_muxed, write_wav
from tests.e2e.shots import screenshot_path

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(240)]

SECONDS = 20.0
VOICE_OFFSET = 1.0  # the screen starts 1 s before the voice, as when the recorder is first
GAP = (8.2, 12.0)  # no screen: the recorder was not connected
# caller speaks 0-5 s of the voice, nobody 5-11 s, the agent 11-20 s
TALK = [(0.0, 5.0, 0), (11.0, SECONDS - VOICE_OFFSET, 1)]
SCREENSHOT = screenshot_path("player.png")


def _store(data_dir: Path, name: str, source: Path) -> tuple[str, str, int]:
    stored = data_dir / "storage" / "player" / name
    stored.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, stored)
    return f"player/{name}", sha256_file(stored), stored.stat().st_size


def _seed(data_dir: Path, work: Path) -> float:
    """Two calls of agent1 (team Blue): "with-screen" (muxed + voice) and "voice-only"."""
    samples = voice_samples(SECONDS - VOICE_OFFSET, TALK)
    wav, mp4 = work / "voice.wav", work / "muxed.mp4"
    write_wav(wav, samples)
    write_muxed(mp4, samples, SECONDS, VOICE_OFFSET, GAP)
    t0 = time.time() - 3600
    sessions = make_session_factory(make_engine(f"sqlite:///{(data_dir / 'tandem.db').resolve()}"))
    with session_scope(sessions) as s:
        agent = s.execute(select(models.User).where(models.User.username == "agent1")).scalar_one()
        for iid, kinds in (("with-screen", ("muxed", "voice")), ("voice-only", ("voice",))):
            voice_at = t0 + VOICE_OFFSET
            s.add(
                models.Interaction(
                    id=iid,
                    call_id=f"call-{iid}",
                    dn="1001",
                    agent_id=agent.id,
                    caller="Carol <sip:+15550100@pbx>",
                    callee="1001",
                    state="done",
                    started_at=t0,
                    answered_at=voice_at,
                    ended_at=t0 + SECONDS - 0.5,
                    acw_ended_at=t0 + SECONDS - 0.2,
                    end_reason="bye",
                    screen_decision="muxed" in kinds,
                    screen_percentage=100.0,
                    voice_state="complete",
                    screen_state="complete" if "muxed" in kinds else "not_selected",
                    media_started_at=t0 if "muxed" in kinds else voice_at,
                )
            )
            s.flush()
            s.add_all(
                [
                    models.PauseSpan(
                        interaction_id=iid,
                        started_at=t0 + 3.0,
                        ended_at=t0 + 4.5,
                        by_username="agent1",
                        reason="agent",
                    ),
                    models.PauseSpan(
                        interaction_id=iid, started_at=t0 + 14.0, ended_at=t0 + 16.0, reason="hold"
                    ),
                ]
            )
            for kind in kinds:
                source, ctype, started = (
                    (mp4, "video/mp4", t0) if kind == "muxed" else (wav, "audio/wav", voice_at)
                )
                key, sha, size = _store(data_dir, f"{iid}-{source.name}", source)
                s.add(
                    models.MediaFile(
                        interaction_id=iid,
                        kind=kind,
                        storage_key=key,
                        content_type=ctype,
                        size=size,
                        sha256=sha,
                        started_at=started,
                        duration=SECONDS if kind == "muxed" else SECONDS - VOICE_OFFSET,
                        created_at=t0,
                    )
                )
    return t0


def _open(page: Page, url: str) -> None:
    page.goto(url)
    iid = url.split("#/recordings/")[1].split("?")[0]
    page.wait_for_function(
        "(id) => { const p = window.tandemPlayer; return p && p.id === id && p.wavesurfer && p.audio; }",
        arg=iid,
    )
    assert page.is_hidden("#player-error"), page.inner_text("#player-error")


def _state(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate(
        "() => { const v = document.getElementById('player'); return {t: v.currentTime, rate: v.playbackRate,"
        " paused: v.paused, duration: v.duration, tag: v.tagName}; }"
    )
    return state


def _seek(page: Page, target: float) -> float:
    landed: float = page.evaluate(
        """(target) => new Promise((resolve) => {
          const v = document.getElementById('player');
          v.addEventListener('seeked', () => resolve(v.currentTime), {once: true});
          v.currentTime = target;
        })""",
        target,
    )
    return landed


def _after_seek(page: Page, action: Any) -> float:
    """Run ``action`` (which seeks) and return where the player landed."""
    page.evaluate(
        "() => { window.__landed = null; const v = document.getElementById('player');"
        " v.addEventListener('seeked', () => { window.__landed = v.currentTime; }, {once: true}); }"
    )
    action()
    page.wait_for_function("() => window.__landed !== null")
    landed: float = page.evaluate("() => window.__landed")
    return landed


def test_player_plays_seeks_skips_markers_volume_deep_link_and_bookmark(tmp_path: Path) -> None:
    with (
        run_server(tmp_path / "server", TANDEM_SERVER_SCREEN_PERCENTAGE="0") as server,
        chromium() as browser,
    ):
        t0 = _seed(server.data_dir, tmp_path)
        with new_page(browser) as page:
            log_in(page, server.url, "supervisor", server.creds["supervisor"]["password"])
            _open(page, f"{server.url}/#/recordings/with-screen")
            state = _state(page)
            assert state["tag"] == "VIDEO" and abs(state["duration"] - SECONDS) < 0.3, state
            duration = state["duration"]

            # Markers at the times the data says, in the muxed file's seconds (its t=0 is t0).
            markers = page.eval_on_selector_all(
                "#markers .marker",
                "els => els.map((e) => [e.dataset.kind, Number(e.dataset.at), parseFloat(e.style.left)])",
            )
            expected = [
                ("call-start", VOICE_OFFSET),
                ("pause-start", 3.0),
                ("pause-end", 4.5),
                ("screen-missing", GAP[0]),
                ("screen-resumed", GAP[1]),
                ("hold-start", 14.0),
                ("hold-end", 16.0),
                ("call-end", SECONDS - 0.5),
                ("acw-end", SECONDS - 0.2),
            ]
            assert [m[0] for m in markers] == [k for k, _ in expected]
            for (kind, at, left), (_, want) in zip(markers, expected, strict=True):
                assert abs(at - want) < 0.01, (kind, at, want)
                assert abs(left - 100 * want / duration) < 0.6, (kind, left)
            # Shaded spans: the pause names who paused and why; the screen gap is shown, not closed up.
            spans = page.eval_on_selector_all(
                "#timeline-spans .span",
                "els => els.map((e) => [e.dataset.kind, Number(e.dataset.start), Number(e.dataset.end),"
                " e.title, parseFloat(e.style.left), parseFloat(e.style.width)])",
            )
            assert [s[0] for s in spans] == ["pause", "screen-missing", "hold"]
            pause, missing, _hold = spans
            assert "by agent1" in pause[3] and "paused by the agent" in pause[3]
            assert abs(missing[1] - GAP[0]) < 0.01 and abs(missing[2] - GAP[1]) < 0.01
            assert abs(missing[4] - 100 * GAP[0] / duration) < 0.6
            assert abs(missing[5] - 100 * (GAP[1] - GAP[0]) / duration) < 0.6
            # One waveform per channel, drawn from the server's peaks.
            assert page.get_attribute("#waveform", "data-channels") == "caller,agent"
            peaks = page.evaluate("() => window.tandemPlayer.wavesurfer.getDecodedData().numberOfChannels")
            assert peaks == 2

            # Play, speed, skips, keyboard.
            page.click("#player-play")
            page.wait_for_function("() => document.getElementById('player').currentTime > 0.3")
            page.select_option("#player-speed", "1.5")
            assert _state(page)["rate"] == 1.5
            page.click("#player-play")  # pause
            page.wait_for_function("() => document.getElementById('player').paused")
            base = _seek(page, 2.0)
            assert abs(_after_seek(page, lambda: page.click("#player-fwd15")) - (base + 15)) < 0.3
            assert abs(_after_seek(page, lambda: page.click("#player-back5")) - (base + 10)) < 0.3
            assert abs(_after_seek(page, lambda: page.click("#player-fwd5")) - (base + 15)) < 0.3
            assert abs(_after_seek(page, lambda: page.click("#player-back15")) - base) < 0.3
            page.evaluate("() => document.activeElement.blur()")  # the page's shortcuts, not a button's
            assert abs(_after_seek(page, lambda: page.keyboard.press("l")) - (base + 15)) < 0.3
            assert abs(_after_seek(page, lambda: page.keyboard.press("j")) - base) < 0.3
            assert abs(_after_seek(page, lambda: page.keyboard.press("ArrowRight")) - (base + 5)) < 0.3
            assert abs(_after_seek(page, lambda: page.keyboard.press("ArrowLeft")) - base) < 0.3
            page.keyboard.press("]")
            assert _state(page)["rate"] == 2.0

            # Per-channel volume: the caller's GainNode follows its slider, the agent's stays.
            page.eval_on_selector(
                "#volume-caller", "el => { el.value = '0.3'; el.dispatchEvent(new Event('input')); }"
            )
            page.wait_for_function(
                "() => Math.abs(window.tandemPlayer.audio.gains.caller.gain.value - 0.3) < 1e-6"
            )
            assert page.evaluate("() => window.tandemPlayer.audio.gains.agent.gain.value") == 1.0

            # Skip silence: nobody speaks from 6 s to 12 s of the file; playing from 6.5 s jumps to its end.
            page.select_option("#player-speed", "1")
            page.check("#player-skip-silence")
            _seek(page, 6.5)
            jump = _after_seek(page, lambda: page.click("#player-play"))
            assert 11.0 < jump < 12.2, jump
            page.click("#player-play")
            page.wait_for_function("() => document.getElementById('player').paused")
            page.uncheck("#player-skip-silence")

            # A bookmark at 3 s, shared: in the list and on the timeline at its time.
            _seek(page, 3.0)
            page.fill("#bookmark-text", "Customer asks for a refund")
            page.check("#bookmark-shared")
            page.click("#bookmark-save")
            page.wait_for_selector("#markers .marker-bookmark")
            at = float(page.get_attribute("#markers .marker-bookmark", "data-at") or "nan")
            assert abs(at - 3.0) < 0.05
            assert "Customer asks for a refund" in page.inner_text("#bookmarks")
            assert "shared with the team" in page.inner_text("#bookmarks")
            _seek(page, 5.0)
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)

        # A deep link opens at its time, in a fresh session; the shared bookmark is there too.
        with new_page(browser) as page:
            log_in(page, server.url, "admin", server.creds["admin"]["password"])
            _open(page, f"{server.url}/#/recordings/with-screen?t=13.5")
            page.wait_for_function(
                "() => Math.abs(document.getElementById('player').currentTime - 13.5) < 0.3"
            )
            page.wait_for_selector("#markers .marker-bookmark")
            # Audio-only: no screen, the voice file plays in an <audio> with its waveform.
            _open(page, f"{server.url}/#/recordings/voice-only")
            state = _state(page)
            assert state["tag"] == "AUDIO" and abs(state["duration"] - (SECONDS - VOICE_OFFSET)) < 0.3
            assert page.locator("#timeline-spans .span-screen-missing").count() == 0
            call_start = page.get_attribute('#markers .marker[data-kind="call-start"]', "data-at")
            assert abs(float(call_start or "nan")) < 0.01  # the voice starts at the answer

        # Agents play their own recordings only where the admin ticked their team.
        with new_page(browser) as page:
            log_in(page, server.url, "agent1", server.creds["agent1"]["password"])
            page.goto(f"{server.url}/#/recordings/with-screen")
            page.wait_for_selector("#player-error:not([hidden])")
            assert "not allowed" in page.inner_text("#player-error")
        with new_page(browser) as page:
            log_in(page, server.url, "admin", server.creds["admin"]["password"])
            page.goto(f"{server.url}/#/admin")
            page.check('#agent-playback-teams input[value="Blue"]')
            page.click("#agent-playback-save")
            page.wait_for_function(
                "() => document.getElementById('agent-playback-status').textContent.startsWith('Saved')"
            )
            assert "Blue" in page.inner_text("#agent-playback-status")
        with new_page(browser) as page:
            log_in(page, server.url, "agent1", server.creds["agent1"]["password"])
            _open(page, f"{server.url}/#/recordings/with-screen")

        # Another team's supervisor: refused (and audited by the API).
        with new_page(browser) as page:
            log_in(page, server.url, "supervisor2", server.creds["supervisor2"]["password"])
            page.goto(f"{server.url}/#/recordings/with-screen")
            page.wait_for_selector("#player-error:not([hidden])")
            assert "not allowed" in page.inner_text("#player-error")
            assert page.locator("#player").count() == 0
        del t0
