"""alerts: rules per user and scope, their episodes (events) and in-app notifications

Revision ID: 0012_alerts
Revises: 0010_grafana_views
Create Date: 2026-12-14 10:00:00

New tables only. A rule's webhook URL and secret are personal data, AES-256-GCM at rest
(dashboard/fieldcrypt.py: written by the app, so nothing to encrypt here). At most one open event per
rule: a unique index on rule_id where resolved_at IS NULL (partial indexes: PostgreSQL and SQLite alike),
so two overlapping evaluation runs cannot open the same episode twice.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_alerts"
down_revision = "0011_tariffs"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OPEN = sa.text("resolved_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("scope_kind", sa.String(length=12), nullable=False),
        sa.Column("scope_id", sa.Integer(), nullable=True),
        sa.Column("params_json", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("email", sa.Boolean(), nullable=False),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("webhook_secret", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('anomaly', 'voltage_event', 'silent_device', 'threshold')", name="ck_alert_rules_kind"
        ),
        sa.CheckConstraint("scope_kind IN ('house', 'community', 'fleet')", name="ck_alert_rules_scope"),
    )
    op.create_index("ix_alert_rules_owner_id", "alert_rules", ["owner_id"])
    op.create_table(
        "alert_events",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "rule_id", sa.Integer(), sa.ForeignKey("alert_rules.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("fired_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details_json", sa.Text(), nullable=False),
        sa.Column("deliveries_json", sa.Text(), nullable=False),
        sa.Column("delivery_pending", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_alert_events_rule_id", "alert_events", ["rule_id"])
    op.create_index("ix_alert_events_delivery_pending", "alert_events", ["delivery_pending"])
    op.create_index(
        "uq_alert_events_open", "alert_events", ["rule_id"], unique=True, postgresql_where=OPEN, sqlite_where=OPEN
    )
    op.create_table(
        "notifications",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("alert_events.id", ondelete="CASCADE"), nullable=True,
        ),  # fmt: skip
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_notifications_user_read", "notifications", ["user_id", "read_at"])
    op.create_index("ix_notifications_event_id", "notifications", ["event_id"])


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("alert_events")
    op.drop_table("alert_rules")
