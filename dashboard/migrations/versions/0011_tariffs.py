"""tariffs per house (flat and time-of-use, with validity dates) and the grid's hourly carbon intensity

Revision ID: 0011_tariffs
Revises: 0008_personal_fields
Create Date: 2026-12-15 10:00:00

New tables only: existing data is untouched, and the downgrade drops them with what they hold.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_tariffs"
down_revision = "0010_grafana_views"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tariffs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("house_id", sa.Integer(), sa.ForeignKey("houses.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("import_price", sa.Float(), nullable=True),
        sa.Column("export_price", sa.Float(), nullable=True),
        sa.Column("standing_charge_per_day", sa.Float(), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('flat', 'tou')", name="ck_tariffs_kind"),
    )
    op.create_index("ix_tariffs_house_id", "tariffs", ["house_id"])
    op.create_table(
        "tariff_periods",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "tariff_id", sa.Integer(), sa.ForeignKey("tariffs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("days", sa.String(8), nullable=False),
        sa.Column("start_hour", sa.Integer(), nullable=False),
        sa.Column("end_hour", sa.Integer(), nullable=False),
        sa.Column("import_price", sa.Float(), nullable=False),
        sa.CheckConstraint("days IN ('all', 'weekday', 'weekend')", name="ck_tariff_periods_days"),
    )
    op.create_index("ix_tariff_periods_tariff_id", "tariff_periods", ["tariff_id"])
    op.create_table(
        "grid_intensity",
        sa.Column("hour", sa.DateTime(), primary_key=True),
        sa.Column("g_per_kwh", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("grid_intensity")
    op.drop_index("ix_tariff_periods_tariff_id", table_name="tariff_periods")
    op.drop_table("tariff_periods")
    op.drop_index("ix_tariffs_house_id", table_name="tariffs")
    op.drop_table("tariffs")
