"""Server settings: defaults < TOML config file < environment (``TANDEM_SERVER_*``).

Unknown keys are refused, in the file and in the environment alike: a typo in a setting that
silently falls back to a default is how a recorder ends up not recording.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.errors import ConfigError
from server.sip.trust import parse_networks

ENV_PREFIX = "TANDEM_SERVER_"
DigestAlgorithm = Literal["SHA-256", "MD5"]
# Offered in this order (RFC 8760: preferred first). MD5 alone by default: SIPp 3.6 and baresip 1.0
# (libre 1.1) answer only the first challenge and fail on SHA-256, as clients without RFC 8760 do.
DIGEST_ALGORITHMS: tuple[DigestAlgorithm, ...] = ("MD5",)
CONFIG_ENV = "TANDEM_SERVER_CONFIG"


def default_rtp_workers() -> int:
    """One RTP worker process per CPU this process may run on (at least one)."""
    try:
        cpus = len(os.sched_getaffinity(0))  # honours taskset/cgroup CPU pinning, unlike cpu_count
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, cpus)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    config: Path | None = Field(None, description="TOML file the settings were read from")
    data_dir: Path = Path("data")
    database_url: str | None = None  # default: SQLite (WAL) in data_dir
    storage_dir: Path | None = None  # default: data_dir/storage
    storage_backend: Literal["local"] = "local"
    # The release signing keys (targets, snapshot, timestamp; `tandem-server releases init-keys`):
    # without them the server still serves its release repository but cannot publish a release.
    release_keys_dir: Path | None = None

    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65535)
    public_url: str | None = None  # how users reach the web UI, for printed links
    # Bounds on HTTP clients (server/api/bounded_http.py): a request head's size and time, how
    # long a request body may stall, and open connections + requests (beyond: 503).
    http_max_header_bytes: int = Field(64 * 1024, ge=4096)
    http_header_timeout_seconds: float = Field(10.0, gt=0)
    http_body_idle_timeout_seconds: float = Field(60.0, gt=0)
    http_max_concurrency: int = Field(4096, ge=16)

    sip_enabled: bool = True
    sip_host: str = "127.0.0.1"
    sip_port: int = Field(5060, ge=0, le=65535)
    sip_advertised_host: str | None = None  # address put in Contact/SDP; default sip_host
    sip_tcp: bool = True  # SIP over TCP on the same port number as UDP
    sip_tls_cert: Path | None = None  # PEM certificate chain; with sip_tls_key enables SIP over TLS
    sip_tls_key: Path | None = None
    sip_tls_port: int | None = Field(None, ge=0, le=65535)  # default: sip_port + 1
    rtp_port_min: int = Field(20000, ge=1024, le=65535)
    rtp_port_max: int = Field(29999, ge=1024, le=65535)  # each stream takes an even port and the next (RTCP)
    rtp_timeout_seconds: float = Field(60.0, gt=0)  # a flowing stream silent this long ends the call
    rtp_latching: bool = True  # accept RTP from the first source seen; False: only the SDP's address
    sip_max_dialogs_per_source: int = Field(2000, ge=1)  # more from one host are refused with 503
    # Who may send SIP (IP addresses and CIDR networks): the SBCs/PBXs recorded for. Any request
    # from elsewhere gets 403, no dialog and no RTP port (server/sip/trust.py).
    sip_trusted_sources: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1"])
    # Digest authentication of INVITEs (RFC 3261 §22) on top of the allow-list: enabled with a
    # realm and users (username -> password, or a file of username:password lines).
    sip_digest_realm: str | None = None
    sip_digest_users: dict[str, str] | Path | None = None
    sip_digest_algorithms: list[DigestAlgorithm] = Field(default_factory=lambda: list(DIGEST_ALGORITHMS))
    # Processes recording call media (RTP, decoding, WAV), each on its own event loop and core;
    # 0: record in the server process itself (debugging, tests). Default: the CPU count.
    rtp_workers: int = Field(default_factory=default_rtp_workers, ge=0, le=256)
    media_encoder_process: bool = True  # voice formats encoded in a separate low-priority process
    hold_suppression: bool = True  # a call on hold (some streams inactive) records silence
    consent_header: str = "X-Recording-Consent"  # value declined/no/false/0: the call is not recorded
    consent_metadata_element: str = "consent"  # same, as an element or attribute in SIPREC metadata
    recording_control_header: str = "X-Recording-Control"  # pause/resume/stop from the SIP side
    recording_dn_header: str = "X-Recording-DN"  # plain INVITE: the DN to record (else Request-URI)

    screen_fps: float = Field(5.0, gt=0, le=30)
    screen_percentage: float = Field(100.0, ge=0, le=100)  # initial value; admins change it at run time
    acw_limit_seconds: float = Field(300.0, gt=0)
    # How long a secure pause waits for the screen recorder's ack before it is "unconfirmed" (the
    # agent warned, Resume offered); a recorder acks in well under 250 ms (benchmarks/RESULTS.md).
    pause_confirm_timeout_seconds: float = Field(1.0, gt=0)

    token_ttl_hours: float = Field(12.0, gt=0)
    recorder_token_ttl_days: float = Field(30.0, gt=0)  # tokens from a recorder enrolment
    recorder_enrolment_ttl_hours: float = Field(24.0, gt=0)  # how long a one-time enrolment code lives
    # A screen upload's pts 0 must lie within this many seconds of the interaction (start .. end of
    # ACW, or now), and its last frame within this plus screen_end_tolerance_seconds of the end.
    screen_time_slack_seconds: float = Field(60.0, ge=0)
    screen_end_tolerance_seconds: float = Field(2.0, ge=0)
    # Screen segments (docs/screen-segments.md): every frame within [call start - start slack,
    # end of ACW (or now) + end slack]; partial uploads untouched this long are removed.
    segment_start_slack_seconds: float = Field(2.0, ge=0)
    segment_end_slack_seconds: float = Field(5.0, ge=0)
    segment_max_bytes: int = Field(512 * 1024**2, gt=0)
    # At least an hour: a partial must outlive any outage the recorder rides out in backoff (issue
    # 12: 5 minutes), or every byte of it is sent again.
    segment_upload_expiry_hours: float = Field(24.0, ge=1.0)
    secure_cookies: bool = False  # set true when served over HTTPS
    max_upload_bytes: int = Field(4 * 1024**3, gt=0)
    auto_migrate: bool = True
    # Signed audit checkpoints (see `tandem-server audit`) written to this directory, outside the
    # database (e.g. a WORM share); None: the server writes none.
    audit_checkpoint_dir: Path | None = None
    audit_checkpoint_interval_seconds: float = Field(300.0, gt=0)
    audit_checkpoint_records: int = Field(0, ge=0)  # also once this many records are new; 0: time only
    # Faults (docs/architecture.md, "Faults"): a SIGTERM lets calls in progress finish for this
    # long while new ones are refused (0: end them at once); a database lock is waited for this
    # long, not SQLite's 30 s default; below this much free space (bytes, or per cent of the
    # disk, whichever is larger) on the live or storage directory new calls are refused.
    drain_seconds: float = Field(30.0, ge=0)
    db_busy_timeout_seconds: float = Field(5.0, gt=0, le=60)
    min_free_bytes: int = Field(1024**3, ge=0)
    min_free_percent: float = Field(5.0, ge=0, lt=100)
    disk_check_seconds: float = Field(5.0, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _check_ranges(self) -> Settings:
        if self.rtp_port_min > self.rtp_port_max:
            raise ValueError("rtp_port_min must not exceed rtp_port_max")
        if (self.sip_tls_cert is None) != (self.sip_tls_key is None):
            raise ValueError("sip_tls_cert and sip_tls_key go together")
        parse_networks(self.sip_trusted_sources)  # raises naming the bad entry
        if (self.sip_digest_realm is None) != (self.sip_digest_users is None):
            raise ValueError("sip_digest_realm and sip_digest_users go together")
        if not self.sip_digest_algorithms:
            raise ValueError("sip_digest_algorithms needs at least one of SHA-256, MD5")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tandem.db').resolve()}"

    @property
    def resolved_storage_dir(self) -> Path:
        return (self.storage_dir or self.data_dir / "storage").resolve()

    @property
    def live_dir(self) -> Path:
        """Where voice files are written while calls last (moved to storage when final)."""
        return (self.data_dir / "live").resolve()

    @property
    def releases_dir(self) -> Path:
        """The agent-software TUF repository (server/services/releases.py)."""
        return (self.data_dir / "releases").resolve()

    @property
    def tmp_dir(self) -> Path:
        return (self.data_dir / "tmp").resolve()

    @property
    def uploads_dir(self) -> Path:
        """Partial screen-segment uploads (resumable): the bytes received so far."""
        return (self.data_dir / "uploads").resolve()

    @property
    def advertised_host(self) -> str:
        return self.sip_advertised_host or self.sip_host


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load settings; raise ``ConfigError`` naming the offending key on any problem."""
    known = set(Settings.model_fields)
    unknown_env = sorted(
        key
        for key in os.environ
        if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX) :].lower() not in known
    )
    if unknown_env:
        raise ConfigError(
            f"unknown setting(s) in the environment: {', '.join(unknown_env)}; "
            f"known settings: {', '.join(sorted(known))}"
        )
    path = config_file or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    file_values: dict[str, Any] = {}
    if path is not None:
        try:
            file_values = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        bad = sorted(set(file_values) - known)
        if bad:
            raise ConfigError(
                f"unknown setting(s) in {path}: {', '.join(bad)}; known settings: {', '.join(sorted(known))}"
            )
        file_values["config"] = path
    # Environment wins over the file: drop file keys the environment sets.
    for key in list(file_values):
        if f"{ENV_PREFIX}{key.upper()}" in os.environ:
            del file_values[key]
    try:
        return Settings(**{**file_values, **overrides})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
