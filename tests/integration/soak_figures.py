"""The soak's figures, as one block of text: the runs, the requests by kind (count, p50 and
p95 latency, answers), and each process's figures in the two quiet windows with its peak
under load in between."""

from __future__ import annotations

from collections import Counter

from tests.integration.soak import CLIENTS, Mix
from tests.integration.soak_probe import Sampler
from tests.integration.soak_rules import Growth, percentile


def figures(
    mix: Mix,
    sampler: Sampler,
    growths: list[Growth],
    took: dict[str, float],
    warnings: int,
    trouble: list[str],
) -> str:
    """`took`: seconds by phase (start, warm-up, drain, measured, final drain, final check,
    all)."""
    lines = [
        f"SOAK {took['warm-up'] + took['measured']:.0f} s: warm-up {took['warm-up']:.0f} s, "
        f"then {took['measured']:.0f} s measured; 2 API processes, 2 workers, {CLIENTS} clients",
        "phases: " + ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in took.items()),
        _runs(mix),
        *_requests(mix, took["warm-up"] + took["measured"]),
        "figures: after the warm-up -> at the end (quiet windows), peak under load",
        *_growths(sampler, growths),
        f"logs: {len(trouble)} errors or tracebacks, {warnings} warnings",
    ]
    return "\n".join(lines)


def _runs(mix: Mix) -> str:
    runs = mix.ledger.runs_where(lambda r: True)
    ended = Counter(r.status for r in runs if r.finished)
    counts = mix.ledger.counts
    shown = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()) if what != "submitted")
    return (
        f"runs: {counts['submitted']} submitted, ended "
        + ", ".join(f"{n} {status}" for status, n in sorted(ended.items()))
        + f", {sum(not r.finished for r in runs)} deleted unfinished; {shown}"
    )


def _requests(mix: Mix, seconds: float) -> list[str]:
    stats = mix.stats
    total = sum(stats.answers.values())
    lines = [
        f"requests: {total} in {seconds:.0f} s ({total / seconds:.1f}/s), "
        f"{len(stats.failures)} wrong",
        f"  {'kind':<20}{'count':>8}{'p50 ms':>9}{'p95 ms':>9}  answers",
    ]
    for kind in sorted(stats.latencies):
        latencies = stats.latencies[kind]
        answers = ", ".join(
            f"{status}: {n}" for (k, status), n in sorted(stats.answers.items()) if k == kind
        )
        lines.append(
            f"  {kind:<20}{len(latencies):>8}{percentile(latencies, 0.5):>9.1f}"
            f"{percentile(latencies, 0.95):>9.1f}  {answers}"
        )
    return lines


def _growths(sampler: Sampler, growths: list[Growth]) -> list[str]:
    lines = []
    for found in growths:
        peak = max(value for _, value in sampler.get(found.name))
        change = (found.end - found.start) / found.start * 100 if found.start else 0.0
        verdict = "ok" if found.ok else "GREW"
        lines.append(
            f"  {found.name:<26}{found.start:>9.1f} -> {found.end:>7.1f} ({change:+5.1f} %, "
            f"allowed {found.allowed:.1f})  peak {peak:>7.1f}  {verdict}"
        )
    return lines
