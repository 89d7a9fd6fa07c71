"""The one settings object. Every knob of the deployment is read here, from `TRAINLAB_*`
environment variables (or a `.env` file), and validated once; nothing else reads os.environ."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.spec import Dataset

# The longest run a spec may ask for is bounded (see core.spec.MAX_TOTAL_STEPS); the broker's
# visibility timeout must stay above it, or Redis would hand a running task to a second worker.
_TWO_DAYS_S = 2 * 24 * 3600
_MIB = 1_048_576
# SQLite refuses a blob over 1,000,000,000 bytes (its default SQLITE_MAX_LENGTH): a checkpoint
# bound above this would accept runs whose checkpoint the default store cannot keep.
_SQLITE_MAX_BLOB = 1_000_000_000
# Names a browser on this machine uses for a server bound to loopback.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::"})


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
    # Where `trainlab backup` and `restore` find pg_dump and pg_restore (empty: the newest
    # /usr/lib/postgresql/*/bin, else PATH); they must be at least as new as the server.
    pg_bin_dir: Path | None = None
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
    # The most queued runs of one structure (an ablation arm's seeds) one worker takes to train
    # fused in one go; on the CPU also no more than the engine fuses at once (its cache bound).
    max_fused_runs: int = Field(default=8, ge=1, le=64)
    # Loss points, progress, heartbeat and the cancel check go to the store this often.
    flush_interval_s: float = Field(default=1.0, gt=0, le=60)
    # A running experiment whose worker has been silent this long is taken as lost, and
    # requeued to resume from its checkpoint. Lower: a dead worker's run moves again sooner;
    # too low: a worker paused that long (swapping, a stalled disk) loses its run to a twin.
    # The beat comes from a thread of its own every flush interval, so 15 s is 15 missed beats.
    heartbeat_timeout_s: float = Field(default=15.0, gt=0, le=86_400)
    # How often the API's reaper looks for silent runs, unsent and lost messages: a few
    # indexed reads of the store per pass, and a read of the broker's queue when runs wait.
    reaper_interval_s: float = Field(default=5.0, gt=0, le=3_600)
    # A checkpoint is saved this often so a run lost with its worker resumes, not restarts.
    checkpoint_interval_s: float = Field(default=60.0, gt=0, le=86_400)
    # How many times an experiment may be started before a lost worker makes it `failed`.
    max_attempts: int = Field(default=3, ge=1, le=20)
    visibility_timeout_s: int = Field(default=_TWO_DAYS_S, ge=60)
    # A run that has ended keeps its final weights (small, safetensors) and drops its
    # checkpoint (weights plus optimizer state, only good for resuming) unless this is set.
    keep_checkpoints: bool = False
    # A queued experiment whose broker message is gone (broker restarted without persistence
    # or flushed, worker died between taking the message and claiming the run) is sent again
    # once its last message is this old and the broker no longer holds it (a message a worker
    # took this long ago without claiming a run counts as gone). Sending one again that was
    # not lost is harmless (claims are conditional); the cost of a low bound is reading the
    # broker's queue more often (README: settings).
    resend_lost_after_s: float = Field(default=10.0, gt=0, le=86_400)
    # Datasets a worker process loads into its cache when it starts, before its first claim,
    # so that run does not pay for reading them. In the environment: a comma-separated list;
    # empty turns it off (each takes about 220 MB of memory on the training device).
    warm_datasets: Annotated[list[Dataset], NoDecode] = Field(
        default_factory=lambda: list[Dataset](["mnist"]),
        max_length=2,
        description="Datasets a worker loads when it starts (comma-separated; empty: none). "
        "A dataset missing from the data directory is logged and skipped: the run then loads "
        "or downloads it as usual.",
    )
    # How long a running job waits for an unreachable store (retrying, training paused) before
    # it stops and leaves the run to the reaper, which resumes it from its last checkpoint.
    store_patience_s: float = Field(default=600.0, gt=0, le=86_400)
    # On SIGTERM, SIGINT or SIGQUIT every trainlab process gets this long to stop (a running
    # job hands its run back at the next flush); then it and its children are killed.
    shutdown_grace_s: float = Field(default=15.0, gt=0, le=3_600)

    # API side.
    # A run's state or new loss points read less than this long ago are answered again
    # without reading the store (api/http/freshness.py): many pollers, one read a window.
    poll_fresh_s: float = Field(
        default=0.2,
        ge=0,
        le=2,
        description="How stale a polled experiment state may be (seconds; 0: read every time). "
        "Writes through the same API process end the window at once.",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # The API's retention pass: deletes runs whose deletion waited for them to end, drops the
    # per-point loss rows of ended runs (their packed series stays) and stale checkpoints.
    retention_interval_s: float = Field(default=30.0, gt=0, le=86_400)
    # One API process drives a sweep at a time, under a lease it renews at every step of its
    # pass (api/background/sweeps.py). When its holder dies, another process takes the sweep
    # over once the lease has run out: lower moves a sweep on sooner after a lost API process;
    # too low, and a process paused that long (swapping) hands the sweep over, and stops.
    sweep_lease_s: float = Field(default=30.0, ge=1, le=3_600)
    # The names (Host header, without the port) this server answers to; anything else gets
    # 400, which stops DNS rebinding (a web page whose name suddenly points at 127.0.0.1).
    # Empty means the loopback names plus TRAINLAB_HOST; `*` accepts any name. In the
    # environment: a comma-separated list, e.g. `trainlab.example.org,10.0.0.5`.
    trusted_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # An event stream (GET /experiments/{id}/events) closes after this long; the browser
    # reconnects and resumes where it was, so no connection is held for a whole run.
    max_stream_s: float = Field(default=300.0, gt=0, le=86_400)

    # What one run may cost (core/cost.py estimates it from the spec), checked at submit so that
    # every accepted spec can run and be stored. The checkpoint is one blob in the store.
    max_checkpoint_bytes: int = Field(default=256 * _MIB, ge=_MIB, le=_SQLITE_MAX_BLOB)
    # Peak memory of the worker process for one run: weights, gradients, optimizer state,
    # activations of one batch, the dataset and the checkpoint being written.
    max_run_memory_bytes: int = Field(default=2048 * _MIB, ge=256 * _MIB, le=1024 * 1024 * _MIB)
    # CPU time of one run, and of all the runs of one ablation, as core/cost.py estimates it
    # for one CPU thread (a GPU run is much faster; the bound is about the work asked for).
    max_run_cpu_hours: float = Field(default=4.0, gt=0, le=10_000)
    max_ablation_cpu_hours: float = Field(default=24.0, gt=0, le=100_000)
    # All that one run keeps in the store at once (core/cost.py: its checkpoint and final
    # weights, which exist together when it ends, its series and its outputs). 384 MiB lets
    # the largest checkpoint max_checkpoint_bytes accepts be stored beside its weights (Adam:
    # a third of it more), and refuses a wide SGD net whose two copies pass 400 MB.
    max_run_stored_bytes: int = Field(default=384 * _MIB, ge=_MIB, le=1024 * 1024 * _MIB)

    @field_validator("trusted_hosts", "warm_datasets", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    # Accounts (api/auth.py). `auto` requires an API key whenever the API listens on an
    # address other than loopback, so `make run` on 127.0.0.1 stays open; `required` always;
    # `off` never, which only a loopback address may ask for.
    auth: Literal["auto", "required", "off"] = "auto"
    # The key `trainlab submit` and `trainlab ablate` send (Authorization: Bearer ...).
    api_key: str = Field(default="", repr=False)
    # Per-key quotas: experiments queued or running at once, estimated CPU-hours of work per
    # rolling day (core/cost.py; 24 is one worker busy all day), and cells in one ablation.
    quota_active_experiments: int = Field(default=20, ge=1, le=100_000)
    quota_daily_cpu_hours: float = Field(default=24.0, gt=0, le=1_000_000)
    quota_ablation_cells: int = Field(default=100, ge=1, le=10_000)
    # Bytes the runs of one account may keep in the store, as priced at submit (core/cost.py,
    # SpecCost.stored_bytes) for every run it still has: deleting a run frees its share.
    # 4 GiB: about 1,300 runs of the book's recipe, or ten of the largest a run may be.
    quota_stored_bytes: int = Field(default=4096 * _MIB, ge=_MIB, le=1024 * 1024 * 1024 * _MIB)
    # Request rates (the `limits` library's notation), per key and per client address, and
    # how many live event streams a key (or, open, an address) may hold.
    rate_limit_key: str = "600/minute"
    rate_limit_address: str = "1200/minute"
    max_event_streams: int = Field(default=8, ge=1, le=10_000)

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

    @model_validator(mode="after")
    def _check_access(self) -> Settings:
        from limits import parse_many

        for name in ("rate_limit_key", "rate_limit_address"):
            try:
                parse_many(getattr(self, name))
            except ValueError:
                raise ValueError(
                    f"TRAINLAB_{name.upper()} must read like 600/minute or 10/second"
                ) from None
        if self.auth == "off" and not is_loopback(self.host):
            raise ValueError(
                f"TRAINLAB_AUTH=off on {self.host}, an address others can reach: every "
                "endpoint would be open to them. Use auth=auto or required, or bind 127.0.0.1"
            )
        return self

    @property
    def auth_required(self) -> bool:
        if self.auth == "auto":
            return not is_loopback(self.host)
        return self.auth == "required"

    @property
    def allowed_hosts(self) -> list[str]:
        """trusted_hosts, or the loopback names plus the bind host when none are set."""
        if self.trusted_hosts:
            return list(self.trusted_hosts)
        hosts = list(LOOPBACK_HOSTS)
        if self.host not in _WILDCARD_BINDS and self.host not in hosts:
            hosts.append(self.host)
        return hosts

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

    # The request's edges, bounded before anything else runs. The server (h11) refuses a
    # request whose line and headers together pass max_header_bytes while they arrive, so an
    # unfinished header holds at most that much memory; more than max_header_count headers get
    # 431. A JSON body with more than max_json_items items (commas and brackets, counted before
    # it is parsed) gets 413: parsing and validating it would hold the event loop.
    max_header_bytes: int = Field(default=16_384, ge=1024, le=1_048_576)
    max_header_count: int = Field(default=100, ge=8, le=1000)
    max_json_items: int = Field(default=4096, ge=64, le=1_000_000)
    # The proxies (addresses, or `*`) whose X-Forwarded-For / X-Forwarded-Proto are believed;
    # empty: none, so the client address is always the connection's own (a local process
    # cannot pick the address it is counted as). In the environment: a comma-separated list.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach an address (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: assume it can be reached from elsewhere


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
