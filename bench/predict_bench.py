"""POST /experiments/{id}/predict latency, against its baselines in the same go.

A store (SQLite file, or --database-url) gets one finished experiment with the book's
`seed-layernorm` network (784-200-10, LayerNorm; weights drawn at random, the shapes and the
file exactly what a worker stores), and a real `trainlab serve --no-worker` (uvicorn) serves it.
Over keep-alive HTTP it then times:
- baseline: GET /healthz (the HTTP floor) and GET /experiments/{id} (one store read);
- predict with a JSON body of 784 pixels, with a multipart PNG upload and with a raw PNG body.
Goal: predict p50 <= 50 ms. In process it also times the parts: parsing the JSON pixels,
decoding the PNG, a cold decode of the weights file, and the numpy forward pass.

Usage: python bench/predict_bench.py [--requests 300] [--database-url URL]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image
from safetensors.numpy import save

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from api.services import inference  # noqa: E402
from api.services.digits import pixels_from_json, pixels_from_png  # noqa: E402
from core.presets import build_spec  # noqa: E402
from core.store import artifacts, experiments, runs  # noqa: E402
from core.store.migrate import upgrade_to_head  # noqa: E402
from core.store.models import Status  # noqa: E402
from core.store.session import make_engine, session_scope  # noqa: E402
from tests.conftest import free_port  # noqa: E402


def layernorm_file(experiment_id: str) -> bytes:
    spec = build_spec("seed-layernorm")
    rng = np.random.default_rng(0)
    tensors = {
        "0.weight": rng.normal(0, 0.05, (200, 784)).astype(np.float32),
        "0.bias": rng.normal(0, 0.05, 200).astype(np.float32),
        "2.weight": np.ones(200, np.float32),
        "2.bias": np.zeros(200, np.float32),
        "3.weight": rng.normal(0, 0.05, (10, 200)).astype(np.float32),
        "3.bias": np.zeros(10, np.float32),
    }
    metadata = {"format": inference.MODEL_FORMAT, "spec": spec.canonical_json(),
                "experiment_id": experiment_id, "step": str(spec.total_steps)}  # fmt: skip
    return save(tensors, metadata=metadata)


def stored_experiment(url: str) -> str:
    engine = make_engine(url)
    spec = build_spec("seed-layernorm")
    with session_scope(engine) as session:
        experiment, _ = experiments.create_experiment(session, spec, name="predict bench")
    with session_scope(engine) as session:
        attempt = runs.claim(session, experiment.id, worker="bench", stale_after_s=3600)
        assert attempt is not None
        data = layernorm_file(experiment.id)
        artifacts.save_model(
            session, experiment.id, attempt, step=1, data=data, keep_checkpoint=False
        )
        runs.finish(session, experiment.id, attempt, status=Status.succeeded, step=1)
    engine.dispose()
    return experiment.id


def serve(url: str, state_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINLAB_")}
    env |= {
        "TRAINLAB_DATABASE_URL": url,
        "TRAINLAB_STATE_DIR": str(state_dir),
        "TRAINLAB_PORT": str(port),
        "TRAINLAB_LOG_LEVEL": "warning",
        "PYTHONPATH": str(REPO),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--no-worker"], cwd=state_dir, env=env
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("the server did not come up within 60 s")


def percentiles(times_ms: list[float]) -> str:
    cuts = statistics.quantiles(times_ms, n=100)
    return f"p50 {statistics.median(times_ms):7.2f} ms   p95 {cuts[94]:7.2f} ms"


def timed(n: int, call: Callable[[], Any], warmup: int = 10) -> list[float]:
    times = []
    for i in range(n + warmup):
        started = time.perf_counter()
        call()
        if i >= warmup:
            times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database-url", default=None, help="default: a new SQLite file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade_to_head(url)
        experiment_id = stored_experiment(url)
        rng = np.random.default_rng(1)
        gray = rng.integers(0, 256, (28, 28), dtype=np.uint8)
        pixels = (gray.reshape(784) / 255.0).tolist()
        buffer = io.BytesIO()
        Image.fromarray(gray, mode="L").save(buffer, format="PNG")
        png = buffer.getvalue()

        process, base = serve(url, Path(tmp))
        predict = f"/experiments/{experiment_id}/predict"
        try:
            with httpx.Client(base_url=base, timeout=30) as client:

                def ok(response: httpx.Response) -> None:
                    response.raise_for_status()

                rows = [
                    ("GET /healthz (baseline)", lambda: ok(client.get("/healthz"))),
                    ("GET /experiments/{id} (baseline)",
                     lambda: ok(client.get(f"/experiments/{experiment_id}"))),
                    ("POST predict, JSON 784 pixels",
                     lambda: ok(client.post(predict, json={"pixels": pixels}))),
                    ("POST predict, multipart PNG",
                     lambda: ok(client.post(predict, files={"image": ("d.png", png)}))),
                    ("POST predict, raw image/png",
                     lambda: ok(client.post(predict, content=png,
                                            headers={"content-type": "image/png"}))),
                ]  # fmt: skip
                print(f"over HTTP (uvicorn, keep-alive), {args.requests} requests each:")
                for label, call in rows:
                    print(f"  {label:<36} {percentiles(timed(args.requests, call))}")
        finally:
            process.terminate()
            process.wait(timeout=20)

    data = layernorm_file("bench")
    network = inference.decode(data)
    x = np.asarray(pixels, dtype=np.float32)
    body = {"pixels": pixels}
    print("in process, 1000 calls each:")
    parts: list[tuple[str, Callable[[], object]]] = [
        ("parse JSON pixels", lambda: pixels_from_json(body)),
        ("decode 28x28 PNG", lambda: pixels_from_png(png)),
        ("decode the weights file (cold)", lambda: inference.decode(data)),
        ("numpy forward, one image", lambda: inference.predict(network, x)),
    ]
    for label, part in parts:
        print(f"  {label:<36} {percentiles(timed(1000, part))}")


if __name__ == "__main__":
    main()
