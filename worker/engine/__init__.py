"""The training engine: an ExperimentSpec in, a finished (or stopped) run out.

Pure PyTorch: no database, Celery or HTTP. Progress goes out through RunCallbacks; importing
this package imports torch, so the API never imports it. Runs that share their structure
(core.spec.group_key, torch-free) train fused through run_training_group.
"""

from worker.engine.callbacks import Predictions, RunCallbacks, RunResult
from worker.engine.checkpoint import CheckpointError, checkpoint_step
from worker.engine.data import DatasetUnavailableError
from worker.engine.layout import UnsupportedModelError
from worker.engine.model import DeviceUnavailableError
from worker.engine.runner import run_training, run_training_group

__all__ = [
    "CheckpointError",
    "DatasetUnavailableError",
    "DeviceUnavailableError",
    "Predictions",
    "RunCallbacks",
    "RunResult",
    "UnsupportedModelError",
    "checkpoint_step",
    "run_training",
    "run_training_group",
]
