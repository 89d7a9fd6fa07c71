"""Property-based fuzzing of the whole API with schemathesis, against a real uvicorn.

`trainlab serve` runs on the embedded default (SQLite store, SQLite broker, no worker), with
API keys required and an admin key for the fuzzer, and schemathesis reads its /openapi.json,
so every endpoint the document lists is fuzzed, new ones included, with no edit here:
examples, boundary and negative values (the coverage phase), random requests, and stateful
sequences that follow the links between operations (submit, then read, cancel, ...). Every
check is on (schemathesis.toml beside this file lists the one narrowing and why): no 5xx,
every status and body as documented, schema-invalid input refused, schema-valid input
accepted, 405 with Allow for undocumented methods.

A second pass runs the stateful phase alone on a seed of its own (FUZZ_STATEFUL_SEED,
FUZZ_STATEFUL_EXAMPLES scenarios), so the linked sequences are drawn apart from the first
pass's and fail on their own.

`make test` runs bounded passes (FUZZ_MAX_EXAMPLES per operation, 10 scenarios, fixed seeds);
`make fuzz` deeper ones with random seeds. The figures (requests, failures) are printed
either way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.api.live_server import live_server

CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "12"))
SEED = os.environ.get("FUZZ_SEED", "0")  # "random": a new seed each run
MAX_TIME_S = int(os.environ.get("FUZZ_MAX_TIME_S", "0"))  # 0: until the examples are spent
# The stateful pass: scenarios (sequences of linked calls) to draw, and a seed apart from SEED.
STATEFUL_EXAMPLES = int(os.environ.get("FUZZ_STATEFUL_EXAMPLES", "10"))
STATEFUL_SEED = os.environ.get("FUZZ_STATEFUL_SEED", "1")

pytestmark = [pytest.mark.fuzz, pytest.mark.slow, pytest.mark.timeout(1800)]


def _schemathesis(
    url: str,
    report: Path,
    key: str,
    *,
    max_examples: int = MAX_EXAMPLES,
    seed: str = SEED,
    extra: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-c",
        "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(max_examples),
        "--workers",
        "1",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--generation-database",
        "none",
        "--header",
        f"Authorization: Bearer {key}",
        *extra,
    ]
    if seed != "random":
        command += ["--seed", seed]
    if MAX_TIME_S:
        command += ["--max-time", str(MAX_TIME_S)]
    return subprocess.run(command, capture_output=True, text=True, timeout=1700, check=False)


def _fuzz(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    label: str,
    **options: Any,
) -> dict[str, Any]:
    """One schemathesis run against a fresh server; asserts it found nothing and returns its
    report."""
    # Streams close after a second so a fuzzed GET .../events never waits out a queued run.
    # Keys are required, as a shared deployment runs, and the fuzzer sends an admin's (its
    # checks also send none, or a wrong one, and expect 401); its request rate and quotas are
    # not limited (tests/api/test_limits.py covers those).
    with live_server(
        tmp_path,
        max_stream_s="1",
        log_level="warning",
        auth="required",
        rate_limit_key="1000000/minute",
        quota_active_experiments="100000",
        quota_daily_cpu_hours="1000000",
        quota_ablation_cells="10000",
        max_event_streams="1000",
    ) as server:
        issued = server.cli("keys", "create", "--name", "fuzzer", "--role", "admin", "--json")
        key = json.loads(issued.stdout)["key"]
        report = tmp_path / "schemathesis.json"
        run = _schemathesis(server.base_url, report, key, **options)
        log = server.log_text()
    summary: dict[str, Any] = json.loads(report.read_text())
    cases = summary["test_cases"]
    operations = summary["operations"]
    with capsys.disabled():
        print(
            f"\nschemathesis ({label}): {operations['tested']}/{operations['total']} operations, "
            f"{cases['generated']} requests, {cases['unique_failures']} unique failures, "
            f"{cases['errored']} errored, {summary['running_time']:.0f} s, seed {summary['seed']}"
        )
    assert run.returncode == 0, run.stdout[-20_000:]
    assert cases["unique_failures"] == 0 and cases["errored"] == 0
    assert "Traceback" not in log, log[-10_000:]
    return summary


def test_schemathesis_finds_no_failure_on_any_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = _fuzz(tmp_path, capsys, "every phase")
    operations = summary["operations"]
    assert operations["tested"] == operations["total"] >= 20


def test_stateful_sequences_find_no_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The held-out pass: only the stateful phase, on a seed of its own, so its sequences
    (POST /experiments, then GET, cancel, delete it; an ablation, then its summary, curves,
    cancel, delete) are not the ones the first pass happened to draw. Links are inferred from
    the Location headers and the schemas (the API's answers name ids by `id`)."""
    summary = _fuzz(
        tmp_path,
        capsys,
        "stateful",
        max_examples=STATEFUL_EXAMPLES,
        seed=STATEFUL_SEED,
        extra=("--phases", "stateful"),
    )
    assert summary["phases"]["stateful"]["status"] == "success", summary["phases"]
    assert summary["test_cases"]["generated"] > 0
