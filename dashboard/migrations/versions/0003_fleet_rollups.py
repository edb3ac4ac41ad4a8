"""fleet rollups: the whole fleet pre-summed as rollup entity 'all', and an index of out-of-limit voltage

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 21:30:00

An all-houses series summed 200 house rows per bucket on every read (the analyst's 30-day Exports preview
read 576,000 15-minute rows). The fleet's sums are now kept as one more rollup entity, ('all', 0),
upserted by ingestion with the houses' and parks' rows; this migration fills it from the rollups that
exist. Stop ingestion while it runs: readings stored by an older version in the meantime would miss the
fleet's rows.

Voltage: the Exports count 15-minute intervals whose voltage left 0.9-1.1 Un (Un 230 V); a partial index
of just those rows (rare) makes the count a short index scan instead of a pass over every row.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OUTSIDE = "voltage_min < 207 OR voltage_max > 253"  # 0.9 and 1.1 x 230 V (dashboard.exports)


def upgrade() -> None:
    with op.batch_alter_table("energy_rollups", schema=None) as batch_op:
        batch_op.drop_constraint("ck_rollups_entity", type_="check")
        batch_op.create_check_constraint(
            "ck_rollups_entity", "entity_kind IN ('house', 'pv_park', 'device', 'all')"
        )
    op.execute(
        "INSERT INTO energy_rollups (resolution, entity_kind, entity_id, bucket_start, consumption_wh, "
        "production_wh, voltage_min, voltage_max, voltage_sum, voltage_count, pf_sum, pf_count, "
        "readings_count) "
        "SELECT resolution, 'all', 0, bucket_start, SUM(consumption_wh), SUM(production_wh), NULL, NULL, "
        "SUM(voltage_sum), SUM(voltage_count), SUM(pf_sum), SUM(pf_count), SUM(readings_count) "
        "FROM energy_rollups WHERE entity_kind IN ('house', 'pv_park') "
        "GROUP BY resolution, bucket_start ORDER BY resolution, bucket_start"
    )
    op.create_index(
        "ix_rollups_voltage_outside",
        "energy_rollups",
        ["resolution", "bucket_start"],
        postgresql_where=sa.text(OUTSIDE),
        sqlite_where=sa.text(OUTSIDE),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ANALYZE energy_rollups")


def downgrade() -> None:
    op.drop_index("ix_rollups_voltage_outside", table_name="energy_rollups")
    op.execute("DELETE FROM energy_rollups WHERE entity_kind = 'all'")
    with op.batch_alter_table("energy_rollups", schema=None) as batch_op:
        batch_op.drop_constraint("ck_rollups_entity", type_="check")
        batch_op.create_check_constraint("ck_rollups_entity", "entity_kind IN ('house', 'pv_park', 'device')")
