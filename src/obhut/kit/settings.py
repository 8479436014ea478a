from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Everything configurable, read from `OBHUT_*` environment variables (and `.env`)."""

    model_config = SettingsConfigDict(env_prefix="OBHUT_", env_file=".env", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path("var")
    database_url: str = ""
    keystore_url: str = ""
    sensitive_url: str = Field(
        default="", description="A database of its own for the sensitive categories, with its own key; empty: none"
    )
    sensitive_categories: str = Field(
        default="financial", description="The categories kept there (comma-separated), when sensitive_url is set"
    )
    backup_dir: Path | None = Field(default=None, description="Where 'obhut backup create' writes (data_dir/backups)")
    host: str = "127.0.0.1"
    port: int = 8000
    default_workspace: str = "default"
    default_region: str = Field(default="DE", description="ISO 3166 region for phone numbers without +prefix")

    public_url: str = Field(default="http://localhost:8000", description="Where staff reach Obhut (passkeys, SSO)")
    demo: bool = Field(default=True, description="Seed a demo workspace on the first run (never in production)")
    console_workspace: str = Field(default="", description="The workspace the console's sign-in form suggests")
    session_minutes: int = Field(default=480, ge=1, description="A staff session ends this long after sign-in")
    login_max_failures: int = Field(default=5, ge=1, description="Failed sign-ins per account before a lockout")
    address_max_failures: int = Field(default=20, ge=1, description="Failed sign-ins per source address")
    login_lock_minutes: int = Field(default=15, ge=1)
    audit_sequence_seconds: float = Field(default=1.0, ge=0, description="How often serve signs a checkpoint; 0: off")
    audit_checkpoint_file: Path | None = Field(default=None, description="Append every signed checkpoint here")
    audit_webhook_url: str | None = Field(default=None, description="POST every signed checkpoint here")
    audit_alert_webhook_url: str | None = Field(default=None, description="POST every new alert here (JSON)")
    audit_scan_seconds: float = Field(default=300.0, ge=0, description="How often serve scans today for alerts")

    outbox_relay_seconds: float = Field(
        default=1.0, ge=0, description="serve's relay rests this long when idle; 0: off"
    )
    outbox_keep_days: float = Field(default=30.0, gt=0, description="Delivered outbox events are kept this long")
    outbox_batch: int = Field(default=1000, ge=1, le=10_000, description="Events per delivery batch")
    nats_url: str = Field(default="", description="NATS with JetStream (nats://127.0.0.1:4222); empty: no NATS")
    nats_stream: str = Field(default="OBHUT", description="The JetStream stream (created if missing)")
    nats_subject_prefix: str = Field(default="obhut", description="Subjects are <prefix>.<workspace>.<type>")
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    webhook_retry_seconds: float = Field(default=10.0, ge=0, description="First retry; doubles, at most an hour")
    webhook_max_attempts: int = Field(default=8, ge=1, description="Then a delivery is dead until replayed")

    retention_purge_hours: float = Field(
        default=24.0, ge=0, description="serve and worker purge each workspace this often (its policies); 0: off"
    )
    erasure_ledger: Path | None = Field(
        default=None, description="The erasure ledger, kept apart from databases and backups (var/erasures.jsonl)"
    )

    key_provider: str = "local"
    key_file: Path | None = None
    allow_local_keys: bool = False
    key_shards: int = Field(default=65536, ge=1, le=65536)
    key_cache_seconds: float = Field(default=300.0, ge=0)

    pkcs11_module: str = ""
    pkcs11_token: str = ""
    pkcs11_pin: SecretStr = SecretStr("")

    openbao_addr: str = ""
    openbao_token: SecretStr = SecretStr("")
    openbao_mount: str = "transit"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'obhut.db'}"

    @property
    def resolved_keystore_url(self) -> str:
        return self.keystore_url or f"sqlite:///{self.data_dir / 'keystore.db'}"

    @property
    def database_urls(self) -> dict[str, str]:
        """Every database Obhut keeps, by name: migrated at start-up, and backed up and restored together."""
        urls = {"main": self.resolved_database_url, "keystore": self.resolved_keystore_url}
        if self.sensitive_url:
            urls["sensitive"] = self.sensitive_url
        return urls

    @property
    def resolved_sensitive_categories(self) -> frozenset[str]:
        """The data categories kept in the sensitive database; none without one."""
        if not self.sensitive_url:
            return frozenset()
        return frozenset(part.strip() for part in self.sensitive_categories.split(",") if part.strip())

    @property
    def resolved_erasure_ledger(self) -> Path:
        return self.erasure_ledger or self.data_dir / "erasures.jsonl"

    @property
    def resolved_backup_dir(self) -> Path:
        return self.backup_dir or self.data_dir / "backups"

    @property
    def resolved_key_file(self) -> Path:
        return self.key_file or self.data_dir / "master.key"

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION
