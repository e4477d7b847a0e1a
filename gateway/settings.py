"""One settings object, read from the environment (prefix ``SAISINE_``) at start-up."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.paths import PROJECT_ROOT, SCHEMAS_DIR

# A copy of shared/reference/natinf-sample.csv (codes checked against public sources), for
# the sandbox and the tests. A deployment points SAISINE_NATINF_CSV at the ministry's full list.
SAMPLE_NATINF = PROJECT_ROOT / "sandbox" / "natinf-sample.csv"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SAISINE_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///saisine.db",
        description="SQLite file (default) or postgresql://user@host:port/db",
    )
    natinf_csv: Path = Field(default=SAMPLE_NATINF, description="NATINF reference list (ministry CSV)")
    max_body_bytes: int = Field(default=20 * 1024 * 1024, gt=0, description="Size cap of a received body")
    clock_skew_seconds: int = Field(default=300, ge=0, description="Tolerance for dates in the future")
    public_url: str | None = Field(default=None, description="Base URL advertised in served WSDLs")
    host: str = "127.0.0.1"
    port: int = 8080
    log_json: bool | None = Field(default=None, description="JSON logs; default: when not on a terminal")
    log_level: str = "INFO"
    migrate_on_start: bool = Field(default=True, description="Run Alembic migrations when serving")
    intake_threads: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Messages checked and stored at once per process; more wait their turn. The work "
        "holds Python's GIL but for the commit: two threads overlap one's commit with the other's "
        "checks, more only contend (docs/benchmarks.md)",
    )

    # delivery to the court registry
    registry_url: str = Field(
        default="http://127.0.0.1:8090/soap/registry", description="Court registry SOAP endpoint"
    )
    registry_wsdl: Path = Field(default=SCHEMAS_DIR / "court" / "v1" / "registry.wsdl")
    registry_connect_timeout: float = Field(default=5.0, gt=0)
    registry_read_timeout: float = Field(default=30.0, gt=0)
    worker_enabled: bool = Field(default=True, description="Run the delivery worker inside `saisine serve`")
    worker_concurrency: int = Field(default=8, ge=1, le=64, description="Deliveries in flight per worker")
    worker_lease_seconds: float = Field(default=60.0, gt=0)
    worker_poll_seconds: float = Field(default=0.2, gt=0)
    retry_max_attempts: int = Field(default=12, ge=1)
    retry_max_age_hours: float = Field(default=24.0, gt=0)
    retry_initial_seconds: float = Field(default=1.0, gt=0)
    retry_max_seconds: float = Field(default=300.0, gt=0)
    breaker_threshold: int = Field(default=5, ge=1, description="Consecutive retriable failures that open it")
    breaker_cooldown_seconds: float = Field(default=30.0, gt=0)
    # replays (issue "Replay and the operator console")
    replay_rate_per_second: float = Field(
        default=20.0, gt=0, le=10_000, description="Messages a replay sends on per second, by default"
    )
    replay_runner_enabled: bool = Field(
        default=True, description="Carry out running replays inside `saisine serve`"
    )
    # who may send and who may see (issue 6; docs/security.md)
    sender_auth: str = Field(
        default="token",
        pattern="^(token|certificate|token,certificate|certificate,token|none)$",
        description="How senders prove who they are: token, certificate (an identity header set by "
        "a trusted TLS proxy), both (token,certificate: either is enough), or none (local tests only)",
    )
    certificate_header: str = Field(
        default="X-Client-Certificate-Subject",
        description="The header in which the TLS proxy passes the verified client certificate's subject",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks of the TLS proxies whose certificate header is believed",
    )
    credential_cache_seconds: float = Field(
        default=5.0, ge=0, description="How long a sender's credential is trusted between look-ups"
    )
    sender_rate_per_second: float = Field(
        default=50.0, gt=0, description="Messages a sender may send a second"
    )
    sender_burst: int = Field(default=100, ge=1, description="Messages a sender may send at once")
    operator_auth: bool = Field(
        default=True, description="Operators' API and console need a token or a login (off: local tests only)"
    )
    session_minutes: float = Field(
        default=30.0, gt=0, description="A console session ends after this idle time"
    )
    payload_keys: list[str] = Field(
        default_factory=list,
        repr=False,
        description="Fernet keys sealing the stored raw payloads (the first seals, all open); "
        "empty: not encrypted. `saisine keys new` makes one",
    )
    retention_days: float = Field(
        default=365.0, gt=0, description="Raw payloads and cases are purged this long after registration"
    )
    rejected_retention_days: float = Field(
        default=90.0, gt=0, description="Rejected messages' payloads are purged this long after reception"
    )
    deprecated_formats: dict[str, date] = Field(
        default_factory=dict,
        description="Formats still accepted but on their way out, with the day support ends: "
        'SAISINE_DEPRECATED_FORMATS=\'{"gendarmerie/v1": "2027-06-30"}\'',
    )
