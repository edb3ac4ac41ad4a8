"""grafana views: aggregate-only, read-only views in schema `grafana` for the optional Grafana (PostgreSQL)

Revision ID: 0010_grafana_views
Revises: 0008_personal_fields
Create Date: 2026-12-09 10:00:00

What Grafana sees (deploy/grafana/, `python -m dashboard grafana-role`): fleet and community energy per
15 minutes, hour and local day, the communities, and data freshness. No per-house row, no house or user
column, no name but a community's (plaintext, not personal: dashboard/schema.py). A Grafana user can write
any SQL, so the views, not the dashboards, enforce MIN_AGGREGATE_HOUSES (third parties' k-anonymity,
dashboard/privacy.py):
- a community of fewer than k houses is absent from every view (communities, community_energy_*,
  data_freshness); the fleet's freshness row is absent while the fleet has fewer than k houses;
- a bucket to which fewer than k houses contributed readings is absent from community_energy_* and
  fleet_energy_* (a gap, as the app draws a bucket without readings), not zero and not NULL.
k is `grafana.min_aggregate_houses()`, 5 (the default) here; `grafana-role` replaces it with the
MIN_AGGREGATE_HOUSES of its environment (rerun it after changing that setting). The role cannot change
it (it owns nothing), and the views are `security_barrier`, so a Grafana query's own conditions (a
division that errors, say) are evaluated only on rows the view lets through; the time and community
filters are leakproof comparisons and still reach the indexes.

PostgreSQL only: on SQLite this migration does nothing (Grafana reads PostgreSQL; and a SQLite view
would break the table rebuilds of later batch migrations, whose RENAME checks every view).

Later migrations: a view keeps PostgreSQL from changing the type of, or dropping, a column it reads (the
columns are listed in DEPENDS_ON below); adding columns, indexes or constraints, renaming, and every
other table are unaffected, and TRUNCATE, backups and restores are too. A migration that must change one
of those columns drops the views that read it first (`DROP VIEW IF EXISTS grafana.<name>`), alters the
table, and creates them again (their SQL adjusted from here) in the same transaction. The grants come back
by themselves: `grafana-role` set default privileges (SELECT on new tables and views in schema grafana
for its role), as long as the migration runs as the same database user as `grafana-role` did;
otherwise rerun `grafana-role`. The downgrade drops schema grafana and everything in it.
"""

from alembic import op

revision = "0010_grafana_views"
down_revision = "0009_api_key_roles"
branch_labels = None
depends_on = None

# The columns the views read (PostgreSQL refuses ALTER COLUMN TYPE and DROP COLUMN on these while they exist)
DEPENDS_ON = {
    "energy_rollups": ("resolution", "entity_kind", "entity_id", "bucket_start", "consumption_wh",
                       "production_wh", "readings_count"),
    "communities": ("id", "name"),
    "community_houses": ("community_id", "house_id"),
    "pv_parks": ("id", "community_id"),
    "houses": (),  # count(*) only
    "devices": ("id", "house_id", "pv_park_id"),
    "measurements": ("device_id", "ts"),
}  # fmt: skip

RESOLUTIONS = {"15min": "15min", "hourly": "hour", "daily": "day"}  # view suffix -> rollup resolution
K = "grafana.min_aggregate_houses()"

FLEET = """
CREATE VIEW grafana.fleet_energy_{suffix} WITH (security_barrier) AS
SELECT f.bucket_start AS "time",
       f.consumption_wh / 1000.0 AS demand_kwh,
       f.production_wh / 1000.0 AS production_kwh,
       (f.consumption_wh - f.production_wh) / 1000.0 AS net_kwh,
       h.houses AS houses_reporting
FROM public.energy_rollups f
CROSS JOIN LATERAL (
    SELECT count(*) AS houses FROM public.energy_rollups r
    WHERE r.resolution = f.resolution AND r.bucket_start = f.bucket_start
      AND r.entity_kind = 'house' AND r.readings_count > 0
) h
WHERE f.resolution = '{resolution}' AND f.entity_kind = 'all' AND f.entity_id = 0 AND h.houses >= {k}
"""

# a community's rollup entities: its houses and its PV parks
MEMBERS = """
    SELECT community_id, 'house'::varchar AS entity_kind, house_id AS entity_id FROM public.community_houses
    UNION ALL
    SELECT community_id, 'pv_park'::varchar, id FROM public.pv_parks WHERE community_id IS NOT NULL
"""

COMMUNITY = """
CREATE VIEW grafana.community_energy_{suffix} WITH (security_barrier) AS
SELECT s.bucket_start AS "time",
       c.id AS community_id,
       c.name AS community,
       s.consumption_wh / 1000.0 AS demand_kwh,
       s.production_wh / 1000.0 AS production_kwh,
       (s.consumption_wh - s.production_wh) / 1000.0 AS net_kwh,
       s.houses AS houses_reporting
FROM (
    SELECT m.community_id, r.bucket_start,
           sum(r.consumption_wh) AS consumption_wh, sum(r.production_wh) AS production_wh,
           count(*) FILTER (WHERE r.entity_kind = 'house' AND r.readings_count > 0) AS houses
    FROM public.energy_rollups r
    JOIN ({members}) m ON r.entity_kind = m.entity_kind AND r.entity_id = m.entity_id
    WHERE r.resolution = '{resolution}'
    GROUP BY m.community_id, r.bucket_start
) s
JOIN public.communities c ON c.id = s.community_id
WHERE s.houses >= {k}
"""

SIZES = "(SELECT community_id, count(*) AS houses FROM public.community_houses GROUP BY community_id)"

COMMUNITIES = f"""
CREATE VIEW grafana.communities WITH (security_barrier) AS
SELECT c.id AS community_id, c.name AS community, n.houses,
       (SELECT count(*) FROM public.pv_parks p WHERE p.community_id = c.id) AS pv_parks
FROM public.communities c JOIN {SIZES} n ON n.community_id = c.id
WHERE n.houses >= {K}
"""

# last reading per device: one backward step of the measurements primary key (device_id, ts) each
FRESHNESS = f"""
CREATE VIEW grafana.data_freshness WITH (security_barrier) AS
WITH last AS (
    SELECT d.id, d.house_id, d.pv_park_id,
           (SELECT max(m.ts) FROM public.measurements m WHERE m.device_id = d.id) AS ts
    FROM public.devices d
), since AS (
    SELECT (now() AT TIME ZONE 'UTC') - interval '1 hour' AS t
)
SELECT 'fleet'::varchar AS scope, NULL::integer AS community_id, NULL::varchar AS community,
       max(l.ts) AS last_reading, count(*) AS devices,
       count(*) FILTER (WHERE l.ts >= since.t) AS devices_reported_last_hour
FROM last l CROSS JOIN since
GROUP BY since.t
HAVING (SELECT count(*) FROM public.houses) >= {K}
UNION ALL
SELECT 'community', c.id, c.name, max(l.ts), count(l.id), count(*) FILTER (WHERE l.ts >= since.t)
FROM public.communities c
JOIN {SIZES} n ON n.community_id = c.id AND n.houses >= {K}
JOIN (
    SELECT ch.community_id, l.id, l.ts FROM public.community_houses ch JOIN last l ON l.house_id = ch.house_id
    UNION ALL
    SELECT p.community_id, l.id, l.ts FROM public.pv_parks p JOIN last l ON l.pv_park_id = p.id
) l ON l.community_id = c.id
CROSS JOIN since
GROUP BY c.id, c.name, since.t
"""

VIEWS = (
    *(f"fleet_energy_{s}" for s in RESOLUTIONS),
    *(f"community_energy_{s}" for s in RESOLUTIONS),
    "communities",
    "data_freshness",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE SCHEMA IF NOT EXISTS grafana")
    op.execute(
        "COMMENT ON SCHEMA grafana IS 'Aggregate-only views for Grafana (migration 0010_grafana_views; "
        "role: python -m dashboard grafana-role)'"
    )
    # MIN_AGGREGATE_HOUSES as the views read it; grafana-role writes the setting's value
    op.execute(
        "CREATE OR REPLACE FUNCTION grafana.min_aggregate_houses() RETURNS integer "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT 5'"
    )
    for suffix, resolution in RESOLUTIONS.items():
        op.execute(FLEET.format(suffix=suffix, resolution=resolution, k=K))
        op.execute(COMMUNITY.format(suffix=suffix, resolution=resolution, k=K, members=MEMBERS))
    op.execute(COMMUNITIES)
    op.execute(FRESHNESS)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP SCHEMA IF EXISTS grafana CASCADE")
