"""SIP digest authentication of INVITEs (RFC 3261 §22, RFC 7616 / RFC 8760: MD5 and SHA-256).

Pure: no sockets, no clock of its own (``now`` is passed in), so the math is tested against the
RFCs' published examples.

Nonces are stateless: ``<expiry>.<random>.<mac>`` where the mac is an HMAC-SHA-256, under a key
made at start-up, of the expiry and the random part. The server can tell its own unexpired
nonces from forged or stale ones without remembering which it handed out. Only a nonce that has
been *used* is remembered, with the highest nonce-count (``nc``) seen, until it expires: a
replayed request (same or lower ``nc``) is refused. That memory is bounded (``MAX_TRACKED``);
when full, the oldest nonce is forgotten and its next use gets a fresh challenge (``stale``), so
a flood costs the attacker, not the table.

Only ``qop=auth`` is accepted (RFC 3261 §22.4 requires clients to support it; without qop there
is no nonce-count and so no replay check).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

ALGORITHMS = {"MD5": "md5", "SHA-256": "sha256"}  # RFC 7616 names → hashlib names
NONCE_LIFETIME = 300.0  # seconds a challenge may be answered in (and replays are checked for)
MAX_TRACKED = 10_000  # used nonces remembered for the replay check
MAX_HEADER = 4096  # longer Authorization headers are not parsed


def digest_hex(algorithm: str, text: str) -> str:
    return hashlib.new(ALGORITHMS[algorithm], text.encode("utf-8")).hexdigest()


def response_value(
    algorithm: str,
    *,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    nc: str,
    cnonce: str,
    qop: str = "auth",
) -> str:
    """The ``response`` a client computes (RFC 7616 §3.4.1, qop=auth)."""
    ha1 = digest_hex(algorithm, f"{username}:{realm}:{password}")
    ha2 = digest_hex(algorithm, f"{method}:{uri}")
    return digest_hex(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def parse_credentials(header: str) -> dict[str, str] | None:
    """``Digest k=v, k="quoted, \\"value\\"", …`` → lower-cased keys; None if not Digest."""
    if len(header) > MAX_HEADER:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t,":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            i += 1
            value: list[str] = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(rest[i])
                i += 1
            i += 1  # the closing quote
            params[key] = "".join(value)
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            params[key] = rest[i:end].strip()
            i = end
    return params


def load_users(source: Mapping[str, str] | Path) -> dict[str, str]:
    """The users table from settings: a mapping as is, or a file of ``username:password`` lines
    (``#`` comments and blank lines skipped). ``ValueError`` says what is wrong with the file."""
    if not isinstance(source, Path):
        return dict(source)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"sip_digest_users: cannot read {source}: {exc.strerror}") from exc
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        username, sep, password = line.partition(":")
        if not sep or not username.strip():
            raise ValueError(f"sip_digest_users: {source} line {number} is not username:password")
        users[username.strip()] = password
    return users


class Verdict(StrEnum):
    OK = "ok"
    MISSING = "missing"  # no credentials for our realm: challenge (not a failure)
    STALE = "stale"  # our nonce, expired or forgotten: challenge again with stale=true
    FAILED = "failed"  # wrong password, unknown user, forged nonce, replay, wrong URI…


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    username: str = ""
    why: str = ""  # for the log, never sent


class DigestAuth:
    def __init__(
        self,
        realm: str,
        users: Mapping[str, str],
        *,
        algorithms: tuple[str, ...] = ("MD5",),
        key: bytes | None = None,
        lifetime: float = NONCE_LIFETIME,
        max_tracked: int = MAX_TRACKED,
    ) -> None:
        unknown = [a for a in algorithms if a not in ALGORITHMS]
        if unknown or not algorithms:
            raise ValueError(f"digest algorithms must be among {', '.join(ALGORITHMS)}, got {algorithms}")
        if not users:
            raise ValueError("digest authentication needs at least one user")
        self.realm = realm
        self._users = dict(users)
        self.algorithms = algorithms
        self._key = key or secrets.token_bytes(32)
        self._lifetime = lifetime
        self._max_tracked = max_tracked
        self._seen: OrderedDict[str, int] = OrderedDict()  # used nonce → highest nc, oldest first

    # ---- challenges ----------------------------------------------------------------------------
    def nonce(self, now: float) -> str:
        expiry = str(int(now + self._lifetime))
        body = f"{expiry}.{secrets.token_hex(8)}"
        return f"{body}.{self._mac(body)}"

    def challenges(self, now: float, *, stale: bool = False) -> tuple[tuple[str, str], ...]:
        """``WWW-Authenticate`` headers, one per algorithm, the preferred first (RFC 8760 §2.4)."""
        nonce = self.nonce(now)
        extra = ", stale=true" if stale else ""
        return tuple(
            (
                "www-authenticate",
                f'Digest realm="{self.realm}", nonce="{nonce}", algorithm={alg}, qop="auth"{extra}',
            )
            for alg in self.algorithms
        )

    # ---- checking a request --------------------------------------------------------------------
    def check(self, method: str, headers: list[str], now: float) -> Outcome:
        """``headers``: the request's Authorization values. Credentials for another realm are
        ignored (they are for someone else on the path).

        The response is computed over the credentials' own ``uri``, which is not compared with
        the Request-URI: proxies may rewrite the Request-URI in transit (the reason RFC 2617
        §3.2.2 repeats it in the credentials), and SIPp sends ``sip:host:port``. What binds the
        credentials to one request is the nonce-count: a captured header cannot be used twice."""
        creds = None
        for header in headers:
            params = parse_credentials(header)
            if params is not None and params.get("realm") == self.realm:
                creds = params
                break
        if creds is None:
            return Outcome(Verdict.MISSING)
        username = creds.get("username", "")
        algorithm = creds.get("algorithm", "MD5")
        algorithm = {"md5": "MD5", "sha-256": "SHA-256"}.get(algorithm.lower(), algorithm)
        if algorithm not in self.algorithms:
            return Outcome(Verdict.FAILED, username, f"algorithm {algorithm!r} not offered")
        nonce = creds.get("nonce", "")
        expiry = self._nonce_expiry(nonce)
        if expiry is None:
            return Outcome(Verdict.FAILED, username, "nonce not issued by this server")
        if creds.get("qop", "").lower() != "auth":
            return Outcome(Verdict.FAILED, username, "qop=auth is required")
        digest_uri = creds.get("uri", "")
        if not digest_uri.lower().startswith(("sip:", "sips:")):
            return Outcome(Verdict.FAILED, username, "digest uri is not a SIP URI")
        password = self._users.get(username)
        if password is None:
            return Outcome(Verdict.FAILED, username, "unknown user")
        nc_text, cnonce = creds.get("nc", ""), creds.get("cnonce", "")
        try:
            nc = int(nc_text, 16)
        except ValueError:
            return Outcome(Verdict.FAILED, username, "bad nonce-count")
        expected = response_value(
            algorithm,
            username=username,
            realm=self.realm,
            password=password,
            method=method,
            uri=digest_uri,
            nonce=nonce,
            nc=nc_text,
            cnonce=cnonce,
        )
        if not hmac.compare_digest(expected, creds.get("response", "").lower()):
            return Outcome(Verdict.FAILED, username, "wrong response (password)")
        if expiry < now:
            return Outcome(Verdict.STALE, username, "nonce expired")
        self._forget_expired(now)
        last = self._seen.get(nonce)
        if last is not None and nc <= last:
            return Outcome(Verdict.FAILED, username, f"nonce-count {nc} replayed (last {last})")
        if last is None and len(self._seen) >= self._max_tracked:
            self._seen.popitem(last=False)
        self._seen[nonce] = nc
        return Outcome(Verdict.OK, username)

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode("ascii"), hashlib.sha256).hexdigest()[:32]

    def _nonce_expiry(self, nonce: str) -> float | None:
        body, _, mac = nonce.rpartition(".")
        if not body or not hmac.compare_digest(self._mac(body), mac):
            return None
        try:
            return float(body.split(".", 1)[0])
        except ValueError:
            return None

    def _forget_expired(self, now: float) -> None:
        while self._seen:
            oldest = next(iter(self._seen))
            expiry = self._nonce_expiry(oldest)
            if expiry is not None and expiry >= now:
                return
            del self._seen[oldest]
