"""The FastAPI application. `create_app()` builds it from the settings; `trainlab serve` runs it.

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

from api.db.migrate import schema_state
from api.db.session import engine_for
from api.errors import install_error_handlers
from api.middleware import BodySizeLimit, CatchAll
from api.routes import ROUTERS
from api.settings import Settings, get_settings

logger = logging.getLogger(__name__)

LifespanHook = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def reaper_hook(app: FastAPI) -> AbstractAsyncContextManager[None]:
    """Requeue experiments whose worker died, and send those the broker never got."""
    from api.reaper import reaper_running

    return reaper_running(app.state.settings)


# What every served app runs beside the requests; tests pass their own (usually none).
DEFAULT_LIFESPAN_HOOKS: tuple[LifespanHook, ...] = (reaper_hook,)


def create_app(
    settings: Settings | None = None, *, lifespan_hooks: Sequence[LifespanHook] | None = None
) -> FastAPI:
    """The API for `settings` (default: the process's). The store, dispatch and reaper read
    the process settings too, so pass settings equal to get_settings(), or none."""
    settings = settings or get_settings()
    hooks = tuple(DEFAULT_LIFESPAN_HOOKS if lifespan_hooks is None else lifespan_hooks)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _report_schema(app)
        async with AsyncExitStack() as stack:
            for hook in hooks:
                await stack.enter_async_context(hook(app))
            yield

    app = FastAPI(
        title="trainlab",
        version=_version(),
        summary="Training jobs for ablation studies: submit specs, read curves and predictions.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine_for(settings.effective_database_url)
    install_error_handlers(app)
    # Added last = outermost: CatchAll also covers the size limit.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(CatchAll)
    for router in ROUTERS:
        app.include_router(router)
    return app


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
