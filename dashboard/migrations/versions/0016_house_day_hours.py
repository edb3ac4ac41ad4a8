"""house day hours: a house's settled import and export per local day and hour slot, for the cost

Revision ID: 0016_house_day_hours
Revises: 0015_grid_metering
Create Date: 2026-12-07 19:00:00

A table `house_day_hours` (dashboard/schema_features.py HOUSE_DAY_HOURS): per house and local day (its
midnight in naive UTC, as the daily rollups' bucket_start), the import i0..i24 and export e0..e24 of its
hour slots (slot k: from midnight + k h, 23 to 25 of them) and `hours`, a bit per slot that has an hourly
rollup row. dashboard/settlement.py keeps it in the rollups' transaction; dashboard/costs.py prices whole local
days with time-of-use tariffs or hourly CO2 from it, one row per house and day instead of 23-25.

Backfill, set-based, from the hourly house rollups: each hourly row belongs to the house's latest daily row
that starts at or before it (as migration 0014 sums the days; found with a running max() over the house's
rows in time order, one sort, not a join on a time range), its slot = whole hours since that midnight. The
same SQL on PostgreSQL and SQLite but for the slot's arithmetic. Downgrade: drop the table.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_house_day_hours"
down_revision = "0015_grid_metering"
branch_labels = None
depends_on = None

SLOTS = 25
COLUMNS = [f"{d}{k}" for d in "ie" for k in range(SLOTS)]
PG_SLOT = "CAST(floor(extract(epoch FROM bucket_start - day_start) / 3600) AS integer)"
LITE_SLOT = "(CAST(strftime('%s', bucket_start) AS integer) - CAST(strftime('%s', day_start) AS integer)) / 3600"
# each row with the latest day start at or before it (a day row sorts before the hour at its midnight)
BACKFILL = """INSERT INTO house_day_hours (house_id, day_start, hours, {columns})
SELECT house_id, day_start, sum(1 << slot), {sums} FROM (
    SELECT entity_id AS house_id, day_start, {slot} AS slot, import_wh AS i, export_wh AS e FROM (
        SELECT entity_id, resolution, bucket_start, import_wh, export_wh,
               max(CASE WHEN resolution = 'day' THEN bucket_start END)
                   OVER (PARTITION BY entity_id ORDER BY bucket_start, resolution) AS day_start
        FROM energy_rollups WHERE resolution IN ('day', 'hour') AND entity_kind = 'house'
         AND entity_id IN (SELECT id FROM houses)) w
    WHERE resolution = 'hour' AND day_start IS NOT NULL
) s WHERE slot >= 0 AND slot < {slots} GROUP BY house_id, day_start"""


def backfill_sql(dialect: str) -> str:
    """The backfill statement (also used by scripts/bench_cost.py on its seeded rollups)."""
    sums = ", ".join(f"sum(CASE WHEN slot = {c[1:]} THEN {c[0]} ELSE 0 END)" for c in COLUMNS)
    slot = PG_SLOT if dialect == "postgresql" else LITE_SLOT
    return BACKFILL.format(columns=", ".join(COLUMNS), sums=sums, slot=slot, slots=SLOTS)


def upgrade() -> None:
    op.create_table(
        "house_day_hours",
        sa.Column("house_id", sa.Integer(), sa.ForeignKey("houses.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("day_start", sa.DateTime(), primary_key=True),
        sa.Column("hours", sa.Integer(), nullable=False, server_default=sa.text("0")),
        *(sa.Column(c, sa.Float(), nullable=False, server_default=sa.text("0")) for c in COLUMNS),
    )
    op.create_index("ix_house_day_hours_day", "house_day_hours", ["day_start"])
    dialect = op.get_bind().dialect.name
    op.execute(backfill_sql(dialect))
    if dialect == "postgresql":
        op.execute("ANALYZE house_day_hours")


def downgrade() -> None:
    op.drop_index("ix_house_day_hours_day", table_name="house_day_hours")
    op.drop_table("house_day_hours")
