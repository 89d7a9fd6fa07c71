"""Expand, then contract: no migration after the previous release's head drops or renames a
table, a column or a constraint, unless tests/migrations/previous_release.py lists it in
CONTRACT_STEPS with the reason the previous release, still running during an upgrade, does
not depend on it. The migrations are read (tests/migrations/removals.py), not run; the upgrade
drill (tests/integration/test_upgrade_drill.py) runs the previous release on the result."""

from __future__ import annotations

from tests.conftest import REPO
from tests.migrations.previous_release import CONTRACT_STEPS, PREVIOUS_RELEASE_HEAD
from tests.migrations.removals import Removal, after, read_migration, removals

VERSIONS = REPO / "migrations" / "versions"


def unlisted(found: list[Removal], listed: dict[tuple[str, ...], str]) -> list[str]:
    return [str(removal) for removal in found if removal.key not in listed]


def test_no_migration_after_the_previous_release_removes_what_it_may_use() -> None:
    migrations = [read_migration(path) for path in sorted(VERSIONS.glob("[0-9]*.py"))]
    newer = after(migrations, PREVIOUS_RELEASE_HEAD)
    assert newer, f"no migration after {PREVIOUS_RELEASE_HEAD}"
    found = [removal for m in newer for removal in removals(m.source, m.name)]
    assert unlisted(found, CONTRACT_STEPS) == [], (
        "these drop or rename what the previous release may still use while an upgrade runs: "
        "add a column or table instead (expand), or list the step in CONTRACT_STEPS with why "
        "the previous release does not use it"
    )
    stale = set(CONTRACT_STEPS) - {removal.key for removal in found}
    assert not stale, f"CONTRACT_STEPS lists steps no migration takes: {sorted(stale)}"


FAKE = """
import sqlalchemy as sa
from alembic import op

POINTS = "loss_points"
KEY = f"{POINTS}_pkey"


def _rekey(table):
    op.drop_constraint(KEY, POINTS, type_="primary")


def upgrade():
    op.add_column("experiments", sa.Column("fresh", sa.Integer()))
    op.drop_column("experiments", "cost")
    op.drop_table("ablations")
    op.rename_table("sweeps", "searches")
    op.alter_column("experiments", "step", new_column_name="position")
    op.alter_column("experiments", "error", nullable=True)
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("note", sa.String()))
        batch.drop_column("revoked_at")
        batch.alter_column("name", new_column_name="label")
    op.execute(sa.text("ALTER TABLE experiments DROP COLUMN owner"))
    op.execute("UPDATE experiments SET step = 0")
    _rekey(POINTS)


def downgrade():
    op.drop_table("everything")
"""


def test_each_kind_of_removal_in_an_upgrade_is_found_and_only_a_listed_one_passes() -> None:
    found = removals(FAKE, "0099_fake.py")
    assert [str(removal).split(": ", 1)[1] for removal in found] == [
        "drop_constraint loss_points loss_points_pkey",  # in a function upgrade() calls
        "drop_column experiments cost",
        "drop_table ablations",
        "rename_table sweeps",
        "rename_column experiments step",
        "drop_column api_keys revoked_at",
        "rename_column api_keys name",
        "execute ALTER TABLE experiments DROP COLUMN owner",
    ]
    assert len(unlisted(found, {})) == 8
    listed = {("0099_fake.py", "drop_table", "ablations"): "no release reads it any more"}
    assert "0099_fake.py:16: drop_table ablations" not in unlisted(found, listed)
    assert len(unlisted(found, listed)) == 7
