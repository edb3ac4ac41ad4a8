"""API keys get a role (third_party, gateway) and a gateway key its houses

Revision ID: 0009_api_key_roles
Revises: 0008_personal_fields
Create Date: 2026-12-07 12:00:00

Existing keys keep what they could do: the server default makes them `third_party` (read-only aggregates).
A `gateway` key writes readings for the devices of the houses linked in `api_key_houses` and reads nothing;
a deleted house or key takes its links with it (ON DELETE CASCADE). The downgrade drops the links and the
role; it refuses while a gateway key is still active, since without its role that key would become a
third-party key able to read aggregates: revoke it first.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_api_key_roles"
down_revision = "0008_personal_fields"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=20), nullable=False, server_default="third_party")
        )
        batch_op.create_check_constraint("ck_api_keys_role", "role IN ('third_party', 'gateway')")
    op.create_table(
        "api_key_houses",
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("house_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_keys.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["house_id"], ["houses.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("api_key_id", "house_id"),
    )
    op.create_index("ix_api_key_houses_house_id", "api_key_houses", ["house_id"], unique=False)


def downgrade() -> None:
    keys = sa.table("api_keys", sa.column("role", sa.String), sa.column("revoked_at", sa.DateTime))
    active = op.get_bind().scalar(
        sa.select(sa.func.count())
        .select_from(keys)
        .where(keys.c.role == "gateway", keys.c.revoked_at.is_(None))
    )
    if active:
        raise RuntimeError(
            f"{active} gateway API key(s) are active: before 0009 they would read aggregates as third-party "
            "keys. Revoke them (DELETE /api/v1/api-keys/{id} or the Admin page) and downgrade again."
        )
    op.drop_index("ix_api_key_houses_house_id", table_name="api_key_houses")
    op.drop_table("api_key_houses")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_constraint("ck_api_keys_role", type_="check")
        batch_op.drop_column("role")
