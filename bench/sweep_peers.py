"""The peers' arms of the sweep study: Optuna's TPE with its SuccessiveHalving pruner, and Ray
Tune's ASHA scheduler, each on one seed, on the same grid, engine and rungs as trainlab's.

A trial trains one run of the engine (worker.engine.run_training, one thread, the data loaded
once per process) with the grid's rungs; at each rung the callback reports the validation
accuracy to the method and, when the method stops the trial, the run ends right there
(a stop asked for at a rung takes effect at that rung). Rungs are resources 1, 3, 9 (the
steps at 1/9, 1/3 and all of the budget), the ladder both pruners use with reduction
factor 3, as trainlab's `asha` option does. New trials start until the steps trained reach
the budget; the one running then finishes or is stopped by its pruner.

Overhead per trial = (the method's wall time - the engine's time inside its trials) / trials,
where the engine's time leaves out the time a trial's thread waits inside a report.
Ray Tune is imported here only (the `bench` extra); the packages never import it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.sweep_grid import Grid, key

# At a rung: (rung index, validation accuracy, step) -> True to stop the trial there.
Report = Callable[[int, float, int], bool]


def train_one(
    grid: Grid, config: dict[str, Any], seed: int, data_dir: Path, report: Report
) -> dict[str, Any]:
    """One run of `config` on `seed`; its steps, engine seconds and last rung reached."""
    from worker.engine import RunCallbacks, run_training

    state = {"stop": False, "waited": 0.0, "rung": -1}

    def on_rung(step: int, figures: dict[str, float]) -> None:
        waited = time.perf_counter()
        state["rung"] = int(state["rung"]) + 1
        state["stop"] = report(int(state["rung"]), float(figures["validation_accuracy"]), step)
        state["waited"] = float(state["waited"]) + time.perf_counter() - waited

    started = time.perf_counter()
    result = run_training(
        grid.spec(config, seed), data_dir=data_dir, allow_download=False, threads=1,
        callbacks=RunCallbacks(on_rung=on_rung, should_stop=lambda: bool(state["stop"])),
    )  # fmt: skip
    seconds = time.perf_counter() - started - float(state["waited"])
    return {"steps": result.steps, "engine_s": seconds, "rung": state["rung"]}


def optuna_arm(grid: Grid, data_dir: Path, rep: int, seed: int, budget: int) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=rep),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
    )
    # Optuna's categorical choices are scalars: a hidden-layer list goes as its JSON text.
    texts = {path: [json.dumps(v) for v in values] for path, values in grid.values.items()}
    steps, engine, trials = 0, 0.0, []
    started = time.perf_counter()
    while steps < budget:
        trial = study.ask()
        config = {p: json.loads(trial.suggest_categorical(p, t)) for p, t in texts.items()}
        seen = {"accuracy": 0.0, "cut": False}

        def report(
            rung: int, accuracy: float, step: int, trial: Any = trial, seen: Any = seen,
            before: int = steps,
        ) -> bool:  # fmt: skip
            trial.report(accuracy, 3**rung)
            seen["accuracy"] = accuracy
            if rung < 2 and before + step >= budget:
                seen["cut"] = True  # the budget is spent: stopped, not pruned
                return True
            return rung < 2 and bool(trial.should_prune())

        ran = train_one(grid, config, seed, data_dir, report)
        steps, engine = steps + ran["steps"], engine + ran["engine_s"]
        state = "complete" if ran["rung"] == 2 else "cut" if seen["cut"] else "pruned"
        if state == "complete":
            study.tell(trial, float(seen["accuracy"]))
        else:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        trials.append({"config": key(config), "state": state,
                       "pruned_at_rung": ran["rung"] if state == "pruned" else None})  # fmt: skip
    wall = time.perf_counter() - started
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(complete, key=lambda t: (t.value, -t.number)) if complete else None
    chosen = None
    if best is not None:
        chosen = key({p: json.loads(best.params[p]) for p in texts})
    return _result(chosen, steps, trials, wall, engine)


def ray_arm(grid: Grid, data_dir: Path, rep: int, seed: int, budget: int) -> dict[str, Any]:
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.stopper import Stopper

    if not ray.is_initialized():
        repo = str(Path(__file__).resolve().parent.parent)
        path = os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]).strip(os.pathsep)
        ray.init(
            num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False,
            runtime_env={"env_vars": {"PYTHONPATH": path}},
        )  # fmt: skip

    def trainable(config: dict[str, Any]) -> None:
        def report(rung: int, accuracy: float, step: int) -> bool:
            ran = time.perf_counter() - clock["start"] - clock["waited"]
            before = time.perf_counter()
            tune.report({"validation_accuracy": accuracy, "resource": 3**rung,
                         "steps": step, "engine_s": ran, "rung": rung})  # fmt: skip
            clock["waited"] += time.perf_counter() - before
            return False  # ASHA stops a trial by not resuming it after its report

        clock = {"start": time.perf_counter(), "waited": 0.0}
        train_one(grid, config, seed, data_dir, report)

    class Budget(Stopper):  # type: ignore[misc]
        """Every trial stops once the steps trained reach the budget (one trial runs at a
        time: the one running then is cut by the budget, not pruned)."""

        def __init__(self) -> None:
            self.steps: dict[str, int] = {}
            self.cut: str | None = None

        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            self.steps[trial_id] = int(result.get("steps", 0))
            if self.cut is None and self.stop_all() and int(result.get("rung", 2)) < 2:
                self.cut = trial_id
            return False

        def stop_all(self) -> bool:
            return sum(self.steps.values()) >= budget

    stopper = Budget()
    space = {path: tune.choice(list(values)) for path, values in grid.values.items()}
    scheduler = ASHAScheduler(
        time_attr="resource", metric="validation_accuracy", mode="max",
        max_t=9, grace_period=1, reduction_factor=3,
    )  # fmt: skip
    # As many trials as the budget can start (each trains to its first rung at least).
    most = budget // grid.spec(grid.configs()[0], seed).rung_steps[0] + 1
    storage = tempfile.mkdtemp(prefix="sweep-bench-ray-")
    started = time.perf_counter()
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space=space,
        tune_config=tune.TuneConfig(
            scheduler=scheduler, num_samples=most, max_concurrent_trials=1, reuse_actors=True,
            search_alg=tune.search.BasicVariantGenerator(random_state=rep),
        ),
        run_config=tune.RunConfig(
            storage_path=storage, name=f"rep{rep}", stop=stopper, verbose=0,
        ),
    )  # fmt: skip
    results = tuner.fit()
    wall = time.perf_counter() - started
    steps, engine, trials = 0, 0.0, []
    finals: dict[str, float] = {}
    for index in range(len(results)):
        result = results[index]
        frame = result.metrics_dataframe
        if frame is None or frame.empty:
            continue
        last = frame.iloc[-1]
        config = {p: (result.config or {})[p] for p in grid.values}
        rung = int(last["rung"])
        steps += int(last["steps"])
        engine += float(last["engine_s"])
        cut = (result.metrics or {}).get("trial_id") == stopper.cut
        state = "complete" if rung == 2 else "cut" if cut else "pruned"
        trials.append({"config": key(config), "state": state,
                       "pruned_at_rung": rung if state == "pruned" else None})  # fmt: skip
        if rung == 2:
            value = float(last["validation_accuracy"])
            finals[key(config)] = max(finals.get(key(config), 0.0), value)
    chosen = max(finals, key=lambda k: finals[k]) if finals else None
    return _result(chosen, steps, trials, wall, engine)


def _result(
    chosen: str | None, steps: int, trials: list[dict[str, Any]], wall: float, engine: float
) -> dict[str, Any]:
    return {
        "chosen": chosen,
        "steps": steps,
        "trials": trials,
        "wall_s": round(wall, 3),
        "engine_s": round(engine, 3),
        "overhead_per_trial_ms": round(1000 * (wall - engine) / max(len(trials), 1), 1),
    }
