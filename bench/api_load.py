"""Load generators for bench/api_bench.py, each run as a process of its own under
`taskset -c <client cpus>` so that the clients' own CPU time never comes out of the core the
API and the worker are pinned to. Prints one JSON object on stdout.

    python bench/api_load.py poll --base-url URL --experiment ID [--clients 20] [--rate 5]
    python bench/api_load.py post --base-url URL --body JSON [--count 200] [--clients 20]

`poll`: each client alternates GET /experiments/{id} and GET /experiments/{id}/loss?since_step=
<last step it has>, `rate` requests a second on a fixed schedule (a late request does not
shift the next ones), sending If-None-Match with the URL's last ETag when the server gives
one, until a status poll sees the run finished.
`post`: `count` POST /experiments split across `clients` threads, as fast as each can; the
ids of the runs made come back so the caller can cancel them.

Only httpx and the standard library: this starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import threading
import time
from typing import Any

import httpx

TERMINAL = {"succeeded", "failed", "cancelled"}


def _poller(base_url: str, experiment_id: str, rate: float, done: threading.Event) -> list[Any]:
    """One client's loop; returns [requests, errors, not_modified, latencies_ms]."""
    interval = 1.0 / rate
    cursor = 0
    tags: dict[str, str] = {}
    requests = errors = not_modified = 0
    latencies: list[float] = []
    # A random phase, so that 20 clients don't all fire in the same millisecond.
    next_at = time.monotonic() + random.uniform(0, interval)
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        while not done.is_set():
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            status_turn = requests % 2 == 0
            url = f"/experiments/{experiment_id}"
            params = {} if status_turn else {"since_step": cursor}
            key = url if status_turn else "loss"
            if not status_turn:
                url += "/loss"
            headers = {"If-None-Match": tags[key]} if key in tags else {}
            sent = time.perf_counter()
            try:
                response = client.get(url, params=params, headers=headers)
            except httpx.HTTPError:
                errors += 1
                continue
            finally:
                requests += 1
            latencies.append((time.perf_counter() - sent) * 1000)
            if response.status_code == 304:
                not_modified += 1
                continue
            if response.status_code != 200:
                errors += 1
                continue
            if "etag" in response.headers:
                tags[key] = response.headers["etag"]
            body = response.json()
            if status_turn and body["status"] in TERMINAL:
                done.set()
            elif not status_turn and body["steps"]:
                cursor = body["steps"][-1]
                tags.pop(key, None)  # a new cursor is a new URL: its old tag means nothing
    return [requests, errors, not_modified, latencies]


def poll(args: argparse.Namespace) -> dict[str, Any]:
    done = threading.Event()
    results: list[list[Any]] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(_poller(args.base_url, args.experiment, args.rate, done))
        )
        for _ in range(args.clients)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    latencies = [ms for result in results for ms in result[3]]
    requests = sum(result[0] for result in results)
    return {
        "requests": requests,
        "errors": sum(result[1] for result in results),
        "not_modified": sum(result[2] for result in results),
        "seconds": round(seconds, 2),
        "requests_per_s": round(requests / seconds, 1) if seconds else 0.0,
        "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
    }


def post(args: argparse.Namespace) -> dict[str, Any]:
    body = json.loads(args.body)
    latencies: list[float] = []
    ids: list[str] = []
    failures: dict[str, int] = {}
    lock = threading.Lock()
    counter = iter(range(args.count))

    def client_loop() -> None:
        with httpx.Client(base_url=args.base_url, timeout=60.0) as client:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                sent = time.perf_counter()
                response = client.post("/experiments", json=body)
                elapsed = (time.perf_counter() - sent) * 1000
                with lock:
                    latencies.append(elapsed)
                    if response.status_code == 201:
                        ids.append(response.json()["id"])
                    else:
                        code = str(response.status_code)
                        failures[code] = failures.get(code, 0) + 1

    threads = [threading.Thread(target=client_loop) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"latencies_ms": latencies, "ids": ids, "failures": failures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    polling = sub.add_parser("poll")
    polling.add_argument("--base-url", required=True)
    polling.add_argument("--experiment", required=True)
    polling.add_argument("--clients", type=int, default=20)
    polling.add_argument("--rate", type=float, default=5.0)
    posting = sub.add_parser("post")
    posting.add_argument("--base-url", required=True)
    posting.add_argument("--body", required=True)
    posting.add_argument("--count", type=int, default=200)
    posting.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(poll(args) if args.command == "poll" else post(args)))


if __name__ == "__main__":
    main()
