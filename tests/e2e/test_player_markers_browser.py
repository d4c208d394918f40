"""The player's markers at the timeline's edges and a required pause reason never given (issue 14
items 2 and 10), in Debian's chromium against a running server, at 1280 px and on a 420-px phone.

A call whose markers sit at 0 s (call start, the agent's pause) and at its last second (a hold's
end, call end, ACW end): every marker's label lies inside the marker bar (and the window), no two
labels cover each other, each one's tick still points at its time, and the page does not scroll
sideways. The agent's team requires a pause reason and he gave none: the shaded pause says "no
reason given" in its own style, and the search finds the call with ``pause_reason_missing``.
Screenshots: player-markers-1280.png and player-markers-420.png (TANDEM_SCREENSHOT_DIR)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize
from sqlalchemy import select

from server.store import models
from server.store.db import make_engine, make_session_factory, session_scope
from server.store.storage import sha256_file
from tests.e2e.browser import TIMEOUT_MS, chromium, log_in
from tests.e2e.harness import ServerProcess, run_server
from tests.e2e.player_media import voice_samples, write_wav
from tests.e2e.shots import screenshot_path

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(300)]
SECONDS = 12.0
IID = "edge-markers"
ANSWERED = "reason-given"  # the same agent's call whose pause has its reason: not flagged
VIEWPORTS: list[ViewportSize] = [{"width": 1280, "height": 900}, {"width": 420, "height": 860}]

# Every placed marker: its box, the bar's, the window's width, and where its tick points.
GEOMETRY = """() => {
  const bar = document.getElementById('markers').getBoundingClientRect();
  const duration = document.getElementById('player').duration;
  return {
    bar: [bar.left, bar.right, bar.top, bar.bottom],
    timeline: (() => { const t = document.getElementById('player-timeline').getBoundingClientRect();
      return [t.left, t.right]; })(),
    window: window.innerWidth,
    scroll: document.documentElement.scrollWidth,
    markers: [...document.querySelectorAll('#markers .marker')].map((e) => {
      const r = e.getBoundingClientRect();
      return {kind: e.dataset.kind, text: e.textContent, box: [r.left, r.right, r.top, r.bottom],
        tick: r.left + parseFloat(e.style.getPropertyValue('--tick')),
        time: bar.left + Math.min(1, Number(e.dataset.at) / duration) * bar.width};
    }),
  };
}"""


def _seed(data_dir: Path, work: Path) -> None:
    """Two finished voice-only calls of agent1 (team Blue): IID, with markers at both ends and a
    pause of his without a reason, and ANSWERED, whose pause has its reason."""
    wav = work / "voice.wav"
    write_wav(wav, voice_samples(SECONDS, [(0.0, 4.0, 0), (6.0, SECONDS, 1)]))
    stored = data_dir / "storage" / "markers" / "voice.wav"
    stored.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(wav, stored)
    t0 = time.time() - 900
    sessions = make_session_factory(make_engine(f"sqlite:///{(data_dir / 'tandem.db').resolve()}"))
    with session_scope(sessions) as s:
        agent = s.execute(select(models.User).where(models.User.username == "agent1")).scalar_one()
        for n, iid in enumerate((IID, ANSWERED)):
            start = t0 + n * 60
            s.add(
                models.Interaction(
                    id=iid,
                    call_id=f"call-{iid}",
                    dn="1001",
                    agent_id=agent.id,
                    caller="Carol <sip:+15550100@pbx>",
                    callee="1001",
                    state="done",
                    started_at=start,
                    answered_at=start,  # call start at 0 s of the voice
                    ended_at=start + SECONDS,  # call end at its last second
                    acw_ended_at=start + SECONDS + 30,  # after the file: pinned to its end
                    end_reason="bye",
                    screen_decision=False,
                    screen_percentage=0.0,
                    voice_state="complete",
                    screen_state="not_selected",
                    media_started_at=start,
                )
            )
            s.flush()
            s.add_all(
                [
                    models.PauseSpan(
                        interaction_id=iid,
                        started_at=start,  # at 0 s, beside the call start
                        ended_at=start + 3.0,
                        by_user_id=agent.id,
                        by_username="agent1",
                        reason="agent",
                        reason_code="CARD" if iid == ANSWERED else None,
                        reason_label="Card payment" if iid == ANSWERED else "",
                    ),
                    models.PauseSpan(
                        interaction_id=iid, started_at=start + 10.0, ended_at=start + SECONDS, reason="hold"
                    ),
                    models.MediaFile(
                        interaction_id=iid,
                        kind="voice",
                        storage_key="markers/voice.wav",
                        content_type="audio/wav",
                        size=stored.stat().st_size,
                        sha256=sha256_file(stored),
                        started_at=start,
                        duration=SECONDS,
                        created_at=start,
                    ),
                ]
            )


def _open_player(browser: Browser, server: ServerProcess, viewport: ViewportSize) -> tuple[Page, Any]:
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    log_in(page, server.url, "supervisor", server.creds["supervisor"]["password"])
    page.goto(f"{server.url}/#/recordings/{IID}")
    page.wait_for_function("() => window.tandemPlayer && window.tandemPlayer.wavesurfer")
    page.wait_for_selector("#markers.placed .marker[data-kind='acw-end']")
    return page, context


def _inside(inner: list[float], outer: list[float], slack: float = 0.5) -> bool:
    return inner[0] >= outer[0] - slack and inner[1] <= outer[1] + slack


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[1] - 0.5 and b[0] < a[1] - 0.5 and a[2] < b[3] - 0.5 and b[2] < a[3] - 0.5


def test_edge_markers_stay_inside_the_timeline_and_a_missing_required_reason_is_flagged(
    tmp_path: Path,
) -> None:
    with (
        run_server(tmp_path / "server", TANDEM_SERVER_SCREEN_PERCENTAGE="0") as server,
        chromium() as browser,
    ):
        _seed(server.data_dir, tmp_path)
        with server.client("admin") as admin:
            r = admin.put(
                "/api/admin/pause-policy",
                json={
                    "no_pause_teams": [],
                    "reason_required": False,
                    "reason_required_teams": {"Blue": True},
                },
            )
            assert r.status_code == 200, r.text

        for viewport in VIEWPORTS:
            page, context = _open_player(browser, server, viewport)
            try:
                geo = page.evaluate(GEOMETRY)
                kinds = [m["kind"] for m in geo["markers"]]
                # Two markers at 0 s, three at the file's last second (ACW end pinned there).
                assert set(kinds[:2]) == {"call-start", "pause-start"}, kinds
                assert set(kinds[-3:]) == {"hold-end", "call-end", "acw-end"}, kinds
                assert (
                    abs(geo["bar"][0] - geo["timeline"][0]) < 1
                    and abs(geo["bar"][1] - geo["timeline"][1]) < 1
                )
                for m in geo["markers"]:
                    where = (viewport["width"], m["kind"], m["text"], m["box"], geo["bar"])
                    assert _inside(m["box"], geo["bar"]), where
                    assert _inside(m["box"], [0, geo["window"]]), where
                    # The label moved inward, its tick did not: it still points at the marker's time.
                    assert abs(m["tick"] - m["time"]) < 2, (where, m["tick"], m["time"])
                for i, a in enumerate(geo["markers"]):
                    for b in geo["markers"][i + 1 :]:
                        assert not _overlap(a["box"], b["box"]), (viewport["width"], a, b)
                assert geo["scroll"] <= geo["window"], geo

                # The pause whose required reason never came says so, in its own style.
                shade = page.locator("#timeline-spans .span-pause")
                assert shade.text_content() == "Pause: no reason given"
                assert "span-reason-missing" in (shade.get_attribute("class") or "")
                assert "reason required, not given" in (shade.get_attribute("title") or "")
                assert "marker-reason-missing" in (
                    page.get_attribute("#markers .marker[data-kind='pause-start']", "class") or ""
                )
                page.evaluate("() => document.activeElement && document.activeElement.blur()")
                page.screenshot(
                    path=str(screenshot_path(f"player-markers-{viewport['width']}.png")), full_page=True
                )

                if viewport["width"] == 1280:
                    # The other call's pause has its reason: a plain pause span.
                    page.goto(f"{server.url}/#/recordings/{ANSWERED}")
                    page.wait_for_function(
                        "(id) => window.tandemPlayer && window.tandemPlayer.id === id", arg=ANSWERED
                    )
                    page.wait_for_selector("#timeline-spans .span-pause")
                    assert page.text_content("#timeline-spans .span-pause") == "Pause: Card payment"
                    assert page.locator("#timeline-spans .span-reason-missing").count() == 0
                    # The search finds the flagged call (and only it), marked in its row.
                    page.goto(f"{server.url}/#/search?pause_reason_missing=true")
                    page.wait_for_selector(f"#search-results tbody tr[data-id='{IID}']")
                    rows = page.eval_on_selector_all(
                        "#search-results tbody tr", "els => els.map((e) => [e.dataset.id, e.textContent])"
                    )
                    assert [r[0] for r in rows] == [IID], rows
                    assert "no reason given" in rows[0][1], rows
                    assert page.input_value("#search-paused") == "no_reason"
                    # The same search from the form: Paused → "Required reason not given".
                    page.goto(f"{server.url}/#/search?agent=agent1")
                    page.wait_for_selector(f"#search-results tbody tr[data-id='{ANSWERED}']")
                    page.select_option("#search-paused", "no_reason")
                    page.click("#search-submit")
                    page.wait_for_function("() => location.hash.includes('pause_reason_missing=true')")
                    page.wait_for_function(
                        "() => document.querySelectorAll('#search-results tbody tr').length === 1"
                    )
                    only = page.get_attribute("#search-results tbody tr", "data-id")
                    assert only == IID and "paused" not in page.evaluate("() => location.hash"), only
            finally:
                context.close()
