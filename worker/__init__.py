"""trainlab's workers: the experiment spec, the Celery tasks and the PyTorch training engine.

Only `worker.engine` imports torch; `worker.spec` and `worker.presets` are plain pydantic so
the API can validate specs without it.
"""
