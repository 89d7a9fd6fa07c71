"""`trainlab train` and `trainlab presets`: run the engine in this process, no server needed.

torch is imported inside the train handler only, so `trainlab --help`, `presets` and the
service commands start without the training stack.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import ValidationError

from cli.assignments import parse_assignments
from core import kinds
from core.presets import DESCRIPTIONS, PRESETS, UnknownPresetError, build_any_spec, build_spec
from core.settings import get_settings
from core.spec import ExperimentSpec

# --dry-run: enough to go through every stage of a run in a second or two.
DRY_RUN_OVERRIDES: dict[str, Any] = {"epochs": 1, "train_limit": 64, "test_limit": 64}
RECORD = 19  # the book's record: a handwritten 4
EXIT_INVALID = 2


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    train = commands.add_parser(
        "train",
        help="run one experiment in this process",
        description="Train one spec (a preset plus --set overrides) here and print its metrics.",
    )
    # `train` runs classifiers in this process; the GANs run through the service.
    classifiers = [name for name in PRESETS if kinds.kind_name(PRESETS[name]) == "classifier"]
    train.add_argument("--preset", choices=classifiers, help="start from this preset")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec field, dotted for nested ones (model.hidden=[100,50]); "
        "VALUE is read as JSON when it parses, else as a string",
    )
    train.add_argument("--json", action="store_true", help="print one JSON object, last line")
    train.add_argument("--device", choices=["auto", "cpu", "cuda"], help="overrides the spec")
    train.add_argument("--threads", type=int, help="torch intra-op threads")
    train.add_argument("--data-dir", type=Path, help="default: TRAINLAB_DATA_DIR")
    train.add_argument(
        "--dry-run", action="store_true", help="1 epoch on 64 train and 64 test records"
    )
    train.add_argument(
        "--seeds",
        type=int,
        metavar="N",
        help="train N seeds of the spec (its seed and the N - 1 after it: 0..N-1 by default) "
        "fused in this process (on the CPU in groups of what its cache holds); prints the "
        "whole training's train_seconds and each seed's metrics",
    )
    train.set_defaults(handler=train_command)

    presets = commands.add_parser("presets", help="list the presets and their specs")
    presets.add_argument("--json", action="store_true", help="print them as one JSON object")
    presets.set_defaults(handler=presets_command)


def spec_errors(exc: ValidationError) -> list[str]:
    """One line per problem: the field's dotted path and pydantic's reason."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "spec"
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return lines


def _fail(lines: list[str]) -> int:
    for line in lines:
        print(f"trainlab: error: {line}", file=sys.stderr)
    return EXIT_INVALID


def resolve_spec(args: argparse.Namespace) -> ExperimentSpec:
    overrides = parse_assignments(args.overrides)
    if args.dry_run:
        overrides.update(DRY_RUN_OVERRIDES)
    return build_spec(args.preset, overrides)


def train_command(args: argparse.Namespace) -> int:
    try:
        spec = resolve_spec(args)
    except ValidationError as exc:
        return _fail(spec_errors(exc))
    except (UnknownPresetError, ValueError) as exc:  # AssignmentError, a bad override path
        return _fail([str(exc)])
    if args.threads is not None and args.threads < 1:
        return _fail(["--threads must be at least 1"])
    if args.seeds is not None and args.seeds < 1:
        return _fail(["--seeds must be at least 1"])
    specs = [spec]
    if args.seeds is not None:
        specs = [spec.model_copy(update={"seed": spec.seed + k}) for k in range(args.seeds)]
        try:  # the last seed must be in range too
            specs = [ExperimentSpec.model_validate(s.model_dump()) for s in specs]
        except ValidationError as exc:
            return _fail(spec_errors(exc))

    from worker.engine import DatasetUnavailableError, RunCallbacks, run_training_group
    from worker.engine.model import DeviceUnavailableError

    settings = get_settings()
    progress = _progress_bar(spec, enabled=sys.stderr.isatty())
    stop = _StopOnInterrupt()
    # The runs of a group step together: the first one's progress is the group's.
    callbacks = [RunCallbacks(on_progress=progress.update, should_stop=stop.requested)] + [
        RunCallbacks(should_stop=stop.requested) for _ in specs[1:]
    ]
    try:
        with stop:
            results = run_training_group(
                specs,
                data_dir=args.data_dir or settings.data_dir,
                allow_download=settings.allow_download,
                callbacks=callbacks,
                device=args.device,
                threads=args.threads if args.threads is not None else settings.torch_threads,
            )
    except (DatasetUnavailableError, DeviceUnavailableError) as exc:
        progress.close()
        print(f"trainlab: error: {exc}", file=sys.stderr)
        return 1
    progress.close()
    summaries = [_summary(args.preset, s, r) for s, r in zip(specs, results, strict=True)]
    if args.seeds is None:
        if args.json:
            print(json.dumps(summaries[0], separators=(",", ":")))
        else:
            _print_human(summaries[0])
        return 0
    # Each group's runs share its training time; groups train one after another.
    seconds = sum(
        max(r.metrics["train_seconds"] for r in results[k : k + size])
        for k, size in _offsets(_group_sizes([r.fingerprint["fused_runs"] for r in results]))
    )
    group = {
        "preset": args.preset,
        "seeds": [s.seed for s in specs],
        # Groups trained one after another: on the CPU as many runs as its cache holds.
        "fused_groups": _group_sizes([r.fingerprint["fused_runs"] for r in results]),
        "train_seconds": round(seconds, 3),  # the whole group's training
        "runs_per_second": round(len(specs) / seconds, 4) if seconds > 0 else None,
        "device": results[0].device,
        "runs": summaries,
    }
    if args.json:
        print(json.dumps(group, separators=(",", ":")))
    else:
        for summary in summaries:
            print(f"seed {summary['seed']}")
            _print_human(summary)
        print(
            f"{len(specs)} seeds trained fused in {seconds:.1f} s "
            f"({group['runs_per_second']} runs/s)"
        )
    return 0


def _offsets(sizes: list[int]) -> list[tuple[int, int]]:
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return list(zip(starts, sizes, strict=True))


def _group_sizes(fused_runs: list[int]) -> list[int]:
    """[4, 4, 4, 4, 4, 4, 4, 4] (each run's group size, runs in group order) -> [4, 4]."""
    sizes, k = [], 0
    while k < len(fused_runs):
        sizes.append(fused_runs[k])
        k += fused_runs[k]
    return sizes


def _summary(preset: str | None, spec: ExperimentSpec, result: Any) -> dict[str, Any]:
    metrics = result.metrics
    summary: dict[str, Any] = {
        "preset": preset,
        "seed": spec.seed,
        "status": result.status,
        "steps": result.steps,
        "total_steps": result.total_steps,
        "train_seconds": round(metrics["train_seconds"], 3),
        "steps_per_second": round(metrics["steps_per_second"], 1),
        # None where the spec skipped the test set (evaluate_test=false).
        "test_accuracy": metrics.get("test_accuracy"),
        "test_loss": metrics.get("test_loss"),
        "validation_accuracy": metrics.get("validation_accuracy"),
        "final_loss": metrics["final_loss"],
        "loss_points": metrics["loss_points"],
        "device": result.device,
        "spec": spec.model_dump(mode="json"),
        "fingerprint": result.fingerprint,
    }
    if len(result.predictions.outputs) > RECORD:
        summary["record_19"] = [float(v) for v in result.predictions.outputs[RECORD]]
        summary["record_19_label"] = int(result.predictions.labels[RECORD])
    return summary


def _print_human(summary: dict[str, Any]) -> None:
    print(f"{summary['preset'] or 'spec'}: {summary['status']} after {summary['steps']:,} steps")
    print(f"  train  {summary['train_seconds']:.1f} s ({summary['steps_per_second']:,.0f} steps/s)")
    if summary["final_loss"] is not None:
        print(f"  loss   {summary['final_loss']:.4f} (mean of the last 100 logged points)")
    if summary["test_accuracy"] is not None:
        print(f"  test   accuracy {summary['test_accuracy']:.4f}, loss {summary['test_loss']:.4f}")
    if summary["validation_accuracy"] is not None:
        print(f"  validation accuracy {summary['validation_accuracy']:.4f}")
    if "record_19" in summary:
        values = " ".join(f"{v:.3f}" for v in summary["record_19"])
        print(f"  record 19 (true label {summary['record_19_label']}): {values}")


class _Progress:
    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def update(self, step: int, total: int) -> None:
        if self.bar is not None:
            self.bar.n = step
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _progress_bar(spec: ExperimentSpec, *, enabled: bool) -> _Progress:
    if not enabled:
        return _Progress(None)
    from tqdm import tqdm

    return _Progress(tqdm(total=spec.total_steps, unit="step", dynamic_ncols=True))


class _StopOnInterrupt:
    """The first Ctrl-C ends the run cleanly (metrics on the model so far); a second one kills."""

    def __init__(self) -> None:
        self.asked = False
        self.previous: Any = None

    def requested(self) -> bool:
        return self.asked

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True
        print("\nstopping within a second (Ctrl-C again to abort)", file=sys.stderr)

    def __enter__(self) -> _StopOnInterrupt:
        # Signal handlers can only be set from the main thread (tests may call from another).
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def presets_command(args: argparse.Namespace) -> int:
    listing = {
        name: {
            "description": DESCRIPTIONS[name],
            "spec": build_any_spec(name).model_dump(mode="json"),
        }
        for name in PRESETS
    }
    if args.json:
        print(json.dumps(listing, separators=(",", ":")))
        return 0
    for name, entry in listing.items():
        print(f"{name}\n  {entry['description']}")
        print(f"  {json.dumps(entry['spec'], separators=(',', ':'))}")
    return 0
