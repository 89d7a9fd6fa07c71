"""The GAN engine's step against the book's notebook loop, side by side, same data, 1 thread.

The plain loop is written as the book writes it: nn.Module subclasses with their own train()
(the discriminator's and the generator's, with their own optimizer and a loss kept every 10
calls), one record at a time in file order, fresh seeds per record. The engine runs the same
recipe through worker.gan.run_gan. Both are timed over their training loop alone, --repeats
times in turn (book, engine, book, ...); the best of each counts.

Usage:
    python bench/gan_bench.py [--preset gan-mnist] [--records 2000] [--repeats 3]
        [--data-dir ../shared/data]
Prints steps/s for both, their ratio (and each pair's) and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from torch import nn

from core.kinds.gan_spec import GanSpec
from core.presets import build_any_spec
from worker.engine.data import load_dataset
from worker.gan import run_gan


class Discriminator(nn.Module):
    def __init__(self, spec: GanSpec) -> None:
        super().__init__()
        from worker.gan.networks import build_loss, build_network

        self.model = build_network(spec.discriminator)
        self.loss_function = build_loss(spec)
        self.optimiser = (
            torch.optim.Adam(self.parameters(), lr=spec.discriminator.lr)
            if spec.discriminator.optimizer == "adam"
            else torch.optim.SGD(self.parameters(), lr=spec.discriminator.lr)
        )
        self.counter = 0
        self.progress: list[float] = []

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.model(inputs)
        return out

    def train(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:  # type: ignore[override]
        outputs = self.forward(inputs)
        loss = self.loss_function(outputs, targets)
        self.counter += 1
        if self.counter % 10 == 0:
            self.progress.append(loss.item())
        self.optimiser.zero_grad()
        loss.backward()
        self.optimiser.step()


class Generator(nn.Module):
    def __init__(self, spec: GanSpec) -> None:
        super().__init__()
        from worker.gan.networks import build_network

        self.model = build_network(spec.generator)
        self.optimiser = (
            torch.optim.Adam(self.parameters(), lr=spec.generator.lr)
            if spec.generator.optimizer == "adam"
            else torch.optim.SGD(self.parameters(), lr=spec.generator.lr)
        )
        self.counter = 0
        self.progress: list[float] = []

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.model(inputs)
        return out

    def train(self, D: Discriminator, inputs: torch.Tensor, targets: torch.Tensor) -> None:  # type: ignore[override]
        g_output = self.forward(inputs)
        d_output = D.forward(g_output)
        loss = D.loss_function(d_output, targets)
        self.counter += 1
        if self.counter % 10 == 0:
            self.progress.append(loss.item())
        self.optimiser.zero_grad()
        loss.backward()
        self.optimiser.step()


def book_loop(spec: GanSpec, images: torch.Tensor) -> float:
    """The notebook's loop over `images`; its seconds."""
    torch.manual_seed(spec.seed)
    D, G = Discriminator(spec), Generator(spec)
    size = spec.latent_size

    def seed() -> torch.Tensor:
        return torch.randn(size) if spec.latent == "normal" else torch.rand(size)

    one, zero = torch.FloatTensor([1.0]), torch.FloatTensor([0.0])
    started = time.perf_counter()
    for image in images:
        D.train(image, one)
        D.train(G.forward(seed()).detach(), zero)
        G.train(D, seed(), one)
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="gan-mnist")
    p.add_argument("--records", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    args = p.parse_args()
    torch.set_num_threads(1)
    spec = build_any_spec(
        args.preset,
        {"train_limit": args.records, "epochs": 1, "sample_every": args.records, "samples": 1},
    )
    assert isinstance(spec, GanSpec)
    data = load_dataset("mnist", args.data_dir, torch.device("cpu"), allow_download=False)
    load_before = os.getloadavg()
    book_runs: list[float] = []
    engine_runs: list[float] = []
    # Turn about, so that a shift of the shared machine's load falls on both; the best of
    # each is the figure least inflated by the other jobs.
    for _ in range(args.repeats):
        book_runs.append(book_loop(spec, data.train_x[: args.records]))
        result = run_gan(
            spec, data_dir=args.data_dir, allow_download=False, device="cpu", threads=1
        )
        engine_runs.append(result.timings["train_s"])
    book_s, engine_s = min(book_runs), min(engine_runs)
    figures = {
        "preset": args.preset,
        "records": args.records,
        "repeats": args.repeats,
        "book_steps_per_s": round(args.records / book_s, 1),
        "engine_steps_per_s": round(args.records / engine_s, 1),
        "engine_over_book_time": round(engine_s / book_s, 3),
        "pairs_engine_over_book": [
            round(e / b, 3) for e, b in zip(engine_runs, book_runs, strict=True)
        ],
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
    }
    print(f"{'':8}{'steps/s':>10}   (best of {args.repeats}, taken in turn)")
    print(f"{'book':8}{figures['book_steps_per_s']:>10}")
    print(f"{'engine':8}{figures['engine_steps_per_s']:>10}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
