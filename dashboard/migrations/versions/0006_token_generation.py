"""token generation: users get a counter that every access and refresh token carries

Revision ID: 0006_token_generation
Revises: 0005_device_max_power
Create Date: 2026-12-07 10:00:00

A password change, a role change or a deactivation bumps the user's `token_generation`, and a token
issued under another generation is refused, so such a change ends every session of the user at once.
Existing users start at 0, the generation that tokens issued before this migration are read as.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_token_generation"
down_revision = "0005_device_max_power"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("token_generation", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("token_generation")
