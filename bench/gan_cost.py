"""The GAN cost model's time per step against the engine's, and the rate that fits it.

core/kinds/gan.py prices a GAN step as `step_parameters(spec)` (about 3 x D's parameters +
2 x G's, and an overhead per layer) at STEP_PARAMETERS_PER_CPU_SECOND. For each spec below
(the book's four GANs and variants of width, depth and optimizer) the engine trains --records
records on one CPU thread, timed by this process's CPU time (the shared machine's other jobs
inflate it far less than the wall clock); a warm-up run first. The rate printed is the one
that puts the worst over- and under-estimate at the same factor (the geometric middle of the
specs' own rates), with each spec's ratio estimate/measured at that rate and at today's.

Usage:
    python bench/gan_cost.py [--data-dir ../shared/data] [--records 400] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
import types
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.kinds import gan as gan_cost  # noqa: E402
from core.kinds.gan_spec import GanSpec  # noqa: E402
from core.presets import build_any_spec  # noqa: E402

SPECS: list[tuple[str, str, dict[str, Any]]] = [
    ("gan-mnist", "gan-mnist", {}),
    ("gan-first-attempt", "gan-first-attempt", {}),
    ("gan-mnist-rand1", "gan-mnist-rand1", {}),
    ("cgan-mnist", "cgan-mnist", {}),
    ("gan-mnist sgd", "gan-mnist", {"discriminator.optimizer": "sgd",
                                    "generator.optimizer": "sgd"}),
    ("gan-mnist width 50", "gan-mnist", {"discriminator.widths": [784, 50, 1],
                                         "generator.widths": [100, 50, 784]}),
    ("gan-mnist width 800", "gan-mnist", {"discriminator.widths": [784, 800, 1],
                                          "generator.widths": [100, 800, 784]}),
    ("gan-mnist depth 2", "gan-mnist", {"discriminator.widths": [784, 400, 100, 1],
                                        "generator.widths": [100, 100, 400, 784]}),
]  # fmt: skip


def timed(spec: GanSpec, data_dir: Path) -> float:
    """CPU seconds per step of the engine's training loop."""
    import worker.gan.runner as runner

    clock = types.SimpleNamespace(perf_counter=time.process_time)
    setattr(runner, "time", clock)  # noqa: B010
    try:
        result = runner.run_gan(
            spec, data_dir=data_dir, allow_download=False, device="cpu", threads=1,
            flush_interval_s=3600.0,
        )  # fmt: skip
    finally:
        setattr(runner, "time", time)  # noqa: B010
    return float(result.metrics["train_seconds"]) / result.steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--records", type=int, default=400)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    rows: list[dict[str, Any]] = []
    for name, preset, overrides in SPECS:
        spec = build_any_spec(
            preset,
            {**overrides, "train_limit": args.records, "epochs": 1,
             "sample_every": args.records, "samples": 1},
        )  # fmt: skip
        assert isinstance(spec, GanSpec)
        timed(spec, args.data_dir)
        seconds = statistics.median(timed(spec, args.data_dir) for _ in range(args.repeats))
        work = gan_cost.step_parameters(spec)
        rows.append({"spec": name, "measured_ms": seconds * 1e3, "rate": work / seconds})
        print(f"  {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    rates = [float(r["rate"]) for r in rows]
    fitted = math.sqrt(min(rates) * max(rates))
    today = gan_cost.STEP_PARAMETERS_PER_CPU_SECOND
    print(f"{'spec':<22}{'meas ms':>9}{'est/meas':>10}{'today':>8}")
    for r in rows:
        print(f"{r['spec']:<22}{r['measured_ms']:>9.3f}{fitted / r['rate']:>10.2f}"
              f"{today / r['rate']:>8.2f}")  # fmt: skip
    worst = math.sqrt(max(rates) / min(rates))
    print(f"fitted rate {fitted:.3g} step-parameters/s (worst ratio {worst:.2f}x either way)")
    print(json.dumps({"bench": "gan_cost", "load_average": os.getloadavg(),
                      "fitted_rate": fitted, "worst_ratio": worst, "results": rows}))  # fmt: skip


if __name__ == "__main__":
    main()
