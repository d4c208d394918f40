"""Digest math against the RFCs' published examples, and the server-side checks: stateless
nonces (expiry + HMAC), the nonce-count replay check, wrong passwords, foreign realms."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.sip.digest import DigestAuth, Verdict, load_users, parse_credentials, response_value


def test_rfc2617_example_md5() -> None:
    # RFC 2617 §3.5 (the method of its example is GET).
    assert (
        response_value(
            "MD5",
            username="Mufasa",
            realm="testrealm@host.com",
            password="Circle Of Life",
            method="GET",
            uri="/dir/index.html",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
            nc="00000001",
            cnonce="0a4f113b",
        )
        == "6629fae49393a05397450978507c4ef1"
    )


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_examples(algorithm: str, expected: str) -> None:
    # RFC 7616 §3.9.1.
    assert (
        response_value(
            algorithm,
            username="Mufasa",
            realm="http-auth@example.org",
            password="Circle of Life",
            method="GET",
            uri="/dir/index.html",
            nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            nc="00000001",
            cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        )
        == expected
    )


def test_parse_credentials_quoted_and_bare() -> None:
    params = parse_credentials(
        'Digest username="a\\"b", realm="r, x",nonce="n", uri="sip:1@h", response="abc", '
        'algorithm=MD5, qop=auth, nc=00000001, cnonce="c"'
    )
    assert params is not None
    assert params["username"] == 'a"b' and params["realm"] == "r, x" and params["algorithm"] == "MD5"
    assert params["qop"] == "auth" and params["nc"] == "00000001" and params["cnonce"] == "c"
    assert parse_credentials("Basic dXNlcjpwYXNz") is None


URI = "sip:1001@127.0.0.1:5060"


def _answer(
    auth: DigestAuth,
    nonce: str,
    *,
    algorithm: str = "MD5",
    password: str = "secret",
    nc: str = "00000001",
    username: str = "src",
    uri: str = URI,
    realm: str = "tandem",
) -> str:
    response = response_value(
        algorithm,
        username=username,
        realm=realm,
        password=password,
        method="INVITE",
        uri=uri,
        nonce=nonce,
        nc=nc,
        cnonce="cn",
    )
    return (
        f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm={algorithm}, qop=auth, nc={nc}, cnonce="cn"'
    )


def _nonce_of(header: str) -> str:
    params = parse_credentials(header)
    assert params is not None
    return params["nonce"]


def test_challenge_then_valid_answer_both_algorithms() -> None:
    auth = DigestAuth("tandem", {"src": "secret"}, algorithms=("SHA-256", "MD5"))
    headers = auth.challenges(1000.0)
    assert headers[0][1].startswith('Digest realm="tandem"') and "algorithm=SHA-256" in headers[0][1]
    assert "algorithm=MD5" in headers[1][1] and 'qop="auth"' in headers[1][1]
    for count, (name, header) in enumerate(headers, 1):
        assert name == "www-authenticate"
        algorithm = "SHA-256" if "SHA-256" in header else "MD5"
        # Both headers carry the same nonce: the second answer is a later use of it.
        answer = _answer(auth, _nonce_of(header), algorithm=algorithm, nc=f"{count:08x}")
        assert auth.check("INVITE", [answer], 1001.0).verdict is Verdict.OK


def test_missing_wrong_forged_replayed_stale() -> None:
    auth = DigestAuth("tandem", {"src": "secret"}, lifetime=60)
    nonce = auth.nonce(1000.0)
    assert auth.check("INVITE", [], 1000.0).verdict is Verdict.MISSING
    # Credentials for another realm are someone else's: still a challenge, not a failure.
    assert auth.check("INVITE", [_answer(auth, nonce, realm="other")], 1000.0).verdict is Verdict.MISSING
    assert auth.check("INVITE", [_answer(auth, nonce, password="guess")], 1000.0).verdict is Verdict.FAILED
    assert auth.check("INVITE", [_answer(auth, nonce, username="eve")], 1000.0).verdict is Verdict.FAILED
    assert auth.check("INVITE", [_answer(auth, nonce, uri="http://h/")], 1000.0).verdict is Verdict.FAILED
    forged = nonce[:-1] + ("0" if nonce[-1] != "0" else "1")
    assert auth.check("INVITE", [_answer(auth, forged)], 1000.0).verdict is Verdict.FAILED
    other_server = DigestAuth("tandem", {"src": "secret"}).nonce(1000.0)  # another key
    assert auth.check("INVITE", [_answer(auth, other_server)], 1000.0).verdict is Verdict.FAILED
    # A proxy may have rewritten the Request-URI: the credentials' own SIP URI is what is hashed.
    assert auth.check(
        "INVITE", [_answer(auth, auth.nonce(1000.0), uri="sip:10.0.0.1:5060")], 1000.0
    ).verdict is (Verdict.OK)
    # The first use passes, the same nonce-count again is a replay, a higher one is fine.
    first = _answer(auth, nonce)
    assert auth.check("INVITE", [first], 1001.0).verdict is Verdict.OK
    replay = auth.check("INVITE", [first], 1002.0)
    assert replay.verdict is Verdict.FAILED and "replayed" in replay.why
    assert auth.check("INVITE", [_answer(auth, nonce, nc="00000002")], 1003.0).verdict is Verdict.OK
    # After the lifetime the nonce is stale: the client gets a fresh challenge.
    assert auth.check("INVITE", [_answer(auth, nonce, nc="00000003")], 1061.0).verdict is Verdict.STALE


def test_sha256_only_refuses_md5_answers() -> None:
    auth = DigestAuth("tandem", {"src": "secret"}, algorithms=("SHA-256",))
    nonce = auth.nonce(0.0)
    assert auth.check("INVITE", [_answer(auth, nonce, algorithm="MD5")], 1.0).verdict is Verdict.FAILED
    assert auth.check("INVITE", [_answer(auth, nonce, algorithm="SHA-256")], 1.0).verdict is Verdict.OK


def test_replay_memory_is_bounded() -> None:
    auth = DigestAuth("tandem", {"src": "secret"}, max_tracked=3)
    nonces = [auth.nonce(0.0) for _ in range(5)]
    for nonce in nonces:
        assert auth.check("INVITE", [_answer(auth, nonce)], 1.0).verdict is Verdict.OK
    assert len(auth._seen) == 3


def test_users_file(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("# SBCs\nsbc1:pa:ss\n\nsbc2:x\n", encoding="utf-8")
    assert load_users(path) == {"sbc1": "pa:ss", "sbc2": "x"}
    path.write_text("nocolon\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1"):
        load_users(path)
    with pytest.raises(ValueError, match="cannot read"):
        load_users(tmp_path / "missing")
