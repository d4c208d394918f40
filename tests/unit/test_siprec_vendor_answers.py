"""The README's "SIPREC by vendor family" table, media column: what Tandem answers to each
vendor's offer in the shared test data, and the rate of the file it writes.

test_siprec_offers checks the first codec of each answer; this pins every payload type answered
(and so what is not: G.729, GSM), per vendor family, so the table cannot drift from the code."""

from __future__ import annotations

import pytest

from server.callmedia.plan import plan_media
from tests.unit.test_siprec_offers import load, offer_of

# offer file -> (vendor family as the README names it, answer m-lines' payload types, file rate)
VENDOR_ANSWERS = {
    "acme-siprec-offer.txt": ("Acme Packet / Oracle SBC", ["0", "0"], 8000),
    "sonus-siprec-offer.txt": ("Sonus / Ribbon", ["0", "0"], 8000),
    # One mixed stream 8 101 0 9 18: G.729 (18) is not answered; G.722 makes the file 16 kHz.
    "broadworks-offer.txt": ("BroadWorks", ["8 101 0 9"], 16000),
    # Two PCMA streams with telephone-event on 97; the metadata names sip:ASBCE@asbce.com.
    "broadworks-offer-2.txt": ("BroadWorks via Avaya SBCE", ["8 97", "8 97"], 8000),
    "cisco-siprec-offer.txt": ("Cisco CUBE", ["0 101", "0 101"], 8000),
    # 0 8 3 101: GSM (3) is not answered.
    "connectel-offer.txt": ("Connectel", ["0 8 101", "8 0 101"], 8000),
    "procomm-siprec-offer.txt": ("ProComm", ["8", "8"], 8000),
    "inactive-sdp-offer.txt": ("unnamed SBC (inactive start, CN 19)", ["0 101 19", "0 101 19"], 8000),
}


@pytest.mark.parametrize("name", sorted(VENDOR_ANSWERS))
def test_vendor_offer_answer_and_file_rate(name: str) -> None:
    _, payload_types, rate = VENDOR_ANSWERS[name]
    offer = offer_of(load(name))
    ports = {s.audio.index: 30000 + 2 * i for i, s in enumerate(offer.streams)}
    answer = offer.answer("127.0.0.1", ports).decode()
    m_lines = [line for line in answer.split("\r\n") if line.startswith("m=audio ")]
    assert [line.split(" ", 3)[3] for line in m_lines] == payload_types, answer
    assert all(line.split(" ")[2] == "RTP/AVP" for line in m_lines), answer
    plan = plan_media(
        [
            (
                s.audio.index,
                s.audio.codec or "",
                s.audio.payload_type or 0,
                s.audio.telephone_event,
                None,
                s.audio.decodable,
            )
            for s in offer.streams
        ],
        frozenset({offer.streams[-1].audio.index}),
    )
    assert plan.sample_rate == rate
