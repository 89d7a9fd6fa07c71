"""The worker's Celery app: the shared broker configuration (core/broker.py) plus this
package's task modules. `trainlab worker` runs it; the API never imports it."""

from __future__ import annotations

import warnings

from celery.utils.deprecated import CPendingDeprecationWarning

from core.broker import make_celery
from core.settings import get_settings

# How often the worker looks for a message on the embedded broker (kombu's SQLAlchemy
# transport, which can only poll). kombu's default, 1 s, put half a second on average between
# a POST and its run's start; a look is one small SELECT on a local SQLite file, so five a
# second cost nothing next to a run. Redis needs no such thing: it blocks until a message comes.
EMBEDDED_POLL_S = 0.2

_settings = get_settings()
celery_app = make_celery(_settings, include=["worker.tasks"])

if _settings.broker_is_sqlalchemy:
    from kombu.transport import sqlalchemy

    # A transport option would do this, but that transport hands every option on to
    # create_engine(), which refuses unknown ones; the class attribute is its default.
    sqlalchemy.Transport.polling_interval = EMBEDDED_POLL_S

# The setting is decided in core/broker.py (worker_cancel_long_running_tasks_on_connection_loss
# is False on purpose); Celery warns at every lost connection all the same.
warnings.filterwarnings(
    "ignore", message=r"\s*In Celery 5\.1 we introduced", category=CPendingDeprecationWarning
)
