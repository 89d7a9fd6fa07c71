"""The sweep study's space and its ground truth (bench/sweep_bench.py).

The space is a grid around the book's recipes (SEED.md): learning rate, hidden width,
activation, optimizer and normalization on the book's refined loss (BCE, sigmoid outputs,
batch size 1), 1 epoch of the first `records` training records after the validation split
(`validation_records` held out by the spec's own rule, worker/engine/validation.py). Every
method searches exactly these values, so every configuration a method picks has a true figure.

The ground truth trains every configuration on GROUND_SEEDS, seeds no method ever uses (the
methods use seeds 0..4), so a method's pick is judged on runs it never saw: no winner's curse.
A configuration's true figure is its seeds' mean validation accuracy at the full budget; its
true rank is its place by that mean. The runs train fused by structure through the engine
(one process, one thread), and the result is cached as JSON under bench/results/, keyed by
the grid, the budget and the engine's source, so a rerun only reads it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.spec import ExperimentSpec

REPO = Path(__file__).resolve().parent.parent
GROUND_SEEDS = (1000, 1001, 1002, 1003, 1004)
RUNGS = 3  # 1/9, 1/3 and all of the budget, as a sweep's default
# What the ground truth depends on besides the grid: the engine and the spec's rules.
CODE = ("worker/engine", "core/spec.py", "core/model_spec.py", "bench/sweep_grid.py")


@dataclass(frozen=True)
class Grid:
    values: dict[str, list[Any]]
    records: int  # training records of a run (1 epoch)
    validation_records: int
    test_records: int = 1000  # read only at a run's end, never by a method

    def base(self) -> dict[str, Any]:
        """The spec every configuration starts from: the book's refined loss, batch size 1."""
        return {
            "loss": "bce",
            "model": {"output": "sigmoid", "negative_slope": 0.02},
            "epochs": 1,
            "batch_size": 1,
            "train_limit": self.records,
            "test_limit": self.test_records,
            "device": "cpu",
        }

    def configs(self) -> list[dict[str, Any]]:
        paths = list(self.values)
        return [
            dict(zip(paths, combo, strict=True))
            for combo in itertools.product(*(self.values[p] for p in paths))
        ]

    def spec(self, config: dict[str, Any], seed: int) -> ExperimentSpec:
        from core.spec_paths import apply_overrides

        fractions = [3.0 ** (k - RUNGS + 1) for k in range(RUNGS)]
        raw = apply_overrides(self.base(), config)
        raw |= {
            "seed": seed,
            "validation_records": self.validation_records,
            "validation_rungs": fractions,
        }
        return ExperimentSpec.model_validate(raw)

    def steps(self) -> int:
        """Optimizer steps of one full run (the same for every configuration)."""
        return self.spec(self.configs()[0], 0).total_steps

    def space(self) -> dict[str, dict[str, Any]]:
        """The grid as a sweep's space (POST /sweeps): a choice per knob."""
        return {path: {"type": "choice", "values": list(v)} for path, v in self.values.items()}


FULL = Grid(
    values={
        "lr": [0.001, 0.01],
        "model.hidden": [[100], [200]],
        "model.activation": ["sigmoid", "leaky_relu"],
        "optimizer": ["sgd", "adam"],
        "model.normalization": ["none", "layer_norm"],
    },
    records=20_000,
    validation_records=10_000,
)
QUICK = Grid(
    values={
        "lr": [0.001, 0.01],
        "model.hidden": [[50], [100]],
        "model.activation": ["sigmoid", "leaky_relu"],
        "optimizer": ["sgd", "adam"],
        "model.normalization": ["none", "layer_norm"],
    },
    records=2_700,
    validation_records=1_000,
    test_records=100,
)


def key(config: dict[str, Any]) -> str:
    """A configuration's name, the same whoever produced the values (JSON, Optuna, Ray)."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


@dataclass
class Truth:
    grid: dict[str, Any]
    seeds: list[int]
    # key -> per-seed validation accuracy at each rung: figures[key][rung][seed index]
    figures: dict[str, list[list[float]]]
    seconds: float
    steps: int  # optimizer steps the ground truth took
    ranked: list[str] = field(default_factory=list)  # keys, best first

    def mean(self, config_key: str) -> float:
        return statistics.fmean(self.figures[config_key][-1])

    def rank(self, config_key: str) -> int:
        return self.ranked.index(config_key) + 1

    def top(self, n: int) -> list[str]:
        return self.ranked[:n]


def code_digest(grid: Grid, seeds: tuple[int, ...]) -> str:
    digest = hashlib.sha256(json.dumps([asdict(grid), list(seeds)], sort_keys=True).encode())
    for name in CODE:
        path = REPO / name
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def ground_truth(grid: Grid, data_dir: Path, cache_dir: Path, threads: int = 1) -> Truth:
    """Every configuration on every ground seed, trained (or read from the cache)."""
    seeds = GROUND_SEEDS
    cache = cache_dir / f"sweep-truth-{code_digest(grid, seeds)}.json"
    if cache.exists():
        truth = Truth(**json.loads(cache.read_text()))
        return _ranked(truth)
    from worker.engine import run_training_group

    started = time.perf_counter()
    figures: dict[str, list[list[float]]] = {}
    configs = grid.configs()
    # One call per structure: the learning rates and seeds of a structure train fused.
    by_structure: dict[str, list[dict[str, Any]]] = {}
    for config in configs:
        shape = key({k: v for k, v in config.items() if k != "lr"})
        by_structure.setdefault(shape, []).append(config)
    steps = 0
    for n, members in enumerate(by_structure.values(), 1):
        specs = [grid.spec(c, s) for c in members for s in seeds]
        results = run_training_group(
            specs, data_dir=data_dir, allow_download=False, threads=threads
        )
        for i, config in enumerate(members):
            mine = results[i * len(seeds) : (i + 1) * len(seeds)]
            rungs = [[float(r.metrics["rungs"][k]["validation_accuracy"]) for r in mine]
                     for k in range(RUNGS)]  # fmt: skip
            figures[key(config)] = rungs
            steps += sum(r.steps for r in mine)
        best = max(statistics.fmean(figures[key(c)][-1]) for c in members)
        print(f"  truth {n}/{len(by_structure)}: best {best:.4f}", flush=True)
    truth = Truth(asdict(grid), list(seeds), figures, time.perf_counter() - started, steps)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(asdict(truth)))
    return _ranked(truth)


def _ranked(truth: Truth) -> Truth:
    truth.ranked = sorted(truth.figures, key=lambda k: (-truth.mean(k), k))
    return truth
