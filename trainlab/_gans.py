"""client.gans: a GAN run's images. `Gans` is Client's, `AsyncGans` AsyncClient's; each method
of the one mirrors the method of the same name in the other (kept in step by hand, as _sync.py
and _async.py are). The requests are data (_calls.Call), sent by either client alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx

import trainlab.gan_models as gm
from trainlab._calls import Call, _as, _seg

if TYPE_CHECKING:
    from trainlab._async import AsyncClient
    from trainlab._sync import Client


def _bytes(response: httpx.Response) -> bytes:
    return response.content


def samples_call(experiment_id: str, step: int | None) -> Call[gm.Samples]:
    path = f"/experiments/{_seg(experiment_id)}/samples"
    return Call("GET", path, _as(gm.Samples), params={"step": step, "format": "json"})


def png_call(experiment_id: str, step: int | None) -> Call[bytes]:
    path = f"/experiments/{_seg(experiment_id)}/samples"
    return Call("GET", path, _bytes, params={"step": step, "format": "png"})


def generate_call(experiment_id: str, seed: Sequence[float], label: int | None) -> Call[Any]:
    body: dict[str, Any] = {"seed": [float(v) for v in seed]}
    if label is not None:
        body["label"] = label
    path = f"/experiments/{_seg(experiment_id)}/generate"
    return Call("POST", path, _as(gm.Generated), json=body)


class Gans:
    def __init__(self, client: Client) -> None:
        self._c = client

    def samples(self, experiment_id: str, *, step: int | None = None) -> gm.Samples:
        """The images of the run's fixed seeds at a sample step (default: the last)."""
        return self._c.send(samples_call(experiment_id, step))

    def samples_png(self, experiment_id: str, *, step: int | None = None) -> bytes:
        """The same images as one PNG grid."""
        return self._c.send(png_call(experiment_id, step))

    def generate(
        self, experiment_id: str, seed: Sequence[float], *, label: int | None = None
    ) -> gm.Generated:
        """The trained generator's image of `seed` (and `label`, for a conditional GAN)."""
        result: gm.Generated = self._c.send(generate_call(experiment_id, seed, label))
        return result

    def interpolate(
        self,
        experiment_id: str,
        a: Sequence[float],
        b: Sequence[float],
        *,
        steps: int = 8,
        label: int | None = None,
    ) -> list[gm.Generated]:
        """The images of `steps` seeds on the line from `a` to `b`, ends included."""
        seeds = gm.between(list(a), list(b), steps)
        return [self.generate(experiment_id, seed, label=label) for seed in seeds]


class AsyncGans:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def samples(self, experiment_id: str, *, step: int | None = None) -> gm.Samples:
        return await self._c.send(samples_call(experiment_id, step))

    async def samples_png(self, experiment_id: str, *, step: int | None = None) -> bytes:
        return await self._c.send(png_call(experiment_id, step))

    async def generate(
        self, experiment_id: str, seed: Sequence[float], *, label: int | None = None
    ) -> gm.Generated:
        result: gm.Generated = await self._c.send(generate_call(experiment_id, seed, label))
        return result

    async def interpolate(
        self,
        experiment_id: str,
        a: Sequence[float],
        b: Sequence[float],
        *,
        steps: int = 8,
        label: int | None = None,
    ) -> list[gm.Generated]:
        seeds = gm.between(list(a), list(b), steps)
        return [await self.generate(experiment_id, seed, label=label) for seed in seeds]
