"""The queue between a run's training thread and its store thread: order, batching of
consecutive loss points, a bound that blocks (never drops), and a join that waits."""

from __future__ import annotations

import threading
import time

from worker.writer import MAX_BATCH, Checkpoint, LossBatch, LossPoints, RunQueue, Stop


def _batch(q: RunQueue) -> tuple[LossBatch, int]:
    taken, count = q.take(0.1)
    assert isinstance(taken, LossBatch)
    return taken, count


def test_consecutive_loss_points_are_taken_together_and_order_is_kept() -> None:
    q = RunQueue(capacity=10)
    q.put(LossPoints([10, 20], [1.0, 0.9]))
    q.put(LossPoints([30], [0.8]))
    q.put(Checkpoint(b"at 30", 30))
    q.put(LossPoints([40], [0.7]))
    q.put(Stop())
    batch, count = _batch(q)
    assert (batch.steps, batch.values, count) == ([10, 20, 30], [1.0, 0.9, 0.8], 2)
    assert batch.parts == [LossPoints([10, 20], [1.0, 0.9]), LossPoints([30], [0.8])]
    assert q.take(0.1) == (Checkpoint(b"at 30", 30), 1)  # after the points up to its step
    assert _batch(q) == (LossBatch([LossPoints([40], [0.7])]), 1)
    stop, count = q.take(0.1)
    assert isinstance(stop, Stop) and count == 1
    q.done(5)
    q.join()  # every item accounted for


def test_a_batch_is_bounded() -> None:
    q = RunQueue(capacity=MAX_BATCH + 5)
    for k in range(MAX_BATCH + 5):
        q.put(LossPoints([k], [float(k)]))
    first, count = _batch(q)
    assert count == MAX_BATCH and first.steps == list(range(MAX_BATCH))
    rest, count = _batch(q)
    assert count == 5 and rest.steps == list(range(MAX_BATCH, MAX_BATCH + 5))


def test_nothing_within_the_timeout_is_an_empty_take() -> None:
    assert RunQueue().take(0.01) == (None, 0)


def test_a_full_queue_blocks_the_producer_instead_of_dropping() -> None:
    q = RunQueue(capacity=2)
    q.put(LossPoints([10], [1.0]))
    q.put(LossPoints([20], [0.9]))
    third = threading.Thread(target=q.put, args=(LossPoints([30], [0.8]),))
    third.start()
    time.sleep(0.2)
    assert third.is_alive()  # waits for room
    first, count = _batch(q)
    q.done(count)
    third.join(timeout=5)
    assert not third.is_alive()
    rest, _ = _batch(q)
    assert first.steps + rest.steps == [10, 20, 30]


def test_join_waits_for_the_items_to_be_done() -> None:
    q = RunQueue()
    q.put(LossPoints([10], [1.0]))
    joined = threading.Event()
    waiter = threading.Thread(target=lambda: (q.join(), joined.set()))
    waiter.start()
    _, count = q.take(0.1)
    assert not joined.wait(0.2)  # taken but not yet written
    q.done(count)
    assert joined.wait(5)
    waiter.join()
