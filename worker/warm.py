"""Warming a worker process before its first claim.

A run's first step in a fresh process used to wait for torchvision's import and the decoding
of its dataset into tensors (about 5 s of a 1-epoch MNIST run on a 2-core machine, more than
the loss writes of a whole 3-epoch run). Neither depends on the spec, and the engine keeps
the tensors in a per-process cache, so the worker pays for them as it starts, in a thread:
Celery gives a pool process a few seconds to report that it is up, and the first run that
arrives while the warm-up is still going waits on the cache's lock instead of loading twice.

A data directory without the dataset must not break the worker: the warm-up logs and goes on,
and the run then loads (or downloads) it as before. It never downloads itself.
"""

from __future__ import annotations

import logging
import threading
import time

from core.settings import Settings

logger = logging.getLogger(__name__)


def warm(settings: Settings) -> list[str]:
    """Load the settings' warm datasets into the engine's cache on the worker's device; the
    names loaded (those missing or failing are logged and left out)."""
    if not settings.warm_datasets:
        return []
    started = time.perf_counter()
    try:
        from worker.engine.data import load_dataset
        from worker.engine.model import resolve_device

        device = resolve_device(settings.device)
    except Exception as exc:  # a CUDA worker without its GPU: the run reports it, not this
        logger.warning("no warm-up: %s", exc)
        return []
    loaded: list[str] = []
    for name in settings.warm_datasets:
        try:
            load_dataset(name, settings.data_dir, device, allow_download=False)
        except Exception as exc:
            logger.warning("warm-up: %s not loaded (%s); a run loads it itself", name, exc)
            continue
        loaded.append(name)
    if loaded:
        logger.info(
            "warm-up: %s on %s in %.1f s", ", ".join(loaded), device, time.perf_counter() - started
        )
    return loaded


def warm_in_background(settings: Settings) -> threading.Thread:
    thread = threading.Thread(target=warm, args=(settings,), name="warm-up", daemon=True)
    thread.start()
    return thread
