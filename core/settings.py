"""The one settings object. Every knob of the deployment is read here, from `TRAINLAB_*`
environment variables (or a `.env` file), and validated once; nothing else reads os.environ."""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The longest run a spec may ask for is bounded (see core.spec.MAX_TOTAL_STEPS); the broker's
# visibility timeout must stay above it, or Redis would hand a running task to a second worker.
_TWO_DAYS_S = 2 * 24 * 3600


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        # `.env` may also hold docker compose's own variables (POSTGRES_PASSWORD, ...), so
        # keys without our prefix are ignored there; a misspelt TRAINLAB_* one is refused below.
        env_prefix="TRAINLAB_",
        env_file=".env",
        extra="ignore",
        frozen=True,
    )

    # Where the embedded defaults keep their files (SQLite database, embedded broker).
    state_dir: Path = Path(".trainlab")
    # Empty means the embedded default: a SQLite file in state_dir.
    database_url: str = ""
    # Empty means the embedded broker: kombu's SQLAlchemy transport on a SQLite file.
    broker_url: str = ""
    # Where torchvision finds (or downloads) MNIST and Fashion-MNIST.
    data_dir: Path = Path("data")
    allow_download: bool = True

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Start a worker beside the API in `trainlab serve`; default: only with the embedded broker.
    embedded_worker: bool | None = None

    # Worker side.
    device: Literal["auto", "cpu", "cuda"] = "auto"
    torch_threads: int | None = Field(default=None, ge=1, le=256)
    worker_concurrency: int = Field(default=1, ge=1, le=64)
    # Loss points, progress, heartbeat and the cancel check go to the store this often.
    flush_interval_s: float = Field(default=1.0, gt=0, le=60)
    # A running experiment whose worker has been silent this long is taken as lost.
    heartbeat_timeout_s: float = Field(default=60.0, gt=0, le=86_400)
    reaper_interval_s: float = Field(default=10.0, gt=0, le=3_600)
    # A checkpoint is saved this often so a run lost with its worker resumes, not restarts.
    checkpoint_interval_s: float = Field(default=60.0, gt=0, le=86_400)
    # How many times an experiment may be started before a lost worker makes it `failed`.
    max_attempts: int = Field(default=3, ge=1, le=20)
    visibility_timeout_s: int = Field(default=_TWO_DAYS_S, ge=60)
    # A queued experiment whose broker message is gone (broker restarted without persistence
    # or flushed, worker died between taking the message and claiming the run) is sent again
    # once its last message is this old and the broker no longer holds it.
    resend_lost_after_s: float = Field(default=180.0, gt=0, le=86_400)
    # How long a running job waits for an unreachable store (retrying, training paused) before
    # it stops and leaves the run to the reaper, which resumes it from its last checkpoint.
    store_patience_s: float = Field(default=600.0, gt=0, le=86_400)
    # On SIGTERM, SIGINT or SIGQUIT every trainlab process gets this long to stop (a running
    # job hands its run back at the next flush); then it and its children are killed.
    shutdown_grace_s: float = Field(default=15.0, gt=0, le=3_600)

    # API side.
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _check_urls(self) -> Settings:
        ok_db = ("sqlite", "postgresql")
        if self.database_url and not self.database_url.startswith(ok_db):
            raise ValueError(
                "TRAINLAB_DATABASE_URL must be sqlite:///... or postgresql+psycopg://..., "
                f"got {self.database_url.split(':', 1)[0]!r}"
            )
        ok_broker = ("redis://", "rediss://", "sqla+", "amqp://", "memory://")
        if self.broker_url and not self.broker_url.startswith(ok_broker):
            raise ValueError("TRAINLAB_BROKER_URL must be redis://..., amqp://... or sqla+...")
        return self

    @property
    def effective_database_url(self) -> str:
        url = self.database_url or f"sqlite:///{self.state_dir / 'trainlab.db'}"
        # psycopg 3 is the driver we ship; plain postgresql:// would pick psycopg2.
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return url

    @property
    def uses_embedded_broker(self) -> bool:
        return not self.broker_url

    @property
    def broker_is_sqlalchemy(self) -> bool:
        """kombu's SQLAlchemy transport (the embedded default): no fan-out, no visibility
        timeout."""
        return self.effective_broker_url.startswith("sqla+")

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{self.state_dir / 'broker.db'}"

    @property
    def run_embedded_worker(self) -> bool:
        if self.embedded_worker is None:
            return self.uses_embedded_broker
        return self.embedded_worker


def _unknown_variables(names: Iterable[str]) -> list[str]:
    known = {f"TRAINLAB_{field}".upper() for field in Settings.model_fields}
    return sorted(n for n in names if n.upper().startswith("TRAINLAB_") and n.upper() not in known)


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once. Tests clear the cache after changing the env.

    A TRAINLAB_* variable that names no setting is an error, not silently ignored: a typo in
    TRAINLAB_DATABASE_URL would otherwise put production data in a local SQLite file."""
    unknown = _unknown_variables(os.environ)
    if unknown:
        raise ValueError(f"unknown trainlab settings in the environment: {', '.join(unknown)}")
    return Settings()
