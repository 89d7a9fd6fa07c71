"""The book's CNN (ch. 13, preset cnn-mnist) through the engine, and the same network trained
by the plain PyTorch loop of the book's notebook, side by side on one CPU thread.

The plain loop is the notebook's: an nn.Module holding its layers, its loss, its optimiser
(torch.optim.Adam, default settings) and a counter, with its own `train(inputs, targets)` (so
the network never switches to eval mode), called once per record in file order; the loss is
kept every 10 calls. It reads the records from tensors in memory (the notebook read each one
through pandas, which only makes it slower). It is tested the notebook's way, record by
record in train mode (each image's BatchNorm statistics its own). Both sides start from the
same initial weights (the layers built in the same order after `torch.manual_seed(seed)`).

The engine side is `run_training(build_spec("cnn-mnist", ...))`: the autograd step (the
hand-written step knows Linear layers only), evaluation with each record's own BatchNorm
statistics. Both report the seconds of their training loop alone and the test accuracy on the
whole test set. The book reports 0.9814 after 3 epochs.

Usage:
    python bench/book_cnn.py [--epochs 1] [--train-limit N] [--threads 1] [--seed 0]
        [--skip-plain] [--data-dir ../shared/data]
Prints a table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.presets import build_spec
from worker.engine import run_training
from worker.engine.data import load_dataset

REPO = Path(__file__).resolve().parent.parent
BOOK_ACCURACY = 0.9814  # after 3 epochs (BOOK.md)


class Classifier(nn.Module):
    """The notebook's CNN classifier, as it is written there."""

    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(1, 10, kernel_size=5, stride=2),
            nn.LeakyReLU(0.02),
            nn.BatchNorm2d(10),
            nn.Conv2d(10, 10, kernel_size=3, stride=2),
            nn.LeakyReLU(0.02),
            nn.BatchNorm2d(10),
            nn.Flatten(),
            nn.Linear(250, 10),
            nn.Sigmoid(),
        )
        self.loss_function = nn.BCELoss()
        self.optimiser = torch.optim.Adam(self.parameters())
        self.counter = 0
        self.progress: list[float] = []

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs)  # type: ignore[no-any-return]

    def train(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:  # type: ignore[override]
        outputs = self.forward(inputs)
        loss = self.loss_function(outputs, targets)
        self.counter += 1
        if self.counter % 10 == 0:
            self.progress.append(loss.item())
        self.optimiser.zero_grad()
        loss.backward()
        self.optimiser.step()


def plain_loop(args: argparse.Namespace, records: int) -> dict[str, Any]:
    data = load_dataset("mnist", args.data_dir, torch.device("cpu"), allow_download=False)
    images = data.train_x[:records].view(records, 1, 1, 28, 28)
    targets = data.train_onehot[:records].view(records, 1, 10)
    torch.manual_seed(args.seed)
    classifier = Classifier()
    started = time.perf_counter()
    for _ in range(args.epochs):
        for i in range(records):
            classifier.train(images[i], targets[i])
    train_s = time.perf_counter() - started
    correct = 0
    test = data.test_x.view(-1, 1, 1, 28, 28)
    with torch.no_grad():  # the notebook's test: one record at a time, never in eval mode
        for i in range(len(test)):
            correct += int(classifier.forward(test[i]).argmax()) == int(data.test_labels[i])
    return {
        "train_s": train_s,
        "steps_per_s": args.epochs * records / train_s,
        "test_accuracy": correct / len(test),
        "final_loss": sum(classifier.progress[-100:]) / len(classifier.progress[-100:]),
    }


def engine(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {"epochs": args.epochs, "seed": args.seed, "device": "cpu"}
    if args.train_limit:
        overrides["train_limit"] = args.train_limit
    spec = build_spec("cnn-mnist", overrides)
    started = time.perf_counter()
    result = run_training(spec, data_dir=args.data_dir, allow_download=False, threads=args.threads)
    wall = time.perf_counter() - started
    return {
        "train_s": result.timings["train_s"],
        "steps_per_s": result.metrics["steps_per_second"],
        "test_accuracy": result.metrics["test_accuracy"],
        "final_loss": result.metrics["final_loss"],
        "wall_s": wall,
        "engine_path": result.fingerprint["engine_path"],
        "records": spec.train_records,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-limit", type=int, default=0, help="first N records (0: all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-plain", action="store_true", help="the engine alone")
    p.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    figures: dict[str, Any] = {"epochs": args.epochs, "threads": args.threads}
    figures["engine"] = engine(args)
    print(f"engine: {json.dumps(figures['engine'])}", flush=True)
    if not args.skip_plain:
        figures["plain"] = plain_loop(args, figures["engine"]["records"])
        figures["engine_over_plain"] = figures["engine"]["train_s"] / figures["plain"]["train_s"]
    print(f"\ncnn-mnist, {args.epochs} epoch(s), {args.threads} thread(s)")
    print(f"{'side':8} {'train s':>9} {'steps/s':>9} {'test acc':>9} {'final loss':>11}")
    for side in ("engine", "plain"):
        if side in figures:
            f = figures[side]
            print(
                f"{side:8} {f['train_s']:9.1f} {f['steps_per_s']:9.0f} "
                f"{f['test_accuracy']:9.4f} {f['final_loss']:11.4f}"
            )
    if "engine_over_plain" in figures:
        print(f"engine / plain training time: {figures['engine_over_plain']:.2f}")
    print(f"the book: test accuracy {BOOK_ACCURACY} after 3 epochs")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
