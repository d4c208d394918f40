"""The tus client's requests and what it makes of each answer, against the fake tus server."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator

import pytest

from recorder_service.tus_client import TusClient, TusError, chunk_checksum, encode_metadata
from tests.unit.fake_tus import FakeTusServer

DATA = os.urandom(600_000)
META = {"run": "r1", "seq": "0", "started_at": "1000.5", "sha256": hashlib.sha256(DATA).hexdigest()}
CREATE = "/api/interactions/int-1/screen/segments"


@pytest.fixture
def server() -> Iterator[FakeTusServer]:
    with FakeTusServer() as fake:
        yield fake


@pytest.fixture
def client(server: FakeTusServer) -> Iterator[TusClient]:
    c = TusClient(server.url, lambda: "tok")
    yield c
    c.close()


def test_metadata_and_checksum_encoding() -> None:
    assert encode_metadata({"run": "r1", "seq": "0"}) == "run cjE=,seq MA=="
    with pytest.raises(ValueError):
        encode_metadata({"bad key": "x"})
    assert chunk_checksum(b"abc") == "sha256 " + base64.b64encode(hashlib.sha256(b"abc").digest()).decode()


def test_create_patch_to_the_end_returns_the_servers_digest(server: FakeTusServer, client: TusClient) -> None:
    created = client.create(CREATE, len(DATA), META)
    assert created.offset == 0 and created.location.startswith(server.url + "/api/uploads/")
    assert next(iter(server.uploads.values())).meta == META  # metadata decoded as sent
    first = client.patch(created.location, 0, DATA[:262_144])
    assert first.offset == 262_144 and first.server_sha256 is None
    assert client.head(created.location) == 262_144
    last = client.patch(created.location, 262_144, DATA[262_144:])
    assert last.offset == len(DATA) and last.server_sha256 == META["sha256"]
    assert server.stored[("int-1", "r1", 0)] == DATA
    # A retried create of a stored segment: 409 already_uploaded with the stored digest.
    with pytest.raises(TusError) as err:
        client.create(CREATE, len(DATA), META)
    assert err.value.status == 409 and err.value.code == "already_uploaded"
    assert err.value.body["sha256"] == META["sha256"]


def test_a_retried_create_gets_the_upload_under_way(client: TusClient) -> None:
    a = client.create(CREATE, len(DATA), META)
    client.patch(a.location, 0, DATA[:1000])
    b = client.create(CREATE, len(DATA), META)
    assert (b.location, b.offset) == (a.location, 1000)


@pytest.mark.parametrize("keep_partial", [True, False])
def test_a_cut_mid_chunk_is_a_network_error_and_head_says_what_arrived(
    server: FakeTusServer, client: TusClient, keep_partial: bool
) -> None:
    server.keep_partial = keep_partial
    created = client.create(CREATE, len(DATA), META)
    client.patch(created.location, 0, DATA[:100_000])
    server.cut_patch(70_000)
    with pytest.raises(TusError) as err:
        client.patch(created.location, 100_000, DATA[100_000:356_144])
    assert err.value.network and err.value.status is None
    held = client.head(created.location)
    assert held == (170_000 if keep_partial else 100_000)
    done = client.patch(created.location, held, DATA[held:])
    assert done.server_sha256 == META["sha256"]
    assert server.stored[("int-1", "r1", 0)] == DATA


def test_offset_mismatch_carries_the_servers_offset(server: FakeTusServer, client: TusClient) -> None:
    created = client.create(CREATE, len(DATA), META)
    client.patch(created.location, 0, DATA[:5000])
    with pytest.raises(TusError) as err:
        client.patch(created.location, 9000, DATA[9000:10_000])
    assert (err.value.status, err.value.code, err.value.offset) == (409, "offset_mismatch", 5000)
    assert client.head(created.location) == 5000  # nothing appended


def test_a_damaged_chunk_is_460_and_discarded(server: FakeTusServer, client: TusClient) -> None:
    created = client.create(CREATE, len(DATA), META)
    server.corrupt_patches = 1
    with pytest.raises(TusError) as err:
        client.patch(created.location, 0, DATA[:50_000])
    assert err.value.status == 460
    assert client.head(created.location) == 0
    assert client.patch(created.location, 0, DATA[:50_000]).offset == 50_000


def test_a_lost_upload_is_404_on_head_and_patch(server: FakeTusServer, client: TusClient) -> None:
    created = client.create(CREATE, len(DATA), META)
    server.lose_uploads()
    for call in (lambda: client.head(created.location), lambda: client.patch(created.location, 0, b"x")):
        with pytest.raises(TusError) as err:
            call()
        assert err.value.status == 404


def test_delete_drops_the_partial_bytes(server: FakeTusServer, client: TusClient) -> None:
    created = client.create(CREATE, len(DATA), META)
    client.patch(created.location, 0, DATA[:1000])
    client.delete(created.location)
    assert server.uploads == {}
    client.delete(created.location)  # gone already: fine


def test_the_body_goes_out_in_paced_slices(client: TusClient) -> None:
    created = client.create(CREATE, len(DATA), META)
    events: list[tuple[str, int]] = []
    client.patch(
        created.location,
        0,
        DATA[:40_000],
        pace=lambda n: events.append(("pace", n)),
        sent=lambda n: events.append(("sent", n)),
        slice_size=16_384,
    )
    assert events == [
        ("pace", 16_384),
        ("sent", 16_384),
        ("pace", 16_384),
        ("sent", 16_384),
        ("pace", 7_232),
        ("sent", 7_232),
    ]


def test_errors_say_what_the_server_said(server: FakeTusServer) -> None:
    server.forced = [
        (429, {"headers": {"Retry-After": "7"}, "body": {"error": "slow_down", "message": "busy"}})
    ]
    client = TusClient(server.url, lambda: "wrong")
    with pytest.raises(TusError) as err:
        client.create(CREATE, len(DATA), META)
    assert (err.value.status, err.value.code, err.value.retry_after) == (429, "slow_down", 7.0)
    assert "HTTP 429 slow_down: busy" in str(err.value)
    with pytest.raises(TusError) as err:
        client.create(CREATE, len(DATA), META)
    assert err.value.status == 401
    client.close()


def test_a_refused_connection_is_a_network_error() -> None:
    with FakeTusServer() as fake:
        url = fake.url
    client = TusClient(url, lambda: "tok")
    with pytest.raises(TusError) as err:
        client.create(CREATE, 10, META)
    assert err.value.network and "ConnectError" in str(err.value)
    client.close()
