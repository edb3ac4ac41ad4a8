"""devices get an optional plausibility bound on power, `max_power_w` (W)

Revision ID: 0005_device_max_power
Revises: 0004
Create Date: 2026-12-07 10:00:00

Nullable: NULL means the global MAX_POWER_W applies, so existing devices keep their behaviour.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_device_max_power"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_power_w", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("max_power_w")
