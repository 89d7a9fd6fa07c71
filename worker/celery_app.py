"""The worker's Celery app: the shared broker configuration (core/broker.py) plus this
package's task modules. `trainlab worker` runs it; the API never imports it."""

from __future__ import annotations

from core.broker import make_celery
from core.settings import get_settings

celery_app = make_celery(get_settings(), include=["worker.tasks"])
