"""The release before this one, which this one must run beside while it is replaced.

A release may change the schema only so that the previous release's API and workers, still
running during an upgrade, go on working on it (expand); it removes what the previous
release used only once no running release uses it any more (contract). The upgrade drill
(tests/integration/test_upgrade_drill.py) runs that release's processes from its commit, and
tests/migrations/test_expand_only.py holds the migrations after its head to the rule.
"""

from __future__ import annotations

# The last commit before this round's first migration (f884359 added 0007 on top of it): the
# release now in production. Its schema head is 0005; 0006 to 0010 came after it.
PREVIOUS_RELEASE = "5807d41"
PREVIOUS_RELEASE_HEAD = "0005"

# Drops and renames in the migrations after PREVIOUS_RELEASE_HEAD that the previous release
# does not depend on, each with the reason: contract steps (what only a release before it
# used) and keys it never names. Keyed (migration file, operation, table, column or
# constraint) as tests/migrations/removals.py reports them; anything else fails
# test_expand_only.
CONTRACT_STEPS: dict[tuple[str, ...], str] = {
    ("0010_series_names.py", "drop_constraint", "experiment_series", "experiment_series_pkey"): (
        "the packed series' key widens to (experiment_id, series) in the same transaction; the "
        "previous release never names it (it replaces a run's packed row by a delete and an "
        "insert)"
    ),
    # 0011 acts only on a store that ran 0010's first version, whose loss_points (keyed with
    # the series) already refuses the previous release's inserts: it gives that key back.
    **{
        ("0011_repair_first_series_layout.py", *step): (
            "repairs 0010's first layout, which the previous release cannot write to; the "
            "table keeps its name and its 0001 columns and key (SQLite rebuilds it in one "
            "transaction), and the series column it drops was never the previous release's"
        )
        for step in (
            ("drop_table", "loss_points"),
            ("rename_table", "_new_loss_points"),
            ("drop_constraint", "loss_points", "loss_points_pkey"),
            ("drop_column", "loss_points", "series"),
        )
    },
}
