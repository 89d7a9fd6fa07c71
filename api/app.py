"""The FastAPI application. `create_app(settings)` builds it; `trainlab serve` runs it.

Everything a request needs is made here, once, from the one Settings object, and kept on
`app.state`: the database engine, the broker and the dispatcher. Routes reach them only
through the dependencies in api/deps.py; background work (the reaper) is handed them.

Startup does not touch the schema (Alembic owns it: `trainlab migrate`); it only checks it,
so an unmigrated database is reported clearly in the log and by /readyz rather than
surfacing later as a 500. Background work that lives as long as the app (the reaper) is
added as lifespan hooks: async context managers entered at startup, left at shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.auth import AUTH_RESPONSES, VIEWER, KeyCache
from api.background.dispatch import Dispatcher
from api.background.reaper import reaper_running
from api.background.retention import retention_running
from api.background.sweeps import sweeps_running
from api.deps import store_write_lock
from api.errors import install_error_handlers
from api.input_guard import InputGuard
from api.instrumentation import RequestLatency
from api.log_safety import install_log_escaping
from api.middleware import (
    BodySizeLimit,
    HeadAsGet,
    JsonPostsOnly,
    RequestGuard,
    SecurityHeaders,
    WritesSeen,
)
from api.openapi import install_openapi
from api.ratelimit import RateLimit, StreamSlots
from api.routes import PUBLIC_ROUTERS, ROUTERS
from api.routes.dashboard import STATIC_DIR
from api.routes.docs import DOCS_ASSETS_DIR, DOCS_ASSETS_URL
from api.routes.models import UPLOAD_PATHS
from api.routes.params import CANONICAL_INTEGERS
from api.services.changes import ChangeWatch
from api.services.metrics import AppMetrics
from core.broker import Broker
from core.settings import Settings
from core.store.migrate import schema_state
from core.store.session import make_engine

logger = logging.getLogger(__name__)

LifespanHook = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def reaper_hook(app: FastAPI) -> AbstractAsyncContextManager[None]:
    """Requeue experiments whose worker died, and send those the broker never got."""
    return reaper_running(
        app.state.dispatcher, app.state.settings, on_report=app.state.metrics.record_reap
    )


def retention_hook(app: FastAPI) -> AbstractAsyncContextManager[None]:
    """Delete runs whose deletion waited for their end; drop redundant rows and checkpoints."""
    return retention_running(app.state.engine, app.state.settings)


def sweeps_hook(app: FastAPI) -> AbstractAsyncContextManager[None]:
    """Drive active sweeps: judge rungs, ask new trials, send their runs."""
    return sweeps_running(app.state.engine, app.state.dispatcher, app.state.settings)


# What every served app runs beside the requests; tests pass their own (usually none).
DEFAULT_LIFESPAN_HOOKS: tuple[LifespanHook, ...] = (reaper_hook, retention_hook, sweeps_hook)


def create_app(
    settings: Settings, *, lifespan_hooks: Sequence[LifespanHook] | None = None
) -> FastAPI:
    """The API for `settings`: its own engine, broker and dispatcher, closed at shutdown."""
    hooks = tuple(DEFAULT_LIFESPAN_HOOKS if lifespan_hooks is None else lifespan_hooks)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _report_schema(app)
        try:
            async with AsyncExitStack() as stack:
                for hook in hooks:
                    await stack.enter_async_context(hook(app))
                yield
        finally:
            app.state.broker.close()
            app.state.engine.dispose()

    install_log_escaping()
    app = FastAPI(
        title="trainlab",
        version=_version(),
        summary="Training jobs for ablation studies: submit specs, read curves and predictions.",
        description=_DESCRIPTION,
        lifespan=lifespan,
        # Served by api/routes/docs.py from local files, not from a CDN.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.effective_database_url)
    app.state.broker = Broker(settings)
    app.state.write_lock = store_write_lock(app.state.engine)
    app.state.dispatcher = Dispatcher(
        app.state.engine, app.state.broker, write_lock=app.state.write_lock
    )
    app.state.metrics = AppMetrics(app.state.engine, app.state.broker)
    app.state.stream_slots = StreamSlots(settings.max_event_streams)
    app.state.key_cache = KeyCache()
    # The change feed (GET /changes): one store read per interval, its streams counted apart.
    app.state.change_watch = ChangeWatch(app.state.engine)
    app.state.change_slots = StreamSlots(settings.max_event_streams)
    install_error_handlers(app)
    # Added innermost first: a request meets RequestLatency, SecurityHeaders, RateLimit,
    # RequestGuard, JsonPostsOnly, BodySizeLimit, InputGuard, WritesSeen, then HeadAsGet;
    # every answer, theirs included, gets the security headers, and the latency counts every
    # answer, refusals too.
    app.add_middleware(HeadAsGet, routes=lambda: app.routes)
    app.add_middleware(WritesSeen)
    app.add_middleware(InputGuard, max_items=settings.max_json_items)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(JsonPostsOnly, routes=lambda: app.routes, uploads=UPLOAD_PATHS)
    app.add_middleware(
        RequestGuard, allowed_hosts=settings.allowed_hosts, max_headers=settings.max_header_count
    )
    app.add_middleware(
        RateLimit,
        per_key=settings.rate_limit_key,
        per_address=settings.rate_limit_address,
        key_cache=app.state.key_cache,
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestLatency, histogram=app.state.metrics.request_seconds)
    for router in ROUTERS:
        if router in PUBLIC_ROUTERS:
            app.include_router(router, dependencies=[CANONICAL_INTEGERS])
        else:
            # Reading anything needs a key when the server requires keys (api/auth.py);
            # routes that change things ask for more themselves.
            app.include_router(
                router, dependencies=[VIEWER, CANONICAL_INTEGERS], responses=AUTH_RESPONSES
            )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS_DIR), name="docs-assets")
    install_openapi(app)
    return app


_DESCRIPTION = """\
Submit experiment specs (a preset with overrides, or a full spec) and ablations; read loss
curves, per-record predictions and comparisons.

Every error is `{"detail": "..."}`; a 422 also lists `errors: [{"field", "in", "reason"}]`.
A POST takes `Content-Type: application/json`, also when it has no body (cancel): other web
sites cannot send that from a browser. Each run's estimated cost (`cost`, see `GET /presets`)
is checked at submit against the server's bounds (TRAINLAB_MAX_CHECKPOINT_BYTES,
TRAINLAB_MAX_RUN_MEMORY_BYTES, TRAINLAB_MAX_RUN_CPU_HOURS, TRAINLAB_MAX_ABLATION_CPU_HOURS).
"""


def _report_schema(app: FastAPI) -> None:
    try:
        problem = schema_state(app.state.engine).problem
    except Exception as exc:  # the database may come up after the API; /readyz keeps asking
        logger.error("database unreachable at startup: %s", exc)
        return
    if problem:
        logger.error("%s (GET /readyz answers 503 until then)", problem)


def _version() -> str:
    try:
        return version("trainlab")
    except PackageNotFoundError:
        return "0+unknown"
