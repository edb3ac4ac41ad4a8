"""grid metering: the rollups of a house with an export meter and inverters hold its load and PV

Revision ID: 0015_grid_metering
Revises: 0014_interval_settlement
Create Date: 2026-12-17 15:00:00

Before, such a house's rollups held consumption = the import (its consumption meter stands at the grid
connection) and production = PV + export (the export meter counted as production beside the inverters). Now
(dashboard/rollups.py `DeviceInfo.house_share`, docs/data-rules.md "Rollups") they hold the load = import +
PV - export and the PV. With E the export meters' own rollups in the same bucket (kept since they were
added), each of the house's rows, at every resolution, and the fleet's by the same amounts:
consumption += production - 2 E, production -= E; then its import and export are settled again from its
15-minute rows (the statements of migration 0014, for these houses only). Houses with an export meter and no
inverter, or none, keep their rows (their rule did not change). A bucket from before the export meters had
their own rollups has E = 0 there: the export could not be told apart then, and cannot now. Set-based, the
same SQL on PostgreSQL and SQLite (UPDATE .. FROM); nothing to do without such a house. Downgrade: the
inverse (consumption += E - production, production += E).
"""

import importlib

from alembic import op

revision = "0015_grid_metering"
down_revision = "0014_interval_settlement"
branch_labels = None
depends_on = None

GRID_PV_HOUSES = """SELECT house_id FROM devices WHERE house_id IS NOT NULL GROUP BY house_id
  HAVING sum(CASE WHEN kind = 'meter' AND direction = 'production' THEN 1 ELSE 0 END) > 0
     AND sum(CASE WHEN kind = 'pv' AND direction = 'production' THEN 1 ELSE 0 END) > 0"""
EXPORT = """SELECT d.house_id, r.resolution, r.bucket_start, sum(r.production_wh) AS e FROM energy_rollups r
  JOIN devices d ON d.id = r.entity_id
  WHERE r.entity_kind = 'device' AND d.kind = 'meter' AND d.direction = 'production'
  GROUP BY d.house_id, r.resolution, r.bucket_start"""
FIX = """INSERT INTO grid_metering_fix (resolution, entity_id, bucket_start, dc, dp)
  SELECT h.resolution, h.entity_id, h.bucket_start, {dc}, {dp} FROM energy_rollups h
  LEFT JOIN ({export}) x ON x.house_id = h.entity_id AND x.resolution = h.resolution
       AND x.bucket_start = h.bucket_start
  WHERE h.entity_kind = 'house' AND h.entity_id IN ({houses})"""
HOUSES = """UPDATE energy_rollups SET consumption_wh = energy_rollups.consumption_wh + f.dc,
    production_wh = energy_rollups.production_wh + f.dp
  FROM grid_metering_fix f WHERE energy_rollups.entity_kind = 'house' AND energy_rollups.entity_id = f.entity_id
   AND energy_rollups.resolution = f.resolution AND energy_rollups.bucket_start = f.bucket_start"""
FLEET = """UPDATE energy_rollups SET consumption_wh = energy_rollups.consumption_wh + s.dc,
    production_wh = energy_rollups.production_wh + s.dp
  FROM (SELECT resolution, bucket_start, sum(dc) AS dc, sum(dp) AS dp FROM grid_metering_fix
        GROUP BY resolution, bucket_start) s
  WHERE energy_rollups.entity_kind = 'all' AND energy_rollups.entity_id = 0
   AND energy_rollups.resolution = s.resolution AND energy_rollups.bucket_start = s.bucket_start"""
ONLY_FIXED = " AND {column} IN (SELECT DISTINCT entity_id FROM grid_metering_fix)"


def _refold(dc: str, dp: str) -> None:
    """Add (dc, dp), expressions of the house row `h` and its export `x.e`, to every row of the houses with an
    export meter and inverters and to the fleet's, then settle those houses' import and export again."""
    bind = op.get_bind()
    op.execute(
        "CREATE TEMPORARY TABLE grid_metering_fix (resolution VARCHAR(10), entity_id INTEGER, "
        "bucket_start TIMESTAMP, dc FLOAT, dp FLOAT)"
    )
    op.execute(FIX.format(dc=dc, dp=dp, export=EXPORT, houses=GRID_PV_HOUSES))
    if bind.exec_driver_sql("SELECT count(*) FROM grid_metering_fix").scalar():
        op.execute(FLEET)  # before the houses: nothing here reads them, but keep one order
        op.execute(HOUSES)
        m = importlib.import_module("dashboard.migrations.versions.0014_interval_settlement")
        postgres = bind.dialect.name == "postgresql"
        op.execute(m.QUARTERS + ONLY_FIXED.format(column="entity_id"))
        for pg, lite in ((m.PG_HOURS, m.LITE_HOURS), (m.PG_DAYS, m.LITE_DAYS)):
            statement = pg if postgres else lite
            op.execute(statement + ONLY_FIXED.format(column="r.entity_id" if postgres else "entity_id"))
    op.execute("DROP TABLE grid_metering_fix")


def upgrade() -> None:
    _refold("h.production_wh - 2 * coalesce(x.e, 0)", "-coalesce(x.e, 0)")


def downgrade() -> None:
    _refold("coalesce(x.e, 0) - h.production_wh", "coalesce(x.e, 0)")
