"""One GAN step, per training record, as the book's loop takes it (BOOK.md, "The GAN loop"):

1. D on the real image, target 1;
2. D on G(seed).detach() for a fresh seed, target 0;
3. G through D for another fresh seed, target 1, with D's loss function; only G's optimizer
   steps.

What the engine saves over the book's classes, without changing a single value: the fake of
step 2 is drawn without building G's graph (the book detaches it afterwards), step 3's
backward computes G's gradients only (the book also fills D's, which D's next zero_grad
throws away), the targets are made once, and a loss is read back (.item(), a sync on a GPU)
only when it is recorded.
"""

from __future__ import annotations

import torch
from torch import Tensor

from core.kinds.gan_spec import GanSpec
from worker.gan.networks import GanModels, draw_latent


class GanStep:
    def __init__(self, spec: GanSpec, models: GanModels, device: torch.device) -> None:
        self.spec = spec
        self.m = models
        self.device = device
        self.one = torch.ones(1, 1, device=device)
        self.zero = torch.zeros(1, 1, device=device)
        self.eye = torch.eye(10, device=device)
        self.g_params = list(models.generator.parameters())

    def draw(self, rng: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """The step's two fresh seeds (and, conditional, their two random labels)."""
        seeds = draw_latent(self.spec, 2, rng).to(self.device)
        labels = torch.randint(0, 10, (2,), generator=rng) if self.spec.conditional else None
        return seeds, labels

    def __call__(
        self,
        real: Tensor,
        real_label: int,
        seeds: Tensor,
        labels: Tensor | None,
        record: tuple[bool, bool, bool] = (True, True, True),
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """Train on one record; the three losses (D real, D fake, G), not read back (autograd
        computes each anyway, so `record`, which names those the caller keeps, is not read)."""
        m = self.m
        d, g, loss = m.discriminator, m.generator, m.loss
        seed_d, seed_g = seeds[0:1], seeds[1:2]
        if labels is not None:
            onehot_real = self.eye[real_label : real_label + 1]
            onehot_d = self.eye[int(labels[0]) : int(labels[0]) + 1]
            onehot_g = self.eye[int(labels[1]) : int(labels[1]) + 1]
            real = torch.cat((real, onehot_real), 1)
            seed_d = torch.cat((seed_d, onehot_d), 1)
            seed_g = torch.cat((seed_g, onehot_g), 1)
        # 1. D on the real image, target 1.
        d_real = loss(d(real), self.one)
        m.d_optimizer.zero_grad()
        d_real.backward()
        m.d_optimizer.step()
        # 2. D on a fake, target 0 (the fake carries no graph: the book detaches it).
        with torch.no_grad():
            fake = g(seed_d)
        if labels is not None:
            fake = torch.cat((fake, onehot_d), 1)
        d_fake = loss(d(fake), self.zero)
        m.d_optimizer.zero_grad()
        d_fake.backward()
        m.d_optimizer.step()
        # 3. G through D, target 1; only G's gradients are computed and only G steps.
        image = g(seed_g)
        if labels is not None:
            image = torch.cat((image, onehot_g), 1)
        g_loss = loss(d(image), self.one)
        m.g_optimizer.zero_grad()
        g_loss.backward(inputs=self.g_params)
        m.g_optimizer.step()
        return d_real, d_fake, g_loss
