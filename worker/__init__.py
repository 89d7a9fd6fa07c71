"""trainlab's workers: the Celery app and task, the job that claims an experiment, runs it and
writes the outcome, the heartbeat, and the PyTorch training engine (worker/engine, which knows
nothing of the rest). Depends on `core` only; the API never imports this package.
"""
