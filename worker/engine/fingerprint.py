"""What a run's numbers depend on besides the spec: library, hardware, threads, determinism
settings and the exact data. Two runs with equal fingerprints give bit-identical series on the
CPU; a difference here explains a difference in results."""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from core.spec import ExperimentSpec

# Bumped when a change to the engine changes the numbers a spec produces.
ENGINE_VERSION = 2


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    return _cpu_model()


@lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def build_fingerprint(
    spec: ExperimentSpec,
    device: torch.device,
    *,
    dataset_checksum: str,
    engine_path: str,
    flush_denormal: bool,
    fused_runs: int = 1,
    sparse_input: bool = False,
    cuda_graphs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    cuda = device.type == "cuda"
    return {
        "engine_version": ENGINE_VERSION,
        "engine_path": engine_path,
        "torch": str(torch.__version__),
        "cuda": torch.version.cuda if cuda else None,
        "device": str(device),
        "device_name": device_name(device),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cuda_matmul_tf32": bool(torch.backends.cuda.matmul.allow_tf32) if cuda else None,
        "flush_denormal": flush_denormal,
        # Runs trained together in one batched step. On the CPU a run's series does not depend
        # on it (bit for bit); on CUDA batched kernels may round differently.
        "fused_runs": fused_runs,
        "sparse_input": sparse_input,  # first layer on the non-zero pixels only (plain SGD, CPU)
        "cuda_graphs": cuda_graphs or {"used": False, "reason": "not requested"},
        "dataset": spec.dataset,
        "dataset_checksum": dataset_checksum,
        "spec_hash": spec.fingerprint(),
    }
