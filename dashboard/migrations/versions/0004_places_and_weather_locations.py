"""places and weather locations: houses and communities get a time zone, a holiday country and
coordinates; weather is kept per location, with forecast rows told apart from observations

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-14 10:00:00

Every new column is nullable (NULL: the community's, else the environment's default), so existing rows
keep their behaviour. The weather already stored keeps its `location` names: each becomes a
`weather_locations` row at its coordinates, and every stored row counts as an observation.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PLACE_TABLES = ("houses", "communities")


def upgrade() -> None:
    for table in PLACE_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
            batch_op.add_column(sa.Column("country", sa.String(length=40), nullable=True))
            batch_op.add_column(sa.Column("latitude", sa.Float(), nullable=True))
            batch_op.add_column(sa.Column("longitude", sa.Float(), nullable=True))
    op.create_table(
        "weather_locations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.execute(
        "INSERT INTO weather_locations (name, latitude, longitude) "
        "SELECT location, MIN(latitude), MIN(longitude) FROM weather_observations "
        "GROUP BY location ORDER BY location"
    )
    with op.batch_alter_table("weather_observations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("is_forecast", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_foreign_key(
            "fk_weather_observations_location",
            "weather_locations",
            ["location"],
            ["name"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    op.execute("DELETE FROM weather_observations WHERE is_forecast")
    with op.batch_alter_table("weather_observations", schema=None) as batch_op:
        batch_op.drop_constraint("fk_weather_observations_location", type_="foreignkey")
        batch_op.drop_column("is_forecast")
    op.drop_table("weather_locations")
    for table in PLACE_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in ("longitude", "latitude", "country", "timezone"):
                batch_op.drop_column(column)
