"""privacy: houses' consent to third-party per-house rows; the access log's client address (truncated), the
object asked for and the pseudonym of an erased user

Revision ID: 0007_privacy
Revises: 0006_token_generation
Create Date: 2026-12-07 10:00:00

`share_with_third_parties` defaults to false for every existing house: consent is given, never assumed.
The access-log columns are nullable; rows written before keep NULL.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_privacy"
down_revision = "0006_token_generation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("houses", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("share_with_third_parties", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("api_access_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("target", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("user_pseudonym", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_access_log", schema=None) as batch_op:
        batch_op.drop_column("user_pseudonym")
        batch_op.drop_column("target")
        batch_op.drop_column("client")
    with op.batch_alter_table("houses", schema=None) as batch_op:
        batch_op.drop_column("share_with_third_parties")
