"""What the SIP side said reaches the agent's call panel: the direction (from an X-header or the
SIPREC calling-party hint; "" when not known) and the recording parameters, through CallInfo."""

from __future__ import annotations

import pytest

from server.calls.lifecycle import Interaction
from server.calls.offer_policy import offer_direction
from server.sip.listener import CallOffer, Party
from tandem_protocol.events import CallInfo, to_data

AGENT = Party("p-agent", "sip:2001@pbx", "Alex", ("2001",), (1,))
CALLING_AGENT = Party("p-agent", None, None, ("2001",), (), calling_party=True)
CUSTOMER = Party("p-cust", "sip:+15550100@pbx", "Carla", ("+15550100",), (0,))


def _offer(params: tuple[tuple[str, str], ...] = (), *parties: Party) -> CallOffer:
    return CallOffer(
        "c-1", "2001", "", "", ("127.0.0.1", 5060), "PCMU", True, participants=parties, params=params
    )


@pytest.mark.parametrize(
    ("offer", "agent", "expected"),
    [
        (_offer((("direction", "Outbound"),), AGENT, CUSTOMER), AGENT, "outbound"),
        (_offer((("direction", "in"),)), None, "inbound"),
        (_offer((), CALLING_AGENT, CUSTOMER), CALLING_AGENT, "outbound"),
        (
            _offer(
                (),
                Party("p-agent", None, None, ("2001",), (), calling_party=False),
                Party("p-cust", None, None, ("+1",), (), calling_party=True),
            ),
            Party("p-agent", None, None, ("2001",), (), calling_party=False),
            "inbound",
        ),
        (_offer((), AGENT, CUSTOMER), AGENT, ""),  # no hint at all: not guessed
        (_offer((("direction", "sideways"),)), None, ""),
    ],
)
def test_offer_direction(offer: CallOffer, agent: Party | None, expected: str) -> None:
    assert offer_direction(offer, agent) == expected


def test_call_info_carries_direction_and_metadata_round_trip() -> None:
    live = Interaction(
        "i-1",
        "c-1",
        7,
        "2001",
        "Carla <+15550100>",
        "2001",
        1.0,
        False,
        direction="inbound",
        metadata={"queue": "Billing", "service": "Gold line"},
    )
    info = live.to_info()
    back = CallInfo.from_dict(to_data(info))
    assert (back.direction, back.metadata) == ("inbound", {"queue": "Billing", "service": "Gold line"})
    # An older server sends neither: defaults, not an error; a malformed one is refused.
    raw = to_data(info)
    del raw["direction"], raw["metadata"]
    assert (CallInfo.from_dict(raw).direction, CallInfo.from_dict(raw).metadata) == ("", {})
    with pytest.raises(ValueError, match="metadata"):
        CallInfo.from_dict({**raw, "metadata": ["queue"]})
