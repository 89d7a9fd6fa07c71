"""The sweep requests, as data (see _calls.py): Client and AsyncClient send the same Calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

import trainlab.sweep_models as sm
from trainlab._calls import Call, _as, _idempotent, _seg


def sweep_body(
    *,
    space: Mapping[str, Mapping[str, Any]],
    preset: str | None,
    spec: Mapping[str, Any] | None,
    overrides: Mapping[str, Any] | None,
    name: str | None,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """The body of POST /sweeps; `extra` holds the rest of its fields (seeds, sampler, pruner,
    max_trials, parallel, validation_records, objective, rungs, sampler_seed, prune_after),
    unset when None."""
    if spec is not None and preset is not None:
        raise ValueError("give either spec, or preset (with overrides), not both")
    body: dict[str, Any] = {"space": {k: dict(v) for k, v in space.items()}}
    body |= {k: v for k, v in extra.items() if v is not None}
    if preset is not None:
        body["preset"] = preset
    if spec is not None:
        body["spec"] = dict(spec)
    if overrides:
        body["overrides"] = dict(overrides)
    if name is not None:
        body["name"] = name
    return body


def create_sweep(body: dict[str, Any], idempotency_key: str | None) -> Call[sm.Sweep]:
    # A key on every create, as experiments and ablations carry one: a retried POST (after a
    # 429, or the caller's with the same key) answers the same sweep instead of a second.
    headers = _idempotent(idempotency_key)
    return Call("POST", "/sweeps", _as(sm.Sweep), json=body, headers=headers)


def get_sweep(sweep_id: str) -> Call[sm.Sweep]:
    return Call("GET", f"/sweeps/{_seg(sweep_id)}", _as(sm.Sweep))


def list_sweeps(
    limit: int, cursor: str | None, status: str | None, owner: str | None
) -> Call[sm.SweepPage]:
    params = {"limit": limit, "cursor": cursor, "status": status, "owner": owner}
    return Call("GET", "/sweeps", _as(sm.SweepPage), params=params)


def cancel_sweep(sweep_id: str) -> Call[sm.Sweep]:
    return Call("POST", f"/sweeps/{_seg(sweep_id)}/cancel", _as(sm.Sweep), json={})


def delete_sweep(sweep_id: str) -> Call[sm.SweepDeleted]:
    return Call("DELETE", f"/sweeps/{_seg(sweep_id)}", _as(sm.SweepDeleted))


def importance(sweep_id: str) -> Call[sm.SweepImportance]:
    return Call("GET", f"/sweeps/{_seg(sweep_id)}/importance", _as(sm.SweepImportance))


def trials_csv(sweep_id: str) -> Call[str]:
    return Call("GET", f"/sweeps/{_seg(sweep_id)}/trials.csv", _text)


def _text(response: httpx.Response) -> str:
    return response.text


def confirm(sweep_id: str, top: int, seeds: int) -> Call[sm.SweepConfirmation]:
    path = f"/sweeps/{_seg(sweep_id)}/confirm"
    return Call("POST", path, _as(sm.SweepConfirmation), json={"top": top, "seeds": seeds})
