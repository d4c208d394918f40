"""A masked span in the player, in a real browser against a running server: a masking rule with
"action": "pause" blacks out the screen while its window is up and the server stores it as a
pause span ``auto:<rule>`` (README, "Masking at capture"). The player must show it shaded on the
timeline where the data puts it, naming the rule, with its start and end markers — beside the
screen-missing span (the recorder was down), which test_player_browser.py checks."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from server.store import models
from server.store.db import make_engine, make_session_factory, session_scope
from tests.e2e.browser import chromium, log_in, new_page
from tests.e2e.harness import run_server
from tests.e2e.player_media import voice_samples, write_muxed, write_wav
from tests.e2e.test_player_browser import _open, _state, _store

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(240)]

SECONDS = 12.0
GAP = (9.0, 10.5)  # the recorder was down: shown as screen-missing
MASKED = (3.0, 6.5)  # the masking rule "bank" was on screen: the frames are blacked out


def _seed(data_dir: Path, work: Path) -> None:
    samples = voice_samples(SECONDS, [(0.0, 4.0, 0), (6.0, SECONDS, 1)])
    mp4, wav = work / "muxed.mp4", work / "voice.wav"
    write_muxed(mp4, samples, SECONDS, 0.0, GAP)
    write_wav(wav, samples)  # the waveform's peaks are computed from the voice file
    t0 = time.time() - 3600
    sessions = make_session_factory(make_engine(f"sqlite:///{(data_dir / 'tandem.db').resolve()}"))
    with session_scope(sessions) as s:
        agent = s.execute(select(models.User).where(models.User.username == "agent1")).scalar_one()
        s.add(
            models.Interaction(
                id="masked",
                call_id="call-masked",
                dn="1001",
                agent_id=agent.id,
                caller="Carol <sip:+15550100@pbx>",
                callee="1001",
                state="done",
                started_at=t0,
                answered_at=t0,
                ended_at=t0 + SECONDS - 0.3,
                end_reason="bye",
                screen_decision=True,
                screen_percentage=100.0,
                voice_state="complete",
                screen_state="complete",
                media_started_at=t0,
            )
        )
        s.flush()
        s.add(
            models.PauseSpan(
                interaction_id="masked",
                started_at=t0 + MASKED[0],
                ended_at=t0 + MASKED[1],
                by_username="agent1",
                reason="auto:bank",
            )
        )
        for kind, source, ctype in (("muxed", mp4, "video/mp4"), ("voice", wav, "audio/wav")):
            key, sha, size = _store(data_dir, f"masked-{source.name}", source)
            s.add(
                models.MediaFile(
                    interaction_id="masked",
                    kind=kind,
                    storage_key=key,
                    content_type=ctype,
                    size=size,
                    sha256=sha,
                    started_at=t0,
                    duration=SECONDS,
                    created_at=t0,
                )
            )


def test_a_masked_span_is_shaded_on_the_timeline_with_its_rule(tmp_path: Path) -> None:
    with (
        run_server(tmp_path / "server", TANDEM_SERVER_SCREEN_PERCENTAGE="0") as server,
        chromium() as browser,
    ):
        _seed(server.data_dir, tmp_path)
        with new_page(browser) as page:
            log_in(page, server.url, "supervisor", server.creds["supervisor"]["password"])
            _open(page, f"{server.url}/#/recordings/masked")
            duration = _state(page)["duration"]
            assert abs(duration - SECONDS) < 0.3, duration
            spans = page.eval_on_selector_all(
                "#timeline-spans .span",
                "els => els.map((e) => [e.dataset.kind, Number(e.dataset.start), Number(e.dataset.end),"
                " e.title, parseFloat(e.style.left), parseFloat(e.style.width)])",
            )
            assert [s[0] for s in spans] == ["auto-pause", "screen-missing"], spans
            _kind, start, end, title, left, width = spans[0]
            assert abs(start - MASKED[0]) < 0.01 and abs(end - MASKED[1]) < 0.01, spans[0]
            assert "masking rule 'bank'" in title and "by agent1" in title, title
            assert abs(left - 100 * MASKED[0] / duration) < 0.6, left
            assert abs(width - 100 * (MASKED[1] - MASKED[0]) / duration) < 0.6, width
            markers = page.eval_on_selector_all(
                "#markers .marker", "els => els.map((e) => [e.dataset.kind, Number(e.dataset.at)])"
            )
            at = {k: t for k, t in markers}
            assert (
                abs(at["auto-pause-start"] - MASKED[0]) < 0.01
                and abs(at["auto-pause-end"] - MASKED[1]) < 0.01
            )
            assert abs(at["screen-missing"] - GAP[0]) < 0.01 and abs(at["screen-resumed"] - GAP[1]) < 0.01
