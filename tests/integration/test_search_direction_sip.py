"""A call's direction, end to end over UDP against the running server: what the SIP side said —
the SIPREC metadata's calling-party flag, or an ``X-Recording-Direction`` header on a plain
INVITE — is stored on the interaction (revision 0017) and found by the search's ``direction``
filter; a call that says nothing is "unknown"."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.store import models
from server.store.db import session_scope
from tests.integration.siprec_peer import SrcPeer, tone
from tests.integration.siprec_world import ADMIN, OFFERS, PASSWORD, blue_agents, desk_login, siprec_server

ACME = (OFFERS / "acme-siprec-offer.txt").read_bytes()
PLAIN = (OFFERS / "non-siprec-payload.txt").read_bytes()
AGENT_AOR = b'aor="sip:1002@192.168.50.10"'  # the acme offer's called party: callingParty false
CALLER_FLAG = b"<apkt:callingParty>true</apkt:callingParty>"
AGENT_FLAG = b"<apkt:callingParty>false</apkt:callingParty>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Any]]:
    with siprec_server(tmp_path_factory.mktemp("direction") / "data", [ADMIN, *blue_agents(6)]) as world:
        yield world


def call(ctx: Any, body: bytes, **kwargs: Any) -> str:
    """One short call from the SRC; its Call-ID."""
    peer = SrcPeer(ctx.sip_port)
    try:
        dialog = peer.invite(body, **kwargs)
        assert dialog.status == 200, dialog.status
        peer.stream({port: (tone(440.0, 0.3), pt) for port, pt in dialog.ports.values()})
        assert peer.bye(dialog).status == 200
    finally:
        peer.close()
    return dialog.call_id


def stored_direction(ctx: Any, call_id: str, timeout: float = 20.0) -> tuple[str, str]:
    """(interaction id, direction) once the call's row exists and its voice is stored."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(ctx.sessions) as s:
            row = s.execute(
                select(models.Interaction).where(models.Interaction.call_id == call_id)
            ).scalar_one_or_none()
            if row is not None and any(m.kind == "voice" for m in row.media):
                return row.id, row.direction
        time.sleep(0.1)
    raise AssertionError(f"no stored call {call_id}")


def found(client: TestClient, direction: str) -> set[str]:
    auth = client.post("/api/auth/login", json={"username": "admin", "password": PASSWORD}).json()["token"]
    r = client.get(
        "/api/interactions/search",
        params={"direction": direction, "limit": "200"},
        headers={"Authorization": f"Bearer {auth}"},
    )
    assert r.status_code == 200, r.text
    assert all(
        item["direction"] == ("" if direction == "unknown" else direction) for item in r.json()["items"]
    )
    return {item["id"] for item in r.json()["items"]}


def test_siprec_calling_party_flag_and_plain_direction_header_are_stored_and_searchable(
    server: tuple[TestClient, Any],
) -> None:
    client, ctx = server
    calls: dict[str, str] = {}  # expected direction -> interaction id
    # SIPREC, the agent is the called party (the customer's callingParty is true): inbound.
    desk_login(client, "agent0", "1002")
    calls["inbound"] = stored_direction(ctx, call(ctx, ACME))[0]
    # The same offer with the flags swapped: the agent dialled, outbound.
    desk_login(client, "agent1", "1003")
    swapped = (
        ACME.replace(AGENT_AOR, b'aor="sip:1003@192.168.50.10"')
        .replace(CALLER_FLAG, b"@@")
        .replace(AGENT_FLAG, CALLER_FLAG)
        .replace(b"@@", AGENT_FLAG)
    )
    calls["outbound"] = stored_direction(ctx, call(ctx, swapped))[0]
    # A plain INVITE (no metadata) that names its direction in the recording header.
    desk_login(client, "agent2", "1004")
    header = call(ctx, PLAIN, dn="1004", siprec=False, extra=("X-Recording-Direction: Outbound",))
    plain_outbound = stored_direction(ctx, header)
    # A plain INVITE that says nothing: not known.
    desk_login(client, "agent3", "1005")
    calls["unknown"] = stored_direction(ctx, call(ctx, PLAIN, dn="1005", siprec=False))[0]

    with session_scope(ctx.sessions) as s:
        stored = {r.id: r.direction for r in s.execute(select(models.Interaction)).scalars()}
    assert stored[calls["inbound"]] == "inbound"
    assert stored[calls["outbound"]] == "outbound"
    assert plain_outbound[1] == "outbound"
    assert stored[calls["unknown"]] == ""
    # The search finds each by its direction, and no other.
    assert found(client, "inbound") == {calls["inbound"]}
    assert found(client, "outbound") == {calls["outbound"], plain_outbound[0]}
    assert found(client, "unknown") == {calls["unknown"]}
