"""A GAN through the live embedded stack: a small judge classifier first, then a GAN of 200
records judged by it by default; both loss series, the samples (JSON and PNG), the model's
networks, and /generate from the stored generator."""

from __future__ import annotations

import pytest
from safetensors.numpy import load

from tests.integration.stack import Stack
from trainlab import Client, Conflict

pytestmark = pytest.mark.integration

TINY_GAN = {"epochs": 1, "train_limit": 200, "sample_every": 100, "judge_samples": 100}


def test_a_gan_trains_with_two_series_samples_and_generate(embedded_stack: Stack) -> None:
    stack = embedded_stack
    judge = stack.submit(
        {"preset": "seed-layernorm", "overrides": {"epochs": 1, "train_limit": 500}}
    )
    assert stack.wait_terminal(judge["id"])["status"] == "succeeded"
    created = stack.submit({"preset": "gan-mnist", "overrides": TINY_GAN})
    assert created["spec"]["judge"] == judge["id"]  # the account's newest classifier
    finished = stack.wait_terminal(created["id"])
    assert finished["status"] == "succeeded", finished["error"]
    eid = finished["id"]
    metrics = finished["metrics"]
    assert [j["step"] for j in metrics["judge"]] == [100, 200]
    assert 0 <= metrics["entropy_bits"] <= 3.33 and -1 <= metrics["correlation"] <= 1

    with stack.client() as client:
        d = client.get(f"/experiments/{eid}/loss").json()
        g = client.get(f"/experiments/{eid}/loss", params={"series": "generator"}).json()
        assert (d["series"], d["points"]) == ("discriminator", 40)
        assert (g["series"], g["points"]) == ("generator", 20)
        # The event stream of a finished GAN carries its first series' points, then ends.
        stream = client.get(f"/experiments/{eid}/events").text
        assert "event: loss" in stream and "event: end" in stream
        bad = client.get(f"/experiments/{eid}/loss", params={"series": "critic"})
        assert bad.status_code == 422
        csv = client.get(f"/experiments/{eid}/loss.csv", params={"series": "generator"})
        assert csv.text.splitlines()[0] == "step,generator"

        samples = client.get(f"/experiments/{eid}/samples").json()
        assert (samples["step"], samples["steps"], samples["count"]) == (200, [100, 200], 16)
        samples_at_100 = client.get(f"/experiments/{eid}/samples", params={"step": 100}).json()
        png = client.get(f"/experiments/{eid}/samples", params={"step": 100, "format": "png"})
        assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"

        generator = load(
            client.get(f"/experiments/{eid}/model", params={"network": "generator"}).content
        )
        assert generator["0.weight"].shape == (200, 100)
        made = client.post(f"/experiments/{eid}/generate", json={"seed": [0.1] * 100})
        assert made.status_code == 200 and len(made.json()["pixels"]) == 784
        wrong = client.post(f"/experiments/{eid}/generate", json={"seed": [0.1] * 3})
        assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "seed"

    # The same images through the Python client: typed samples, the PNG grid, and a walk
    # between two seeds whose ends are the generator's images of those seeds.
    with Client(base_url=stack.base_url) as python:
        typed = python.gans.samples(eid, step=100)
        assert (typed.step, typed.count, len(typed.pixels[0])) == (100, 16, 784)
        assert typed.labels is None and len(typed.image(0)) == 28
        assert typed.pixels == samples_at_100["pixels"]
        assert python.gans.samples_png(eid)[:4] == b"\x89PNG"
        a, b = [0.1] * 100, [-0.1] * 100
        walk = python.gans.interpolate(eid, a, b, steps=3)
        assert [w.pixels for w in (walk[0], walk[-1])] == [
            python.gans.generate(eid, a).pixels,
            python.gans.generate(eid, b).pixels,
        ]
        assert walk[1].pixels != walk[0].pixels
        with pytest.raises(Conflict, match="is a classifier"):
            python.gans.samples(judge["id"])
