"""interval settlement: grid import and export per 15-minute interval in the house rollups

Revision ID: 0014_interval_settlement
Revises: 0012_alerts
Create Date: 2026-12-16 13:00:00

Two columns on energy_rollups, import_wh and export_wh (0 by default), kept for house rows
(dashboard/settlement.py): a 15-minute row holds max(consumption - production, 0) and max(production -
consumption, 0) of its interval, an hourly or daily row the sums of its intervals'. The household view then
reads a year from ~365 daily rows instead of ~35,000 15-minute ones, exactly.

Backfill, set-based, in this order: 15-minute rows from their own sums; hourly rows from their four
intervals; daily rows from the hourly rows between their start and the house's next daily row (a day bucket
starts at a local midnight and lasts 23-25 hours; a day without a row had no readings, so it has no hourly
rows either). No time-zone arithmetic needed. PostgreSQL: UPDATE .. FROM with GROUP BY; SQLite (the
embedded default, small): correlated subqueries.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_interval_settlement"
down_revision = "0013_password_resets"
branch_labels = None
depends_on = None

HOUSE = "entity_kind = 'house'"
QUARTERS = f"""UPDATE energy_rollups SET
    import_wh = CASE WHEN consumption_wh > production_wh THEN consumption_wh - production_wh ELSE 0 END,
    export_wh = CASE WHEN production_wh > consumption_wh THEN production_wh - consumption_wh ELSE 0 END
  WHERE resolution = '15min' AND {HOUSE}"""

PG_HOURS = f"""UPDATE energy_rollups r SET import_wh = s.i, export_wh = s.e
  FROM (SELECT entity_id, date_trunc('hour', bucket_start) AS hour, sum(import_wh) AS i, sum(export_wh) AS e
        FROM energy_rollups WHERE resolution = '15min' AND {HOUSE} GROUP BY 1, 2) s
  WHERE r.resolution = 'hour' AND r.{HOUSE} AND r.entity_id = s.entity_id AND r.bucket_start = s.hour"""
PG_DAYS = f"""UPDATE energy_rollups r SET import_wh = s.i, export_wh = s.e
  FROM (SELECT d.entity_id, d.bucket_start, sum(h.import_wh) AS i, sum(h.export_wh) AS e
        FROM (SELECT entity_id, bucket_start,
                     lead(bucket_start) OVER (PARTITION BY entity_id ORDER BY bucket_start) AS next_day
              FROM energy_rollups WHERE resolution = 'day' AND {HOUSE}) d
        JOIN energy_rollups h ON h.resolution = 'hour' AND h.{HOUSE} AND h.entity_id = d.entity_id
             AND h.bucket_start >= d.bucket_start AND (d.next_day IS NULL OR h.bucket_start < d.next_day)
        GROUP BY 1, 2) s
  WHERE r.resolution = 'day' AND r.{HOUSE} AND r.entity_id = s.entity_id AND r.bucket_start = s.bucket_start"""

# SQLite keeps timestamps as ISO text ('YYYY-MM-DD HH:MM:SS.ffffff'): an hour's intervals share its first 13
# characters, and text order is time order.
LITE_HOURS = f"""UPDATE energy_rollups SET
    import_wh = (SELECT coalesce(sum(q.import_wh), 0) FROM energy_rollups q WHERE q.resolution = '15min'
                 AND q.{HOUSE} AND q.entity_id = energy_rollups.entity_id
                 AND substr(q.bucket_start, 1, 13) = substr(energy_rollups.bucket_start, 1, 13)),
    export_wh = (SELECT coalesce(sum(q.export_wh), 0) FROM energy_rollups q WHERE q.resolution = '15min'
                 AND q.{HOUSE} AND q.entity_id = energy_rollups.entity_id
                 AND substr(q.bucket_start, 1, 13) = substr(energy_rollups.bucket_start, 1, 13))
  WHERE resolution = 'hour' AND {HOUSE}"""
_NEXT = f"""(SELECT min(n.bucket_start) FROM energy_rollups n WHERE n.resolution = 'day' AND n.{HOUSE}
            AND n.entity_id = energy_rollups.entity_id AND n.bucket_start > energy_rollups.bucket_start)"""
LITE_DAYS = f"""UPDATE energy_rollups SET
    import_wh = (SELECT coalesce(sum(h.import_wh), 0) FROM energy_rollups h WHERE h.resolution = 'hour'
                 AND h.{HOUSE} AND h.entity_id = energy_rollups.entity_id
                 AND h.bucket_start >= energy_rollups.bucket_start
                 AND ({_NEXT} IS NULL OR h.bucket_start < {_NEXT})),
    export_wh = (SELECT coalesce(sum(h.export_wh), 0) FROM energy_rollups h WHERE h.resolution = 'hour'
                 AND h.{HOUSE} AND h.entity_id = energy_rollups.entity_id
                 AND h.bucket_start >= energy_rollups.bucket_start
                 AND ({_NEXT} IS NULL OR h.bucket_start < {_NEXT}))
  WHERE resolution = 'day' AND {HOUSE}"""


def upgrade() -> None:
    with op.batch_alter_table("energy_rollups") as batch:
        batch.add_column(sa.Column("import_wh", sa.Float(), nullable=False, server_default=sa.text("0")))
        batch.add_column(sa.Column("export_wh", sa.Float(), nullable=False, server_default=sa.text("0")))
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute(QUARTERS)
    op.execute(PG_HOURS if postgres else LITE_HOURS)
    op.execute(PG_DAYS if postgres else LITE_DAYS)


def downgrade() -> None:
    with op.batch_alter_table("energy_rollups") as batch:
        batch.drop_column("export_wh")
        batch.drop_column("import_wh")
