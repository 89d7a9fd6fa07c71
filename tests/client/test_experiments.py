"""trainlab.Client's experiments against a live server: create (idempotent), get, list
across pages, loss, predictions, cancel, delete, download, and the typed errors."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from core.store import artifacts
from core.store.session import session_scope
from tests.api.recorded_runs import RecordedRuns, small_spec
from trainlab import Client, Conflict, NotFound, ValidationError, models

QUICK = {"epochs": 1, "train_limit": 200, "test_limit": 50}


def test_two_posts_with_one_idempotency_key_make_one_run(client: Client) -> None:
    first = client.experiments.create(preset="seed-adam", overrides=QUICK, idempotency_key="k1")
    again = client.experiments.create(preset="seed-adam", overrides=QUICK, idempotency_key="k1")
    assert again.id == first.id and first.status == "queued"
    assert [e.id for e in client.experiments.list()] == [first.id]
    # Without a key given, each create makes its own key: two calls, two runs.
    other = client.experiments.create(preset="seed-adam", overrides=QUICK, name="b", tags=["x"])
    assert other.id != first.id and other.name == "b" and other.tags == ["x"]
    with pytest.raises(Conflict) as refused:
        client.experiments.create(preset="seed-bce", overrides=QUICK, idempotency_key="k1")
    assert refused.value.status_code == 409 and "k1" in refused.value.detail


def test_list_follows_the_cursor_across_pages(client: Client, runs: RecordedRuns) -> None:
    made = [runs.finished_run(small_spec(seed=s), accuracy=0.5 + s / 100, final_loss=0.1).id
            for s in range(5)]  # fmt: skip
    listed = list(client.experiments.list(page_size=2))
    assert sorted(e.id for e in listed) == sorted(made) and len(listed) == 5
    best = next(iter(client.experiments.list(sort="-test_accuracy", page_size=2)))
    assert best.id == made[4] and best.metrics and best.metrics["test_accuracy"] == 0.54
    assert list(client.experiments.list(status="queued")) == []


def test_loss_and_predictions_of_a_finished_run(client: Client, runs: RecordedRuns) -> None:
    run = runs.finished_run(small_spec(), accuracy=0.9, final_loss=0.2)
    got = client.experiments.get(run.id)
    assert got.status == "succeeded" and got.finished and got.progress.fraction == 1.0
    series = client.experiments.loss(run.id)
    assert series.steps == run.steps and series.total_points == len(run.steps)
    assert client.experiments.loss(run.id, max_points=2).points <= 2
    page = client.experiments.predictions(run.id, records=[19, 3])
    assert [r.index for r in page.records] == [19, 3] and page.records[0].label == 9
    assert page.records[0].outputs[9] == pytest.approx(0.9)
    frame = page.to_pandas()
    assert list(frame["index"]) == [19, 3] and "out_9" in frame.columns


def test_typed_errors(client: Client, runs: RecordedRuns) -> None:
    with pytest.raises(NotFound) as missing:
        client.experiments.get("nopenope")
    assert missing.value.status_code == 404
    with pytest.raises(ValidationError) as invalid:
        client.experiments.create(preset="seed-adam", overrides={"epochs": 0})
    fields = {(e.field, e.in_) for e in invalid.value.errors}
    assert ("epochs", "body") in fields
    run = runs.finished_run(small_spec(), accuracy=0.9, final_loss=0.2)
    with pytest.raises(Conflict):
        client.experiments.cancel(run.id)


def test_cancel_then_delete(client: Client) -> None:
    made = client.experiments.create(preset="seed-adam", overrides=QUICK)
    cancelled = client.experiments.cancel(made.id)
    assert cancelled.status == "cancelled"
    deleted = client.experiments.delete(made.id)
    assert deleted == models.ExperimentDeleted(experiment_id=made.id, deleted=True,
                                               freed_bytes=deleted.freed_bytes)  # fmt: skip
    with pytest.raises(NotFound):
        client.experiments.get(made.id)


def test_download_model_streams_the_file(
    client: Client, runs: RecordedRuns, tmp_path: Path
) -> None:
    spec = small_spec()
    experiment_id, attempt = runs.start(spec, name="my run")
    weights = b"\x00" * 100_000 + b"weights"
    with session_scope(runs.engine) as session:
        assert artifacts.save_model(
            session, experiment_id, attempt, step=1, data=weights, keep_checkpoint=False
        )
    into_folder = client.experiments.download_model(experiment_id, tmp_path)
    assert into_folder.name.startswith("trainlab-my-run-") and into_folder.read_bytes() == weights
    named = client.experiments.download_model(experiment_id, tmp_path / "m.safetensors")
    assert named.read_bytes() == weights and not list(tmp_path.glob("*.part"))


def test_unreachable_server_is_connection_failed() -> None:
    from trainlab import ConnectionFailed

    with (
        Client(base_url="http://127.0.0.1:9", timeout=2) as client,
        pytest.raises(ConnectionFailed) as failed,
    ):
        client.me()
    assert isinstance(failed.value.__cause__, httpx.HTTPError)
