"""`trainlab submit` and `trainlab ablate`: talk to a running server through trainlab.Client
(the Python client; this module has no HTTP of its own).

Nothing here imports torch or the store; the server does the work. `submit --wait` follows the
experiment's event stream without its loss points and draws a tqdm bar; when the stream can't
be had the client polls once a second instead (trainlab.Client.experiments.wait). `ablate
--wait` polls once a second.
Exit codes: 0 succeeded, 1 a run failed or was cancelled, 2 the server refused the request,
3 the server could not be reached.

These commands also run from the client alone (`pip install trainlab`): without the server's
settings they find the server as trainlab.Client does (TRAINLAB_URL, TRAINLAB_API_KEY), and
without tqdm they wait without a bar.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, get_args

from cli import missing_extra
from cli.assignments import AssignmentError, parse_assignments, parse_factors, parse_variants
from cli.report import experiment_summary, summary_table
from core.submissions import SummaryMetric
from trainlab import ApiError, Client, ConnectionFailed
from trainlab._config import ClientConfig

if TYPE_CHECKING:
    from core.settings import Settings


def default_server(settings: Settings) -> str:
    """Where `trainlab serve` with these settings listens, as a client reaches it."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def submit_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"overrides": parse_assignments(args.set, "--set")}
    if args.preset:
        body["preset"] = args.preset
    if args.name:
        body["name"] = args.name
    if args.tag:
        body["tags"] = list(args.tag)
    return body


def ablate_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {
        "design": args.design,
        "overrides": parse_assignments(args.set, "--set"),
        "seeds": args.seeds,
    }
    if args.base:
        body["preset"] = args.base
    if args.factor:
        body["factors"] = parse_factors(args.factor)
    if args.variant:
        body["variants"] = parse_variants(args.variant)
    if args.name:
        body["name"] = args.name
    if args.metric:
        body["metric"] = args.metric
    return body


# A bar for a run that has already ended (a reused run, an idempotent replay) shows no rate:
# its steps were not taken now, and tqdm would divide them by the bar's few milliseconds.
_ENDED_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{postfix}"


def _bar(
    label: str, step: int, total: int, *, ended: bool
) -> tuple[Any, Callable[[int, int, str], None]]:
    """A progress bar that starts at the run's own step and total (never a placeholder 0/1);
    none where tqdm is not installed (the client alone), the result is printed all the same."""
    try:
        from tqdm import tqdm
    except ModuleNotFoundError:
        return contextlib.nullcontext(), lambda step, total, status: None
    total = max(total, step, 1)
    bar = tqdm(
        total=total,
        initial=min(step, total),
        desc=label,
        unit="step",
        file=sys.stderr,
        bar_format=_ENDED_FORMAT if ended else None,
    )

    def show(step: int, total: int, status: str) -> None:
        bar.total = max(total, 1)
        bar.n = min(step, bar.total)
        bar.set_postfix_str(status)
        bar.refresh()

    return bar, show


def _client(args: argparse.Namespace) -> Client:
    """A client for the server, sending the API key when there is one (--api-key, else
    TRAINLAB_API_KEY)."""
    return Client(base_url=args.server, api_key=args.api_key or "", timeout=30.0)


def submit_command(args: argparse.Namespace) -> int:
    body = submit_body(args)
    with _client(args) as client:
        experiment = client.experiments.create(
            preset=body.get("preset"),
            overrides=body["overrides"],
            name=body.get("name"),
            tags=body.get("tags"),
        )
        print(f"submitted {experiment.id} ({experiment.status})")
        if not args.wait:
            return 0
        progress = experiment.progress
        bar, show = _bar(
            experiment.id[:8], progress.step, progress.total, ended=experiment.finished
        )
        with bar:
            final = client.experiments.wait(experiment.id, on_progress=show)
    print(experiment_summary(final.model_dump(mode="json")))
    return 0 if final.status == "succeeded" else 1


def ablate_command(args: argparse.Namespace) -> int:
    body = ablate_body(args)
    with _client(args) as client:
        ablation = client.ablations.create(**body)
        cells = len(ablation.members)
        print(f"ablation {ablation.id}: {len(ablation.arms)} arms, {cells} experiments")
        if not args.wait:
            return 0
        step, total = ablation.progress.get("step", 0), ablation.progress.get("total", 0)
        bar, show = _bar("ablation", int(step), int(total), ended=ablation.finished)
        with bar:
            final = client.ablations.wait(ablation.id, on_progress=show)
        reference = args.reference if args.compare == "reference" else None
        summary = client.ablations.summary(ablation.id, compare=args.compare, reference=reference)
    print(summary_table(summary.model_dump(mode="json")))
    succeeded = final.status_counts.get("succeeded", 0)
    return 0 if succeeded == final.progress["experiments"] else 1


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (ApiError, AssignmentError) as exc:
            print(f"trainlab: {exc}", file=sys.stderr)
            return 2
        except ConnectionFailed as exc:
            print(f"trainlab: {exc}", file=sys.stderr)
            return 3

    return run


def register(commands: Any) -> None:
    server_help = (
        "Server URL (default: from TRAINLAB_HOST/TRAINLAB_PORT; "
        "with the client alone, TRAINLAB_URL)."
    )
    key_help = "API key, for a server that requires one (default: TRAINLAB_API_KEY)."
    submit = commands.add_parser("submit", help="Submit one experiment to a server.")
    submit.add_argument("--preset", help="Preset to start from (see `trainlab presets`).")
    submit.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    submit.add_argument("--name")
    submit.add_argument("--tag", action="append", default=[])
    submit.add_argument("--wait", action="store_true", help="Show progress, then the result.")
    submit.add_argument("--server", default=None, help=server_help)
    submit.add_argument("--api-key", default=None, help=key_help)
    submit.set_defaults(handler=_with_server(_guarded(submit_command)))

    ablate = commands.add_parser("ablate", help="Run an ablation on a server.")
    ablate.add_argument("--design", choices=["grid", "variants", "book"], default="grid")
    ablate.add_argument("--base", help="Base preset of a grid or of variants.")
    ablate.add_argument(
        "--metric",
        choices=list(get_args(SummaryMetric)),
        help="The figure the summary compares (default: test_accuracy for a classifier, "
        "entropy_bits for a GAN).",
    )
    ablate.add_argument(
        "--factor", action="append", default=[], metavar="KEY=V1,V2", help="A factor to vary."
    )
    ablate.add_argument(
        "--variant",
        action="append",
        nargs="+",
        default=[],
        metavar="[LABEL] KEY=VALUE",
        help="design=variants: one arm, the base with these changes (repeat per arm).",
    )
    ablate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ablate.add_argument("--seeds", type=int, default=3, help="Seeds per arm (0..N-1).")
    ablate.add_argument(
        "--compare",
        choices=["reference", "successive"],
        default="reference",
        help="Summary comparisons: every arm vs --reference, or arm k vs arm k-1.",
    )
    ablate.add_argument("--reference", type=int, default=0, help="Reference arm of the summary.")
    ablate.add_argument("--name")
    ablate.add_argument("--wait", action="store_true", help="Show progress, then the summary.")
    ablate.add_argument("--server", default=None, help=server_help)
    ablate.add_argument("--api-key", default=None, help=key_help)
    ablate.set_defaults(handler=_with_server(_guarded(ablate_command)))


def _with_server(
    command: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            from core.settings import get_settings
        except ModuleNotFoundError as exc:  # the client alone: no server settings to read
            if missing_extra(exc, "server") is None:
                raise
            config = ClientConfig.resolve(args.server, args.api_key)
            args.server, args.api_key = config.base_url, config.api_key
            return command(args)
        settings = get_settings()
        args.server = (args.server or default_server(settings)).rstrip("/")
        args.api_key = args.api_key or settings.api_key or None
        return command(args)

    return run
