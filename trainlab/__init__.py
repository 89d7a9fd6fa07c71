"""trainlab from Python: `Client` (blocking) and `AsyncClient` over the HTTP API.

    from trainlab import Client

    with Client() as client:  # TRAINLAB_URL, TRAINLAB_API_KEY
        run = client.experiments.create(preset="seed-adam", overrides={"epochs": 1})
        run = client.experiments.wait(run.id)

This package needs only httpx and pydantic (`pip install trainlab`); it imports nothing of
the server. `to_pandas()` needs the `pandas` extra and `plot()` the `plot` extra.
"""

from __future__ import annotations

from trainlab import errors, gan_models, models, sweep_models
from trainlab._async import AsyncClient
from trainlab._sync import Client
from trainlab.errors import (
    ApiError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    NotFound,
    RateLimited,
    ServerUnavailable,
    TrainlabError,
    Unauthorized,
    ValidationError,
)

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "ServerUnavailable",
    "TrainlabError",
    "Unauthorized",
    "ValidationError",
    "errors",
    "gan_models",
    "models",
    "sweep_models",
]
