"""Realistic demo data for the web screenshots, put into a running server (``harness.run_server``)
the way it would be there after a morning's work: calls of three agents in two teams, two with a
screen recording (a real muxed MP4 with a gap in its screen), a pause with the agent's reason, a
hold, shared bookmarks, two refused calls, agents' current states, an enrolment token and the
admin settings the admin sections show. Calls are written to the database directly (a real call
takes minutes on this machine and the pictures would not differ); everything else goes through
the API or, for refused calls, through the server's SIP port."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from server.store import models
from server.store.db import make_engine, make_session_factory, session_scope
from server.store.storage import sha256_file
from tests.e2e.harness import ServerProcess
from tests.e2e.player_media import voice_samples, write_muxed, write_wav
from tests.e2e.test_missed_calls_browser import _refused_invite

EXTRA_USERS = [("agent2", "agent", "Blue"), ("agent3", "agent", "Red")]
SECONDS = 40.0
VOICE_OFFSET = 1.0
GAP = (24.0, 29.0)  # the recorder lost its connection for five seconds
TALK = [(0.0, 6.0, 0), (6.5, 15.0, 1), (17.0, 22.0, 0), (22.5, SECONDS - VOICE_OFFSET, 1)]


@dataclass(frozen=True)
class Call:
    id: str
    agent: str
    dn: str
    caller: str
    hours_ago: float
    screen: bool
    paused: bool = False


CALLS = [
    Call("c0a1e5d2-demo-0001", "agent1", "1001", "Carol Customer <sip:+15550123@pbx>", 0.5, True, True),
    Call("c0a1e5d2-demo-0002", "agent2", "1002", "Bob Buyer <sip:+15550188@pbx>", 1.2, True),
    Call("c0a1e5d2-demo-0003", "agent1", "1001", "Dan Delivery <sip:+15550177@pbx>", 2.0, False),
    Call("c0a1e5d2-demo-0004", "agent3", "2001", "Erin Enquiry <sip:+15550166@pbx>", 3.5, False),
    Call("c0a1e5d2-demo-0005", "agent2", "1002", "+15550155", 5.0, False),
]
PAUSED = CALLS[0]


def seed(server: ServerProcess, work: Path) -> None:
    _seed_calls(server.data_dir, work)
    settings: list[tuple[str, dict[str, object]]] = [
        ("/api/admin/agent-playback", {"teams": ["Blue"]}),
        ("/api/admin/search-keys", {"keys": ["campaign", "queue"]}),
        ("/api/admin/codes/reason/LUNCH", {"label": "Lunch break", "active": True}),
        ("/api/admin/codes/pause/CARD", {"label": "Card details", "active": True}),
        ("/api/admin/codes/disposition/SALE", {"label": "Sale", "active": True}),
    ]
    with server.client("admin") as admin:
        for path, body in settings:
            r = admin.put(path, json=body)
            assert r.status_code == 200, (path, r.text)
        r = admin.post(
            "/api/admin/devices/enrolment-tokens", json={"scope": "team:Blue", "ttl_hours": 24, "max_uses": 5}
        )
        assert r.status_code == 201, r.text
    with server.client("supervisor") as sup:
        for offset, text in ((3.5, "Customer asks for a refund"), (18.0, "Agent confirms the new address")):
            r = sup.post(
                f"/api/interactions/{PAUSED.id}/bookmarks",
                json={"at": _t0(PAUSED) + offset, "text": text, "shared": True},
            )
            assert r.status_code == 201, r.text
    # Agents' current states (the supervisors' "Agents now" table): a desktop login each.
    states = [
        ("agent1", "1001", {"state": "ready"}),
        ("agent2", "1002", {"state": "not_ready", "reason_code": "LUNCH"}),
    ]
    for user, dn, state in states:
        with server.client(user, client="desktop", dn=dn) as agent:
            r = agent.put("/api/agent/state", json=state)
            assert r.status_code == 200, r.text
    for dn in ("4711", "4712"):
        _call_id, status = _refused_invite(server.sip_port, dn)
        assert status == 404, status


def _t0(call: Call) -> float:
    return BASE - call.hours_ago * 3600


BASE = time.time()


def _seed_calls(data_dir: Path, work: Path) -> None:
    samples = voice_samples(SECONDS - VOICE_OFFSET, TALK)
    wav, mp4 = work / "voice.wav", work / "muxed.mp4"
    write_wav(wav, samples)
    write_muxed(mp4, samples, SECONDS, VOICE_OFFSET, GAP, size=(640, 360))
    sessions = make_session_factory(make_engine(f"sqlite:///{(data_dir / 'tandem.db').resolve()}"))
    with session_scope(sessions) as s:
        users = {u.username: u for u in s.execute(select(models.User)).scalars()}
        for n, call in enumerate(CALLS):
            t0 = _t0(call)
            voice_at = t0 + VOICE_OFFSET
            s.add(
                models.Interaction(
                    id=call.id,
                    call_id=f"call-{call.id}",
                    dn=call.dn,
                    agent_id=users[call.agent].id,
                    caller=call.caller,
                    callee=call.dn,
                    state="done",
                    started_at=t0,
                    answered_at=voice_at,
                    ended_at=t0 + SECONDS - 0.5,
                    acw_ended_at=t0 + SECONDS + 12,
                    end_reason="bye",
                    screen_decision=call.screen,
                    screen_percentage=50.0,
                    voice_state="complete",
                    screen_state="complete" if call.screen else "not_selected",
                    media_started_at=t0 if call.screen else voice_at,
                    has_screen=call.screen,
                    was_paused=call.paused,
                    disposition_code="SALE" if call.screen else None,
                    # Mostly inbound, as in a contact centre; one of four not known (plain INVITE).
                    direction=("inbound", "outbound", "inbound", "")[n % 4],
                )
            )
            s.flush()
            if call.paused:
                s.add_all(
                    [
                        models.PauseSpan(
                            interaction_id=call.id,
                            started_at=t0 + 9.0,
                            ended_at=t0 + 14.0,
                            by_user_id=users[call.agent].id,
                            by_username=call.agent,
                            reason="agent",
                            reason_code="CARD",
                            reason_label="Card details",
                        ),
                        models.PauseSpan(
                            interaction_id=call.id, started_at=t0 + 31.0, ended_at=t0 + 34.0, reason="hold"
                        ),
                    ]
                )
            files = [("voice", wav, "audio/wav", voice_at, SECONDS - VOICE_OFFSET)]
            if call.screen:
                files.append(("muxed", mp4, "video/mp4", t0, SECONDS))
            for kind, source, ctype, started, duration in files:
                stored = data_dir / "storage" / "demo" / f"{call.id}-{source.name}"
                stored.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, stored)
                s.add(
                    models.MediaFile(
                        interaction_id=call.id,
                        kind=kind,
                        storage_key=f"demo/{stored.name}",
                        content_type=ctype,
                        size=stored.stat().st_size,
                        sha256=sha256_file(stored),
                        started_at=started,
                        duration=duration,
                        created_at=t0 + SECONDS,
                    )
                )
