"""SIPREC parties and holds from SIPp (the SRC) against the running server, on a full-time-like
setup: the agent's screen is wanted (screen percentage 100) but no recorder service connects.

- The AOR forms Metaswitch (a bare number), BroadWorks (a host-less sip: URI) and tel: with visual
  separators write for the agent find the agent's DN (they were refused 404).
- A short hold (0.5 s) is silent only for its span: the resume reaches the voice at once instead
  of after the 5-s screen-confirmation timeout.
- Two SIPREC sessions for one DN at once are both recorded, one linked to the other.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.e2e.sipp_calls import recorder_fixture, tone_work
from tests.e2e.sipp_media import dominant_hz, is_silent, read_wav, rms_db
from tests.e2e.sipp_tools import Recorder, SecondStream, SippResult, run_sipp, sipp_call_id

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

DN = "7602922410"
AGENT_HZ, CALLER_HZ = 1000, 440
LEFT, RIGHT = 0, 1
SPAN_TOLERANCE = 0.1  # the stored span matches the re-INVITEs to 100 ms
LEG_B_LEAD = 300  # ms the second stream stops before (and resumes after) the hold


rec = recorder_fixture(
    "siprec-parties",
    dn=DN,
    TANDEM_SERVER_SCREEN_PERCENTAGE="100",  # a screen is wanted; no recorder will confirm
    TANDEM_SERVER_RTP_TIMEOUT_SECONDS="3",
)


def _work(tmp_path: Path, name: str) -> Path:
    return tone_work(tmp_path, name, AGENT_HZ, CALLER_HZ)


@pytest.mark.parametrize(
    "aor",
    [
        DN,  # Metaswitch: a bare number
        f"sip:{DN}",  # BroadWorks: a host-less URI
        "tel:760-292-2410",  # tel: with visual separators
        f"sip:{DN};phone-context=example.com@gw.example.com;user=phone",
    ],
)
def test_vendor_aor_forms_find_the_agent(rec: Recorder, tmp_path: Path, aor: str) -> None:
    work = _work(tmp_path, "forms")
    result = run_sipp(
        "siprec_party_forms.xml",
        rec.server.sip_port,
        work,
        service="srs",
        duration_ms=1500,
        keys={"agent_aor": aor},
        second=SecondStream(stream1_ms=1400),
    ).check()
    assert result.received(200, "INVITE"), result.describe()
    inter = rec.interaction(sipp_call_id(result) or "")
    assert inter["agent"] == "agent1" and inter["dn"] == DN, inter


def test_a_short_hold_without_a_recorder_is_silent_only_for_its_span(rec: Recorder, tmp_path: Path) -> None:
    work = _work(tmp_path, "hold")
    result = run_sipp(
        "siprec_pause.xml",
        rec.server.sip_port,
        work,
        service="srs",
        keys={"agent_dn": DN, "hold_dir": "inactive", "hold_addr": "127.0.0.1"},
        variables={"pause1_ms": 1500, "gap_ms": 500, "pause2_ms": 2000},
        second=SecondStream(1500 - LEG_B_LEAD, 500 + 2 * LEG_B_LEAD, 2000 - LEG_B_LEAD),
    ).check()
    inter = rec.interaction(sipp_call_id(result) or "")
    voice = read_wav(rec.voice(inter, work / "voice.wav"))
    t0 = inter["answered_at"]
    held, resumed = (m.time - t0 for m in result.sent("INVITE")[1:3])
    (span,) = inter["pauses"]
    assert abs(span["started_at"] - t0 - held) <= SPAN_TOLERANCE, (span, held)
    assert abs(span["ended_at"] - t0 - resumed) <= SPAN_TOLERANCE, (span, resumed)
    quiet = voice.channel(RIGHT, held + SPAN_TOLERANCE, resumed - SPAN_TOLERANCE)
    assert is_silent(quiet), f"{rms_db(quiet):.1f} dBFS while held"
    # The agent's stream restarts with the resume: its audio is in the file right after it
    # (before the fix the voice stayed silent until the 5-s screen timeout, past the call's end).
    after = voice.channel(RIGHT, resumed + SPAN_TOLERANCE, resumed + 0.5)
    assert rms_db(after) > -20, f"no audio after the resume ({rms_db(after):.1f} dBFS)"
    assert abs(dominant_hz(after, 8000) - AGENT_HZ) < 5


def test_two_sessions_for_one_dn_at_once_are_both_recorded_one_linked(rec: Recorder, tmp_path: Path) -> None:
    results: dict[int, SippResult] = {}
    start = threading.Barrier(2)

    def call(index: int) -> None:
        work = _work(tmp_path, f"overlap-{index}")
        start.wait()
        results[index] = run_sipp(
            "siprec_call.xml",
            rec.server.sip_port,
            work,
            service="srs",
            duration_ms=1500,
            keys={"agent_dn": DN},
            second=SecondStream(stream1_ms=1400),
        )

    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert sorted(results) == [0, 1]
    inters = []
    for result in results.values():
        result.check()
        assert result.received(200, "INVITE"), result.describe()
        inters.append(rec.interaction(sipp_call_id(result) or ""))
    linked = [i for i in inters if i["linked_to"]]
    assert len(linked) == 1, inters
    first = next(i for i in inters if not i["linked_to"])
    assert linked[0]["linked_to"] == first["id"] and not linked[0]["screen_decision"]
