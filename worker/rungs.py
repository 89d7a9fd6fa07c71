"""Writing a run's validation figures at its rungs, as the engine reports them.

Rungs are few (at most core.spec.MAX_VALIDATION_RUNGS a run), so each is written at once on
the training thread through the job's StoreLink, where a sweep's driver can read it while
the run goes on. A store that stays away loses the figure, not the run: the final metrics
carry every rung as well.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from core.store import sweeps
from worker.store_link import StoreGone, StoreLink, StoreRefused

logger = logging.getLogger(__name__)


def rung_writer(link: StoreLink, experiment_id: str) -> Callable[[int, dict[str, Any]], None]:
    def write(step: int, figures: dict[str, Any]) -> None:
        try:
            link.run(
                f"validation figures at step {step}",
                lambda session: sweeps.save_rung(session, experiment_id, figures),
            )
        except (StoreGone, StoreRefused) as exc:
            logger.warning(
                "experiment %s: rung at step %d not stored: %s", experiment_id, step, exc
            )

    return write
