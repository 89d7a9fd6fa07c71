"""`trainlab submit` and `trainlab ablate`: talk to a running server over HTTP.

Nothing here imports torch or the store; the server does the work. `submit --wait` follows the
experiment's event stream (GET /experiments/{id}/events, without its loss points) and draws a
tqdm bar; when the stream can't be had (refused, cut, a proxy that buffers it) it polls the
server once a second instead, and tries the stream again after STREAM_RETRY_S. `ablate --wait`
polls once a second.
Exit codes: 0 succeeded, 1 a run failed or was cancelled, 2 the server refused the request,
3 the server could not be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
from tqdm import tqdm

from cli.assignments import AssignmentError, parse_assignments, parse_factors
from cli.report import experiment_summary, summary_table
from core.settings import Settings, get_settings

TERMINAL = {"succeeded", "failed", "cancelled"}
POLL_S = 1.0
STREAM_RETRY_S = 30.0
# Resume after any step there can be: the stream then sends status and progress, no points.
NO_POINTS = str(2**31 - 1)
# The server sends a keep-alive every 15 s: a stream silent for much longer is dead.
STREAM_READ_TIMEOUT_S = 45.0


class RefusedError(Exception):
    """The server answered with an error status; the message is its `detail`."""


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
    if args.name:
        body["name"] = args.name
    return body


def _call(client: httpx.Client, method: str, url: str, **kwargs: Any) -> Any:
    response = client.request(method, url, **kwargs)
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise RefusedError(f"{response.status_code}: {detail}")
    return response.json()


def _wait(
    fetch: Callable[[], dict[str, Any]],
    progress: Callable[[dict[str, Any]], tuple[int, int]],
    finished: Callable[[dict[str, Any]], bool],
    label: str,
) -> dict[str, Any]:
    state = fetch()
    done, total = progress(state)
    with tqdm(total=max(total, 1), desc=label, unit="step", file=sys.stderr) as bar:
        while True:
            done, total = progress(state)
            bar.total = max(total, 1)
            bar.n = min(done, bar.total)
            bar.set_postfix_str(str(state.get("status", "")))
            bar.refresh()
            if finished(state):
                return state
            time.sleep(POLL_S)
            state = fetch()


def _show(bar: Any, step: int, total: int, status: str) -> None:
    bar.total = max(total, 1)
    bar.n = min(step, bar.total)
    bar.set_postfix_str(status)
    bar.refresh()


def _follow_stream(client: httpx.Client, experiment_id: str, bar: Any) -> bool | None:
    """Read the experiment's event stream, moving `bar`: True when it sent `end`, False when
    the server closed it before (TRAINLAB_MAX_STREAM_S: reconnect), None when it could not be
    read (refused or cut: poll instead)."""
    status = ""
    try:
        with client.stream(
            "GET",
            f"/experiments/{experiment_id}/events",
            headers={"Accept": "text/event-stream", "Last-Event-ID": NO_POINTS},
            timeout=httpx.Timeout(30.0, read=STREAM_READ_TIMEOUT_S),
        ) as response:
            if response.status_code != 200:
                return None
            kind = ""
            for line in response.iter_lines():
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:") and kind:
                    data = json.loads(line[5:])
                    if kind in ("status", "end"):
                        status = str(data.get("status", ""))
                        bar.set_postfix_str(status)
                        bar.refresh()
                    elif kind == "progress":
                        _show(bar, int(data["step"]), int(data["total_steps"]), status)
                    if kind == "end":
                        return True
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    return False


def _wait_experiment(client: httpx.Client, experiment_id: str) -> dict[str, Any]:
    """The experiment once it has ended: noticed over its event stream, else by polling."""

    def fetch() -> dict[str, Any]:
        found: dict[str, Any] = _call(client, "GET", f"/experiments/{experiment_id}")
        return found

    def show(experiment: dict[str, Any]) -> None:
        progress = experiment["progress"]
        _show(bar, int(progress["step"]), int(progress["total"]), str(experiment["status"]))

    state = fetch()
    stream_after = 0.0
    with tqdm(total=1, desc=experiment_id[:8], unit="step", file=sys.stderr) as bar:
        show(state)
        while state["status"] not in TERMINAL:
            if time.monotonic() >= stream_after:
                followed = _follow_stream(client, experiment_id, bar)
                if followed is None:  # no stream to be had: poll for a while
                    stream_after = time.monotonic() + STREAM_RETRY_S
                    time.sleep(POLL_S)
            else:
                time.sleep(POLL_S)
            state = fetch()
            show(state)
    return state


def _client(args: argparse.Namespace) -> httpx.Client:
    """A client for the server, sending the API key when there is one (--api-key, else
    TRAINLAB_API_KEY)."""
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    return httpx.Client(base_url=args.server, timeout=30.0, headers=headers)


def submit_command(args: argparse.Namespace) -> int:
    with _client(args) as client:
        experiment = _call(client, "POST", "/experiments", json=submit_body(args))
        print(f"submitted {experiment['id']} ({experiment['status']})")
        if not args.wait:
            return 0
        final = _wait_experiment(client, experiment["id"])
    print(experiment_summary(final))
    return 0 if final["status"] == "succeeded" else 1


def ablate_command(args: argparse.Namespace) -> int:
    with _client(args) as client:
        ablation = _call(client, "POST", "/ablations", json=ablate_body(args))
        cells = len(ablation["members"])
        print(f"ablation {ablation['id']}: {len(ablation['arms'])} arms, {cells} experiments")
        if not args.wait:
            return 0
        final = _wait(
            lambda: _call(client, "GET", f"/ablations/{ablation['id']}"),
            lambda a: (a["progress"]["step"], a["progress"]["total"]),
            lambda a: a["progress"]["finished"] == a["progress"]["experiments"],
            "ablation",
        )
        params: dict[str, Any] = {"compare": args.compare}
        if args.compare == "reference":
            params["reference"] = args.reference
        summary = _call(client, "GET", f"/ablations/{ablation['id']}/summary", params=params)
    print(summary_table(summary))
    counts = final["status_counts"]
    return 0 if counts.get("succeeded", 0) == final["progress"]["experiments"] else 1


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (RefusedError, AssignmentError) as exc:
            print(f"trainlab: {exc}", file=sys.stderr)
            return 2
        except httpx.HTTPError as exc:
            print(f"trainlab: cannot reach {args.server}: {exc}", file=sys.stderr)
            return 3

    return run


def register(commands: Any) -> None:
    server_help = "Server URL (default: from TRAINLAB_HOST/TRAINLAB_PORT)."
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
    ablate.add_argument("--design", choices=["grid", "book"], default="grid")
    ablate.add_argument("--base", help="Base preset of a grid.")
    ablate.add_argument(
        "--factor", action="append", default=[], metavar="KEY=V1,V2", help="A factor to vary."
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
        settings = get_settings()
        args.server = (args.server or default_server(settings)).rstrip("/")
        args.api_key = args.api_key or settings.api_key or None
        return command(args)

    return run
