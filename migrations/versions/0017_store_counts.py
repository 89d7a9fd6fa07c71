"""Counts of the experiments kept by the writes, on PostgreSQL: /metrics and the change feed
read them instead of counting 100,000 rows.

Revision ID: 0017
Revises: 0016

PostgreSQL counts rows by reading them (an index-only scan of ix_experiments_census: 9 ms at
100,000 experiments, growing with the store); /metrics and GET /changes need the number of
experiments and whether any has ended or been deleted since their last read. Triggers on
`experiments` now append one row of deltas to `store_counts` per change that moves those
figures: an experiment created (+1) or deleted (-1), one entering or leaving an ended status
(ended ±1, and `ended_changes` +1, which only grows: an end and a deletion together still
move it). The figures are the sums of the column; readers fold the rows into one now and then
(core/store/store_counts.py), so a sum reads a few rows.

Appending, not updating one counter row, is on purpose: a counter row would be locked by every
transaction that creates or ends a run until it commits (serializing the workers), and a
statement changing several runs could deadlock with one ending a run. Inserts never wait.
SQLite counts a table's rows without reading them and keeps doing so: nothing changes there.
Expand-only; the counts start from the rows present.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENDED = "('cancelled', 'failed', 'succeeded')"

UPGRADE = f"""
CREATE TABLE store_counts (
    id BIGSERIAL PRIMARY KEY,
    experiments BIGINT NOT NULL,
    ended BIGINT NOT NULL,
    ended_changes BIGINT NOT NULL
);
INSERT INTO store_counts (experiments, ended, ended_changes)
    SELECT count(*), count(*) FILTER (WHERE status IN {ENDED}), 0 FROM experiments;
CREATE FUNCTION trainlab_count_experiments() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_ended INT := 0;
    is_ended INT := 0;
    delta INT := 0;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        delta := delta - 1;
        IF OLD.status IN {ENDED} THEN was_ended := 1; END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        delta := delta + 1;
        IF NEW.status IN {ENDED} THEN is_ended := 1; END IF;
    END IF;
    INSERT INTO store_counts (experiments, ended, ended_changes)
        VALUES (delta, is_ended - was_ended, GREATEST(was_ended, is_ended));
    RETURN NULL;
END
$$;
CREATE TRIGGER experiments_counted_insert AFTER INSERT ON experiments
    FOR EACH ROW EXECUTE FUNCTION trainlab_count_experiments();
CREATE TRIGGER experiments_counted_delete AFTER DELETE ON experiments
    FOR EACH ROW EXECUTE FUNCTION trainlab_count_experiments();
-- Only what moves an ended figure: a status into or out of an ended one, or an ended row's
-- status or attempt changed (status_totals sums attempts). A claim, a heartbeat and the
-- workers' no-op lock updates fire nothing.
CREATE TRIGGER experiments_counted_update AFTER UPDATE OF status, attempt ON experiments
    FOR EACH ROW
    WHEN ((OLD.status IN {ENDED} OR NEW.status IN {ENDED})
          AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.attempt IS DISTINCT FROM NEW.attempt))
    EXECUTE FUNCTION trainlab_count_experiments();
"""

DOWNGRADE = """
DROP TRIGGER experiments_counted_update ON experiments;
DROP TRIGGER experiments_counted_delete ON experiments;
DROP TRIGGER experiments_counted_insert ON experiments;
DROP FUNCTION trainlab_count_experiments();
DROP TABLE store_counts;
"""


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(UPGRADE)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(DOWNGRADE)
