"""The GAN engine (the book's chapters 7, 8 and 16): a GanSpec in, a finished (or stopped)
run out, reported through the classifier engine's RunCallbacks.

Pure PyTorch like worker/engine (no database, Celery or HTTP; .ci/check_layering.py checks
it); importing this package imports torch.
"""

from worker.gan.runner import run_gan, run_gan_group

__all__ = ["run_gan", "run_gan_group"]
