"""personal fields encrypted at rest: houses.address, users.full_name and users.email; houses.name encrypted
in place (AES-256-GCM, dashboard/fieldcrypt.py)

Revision ID: 0008_personal_fields
Revises: 0007_privacy
Create Date: 2026-12-07 10:30:00

The data key comes from the engine the migration runs on (dashboard/db.py:make_engine installs the
settings' DATA_ENCRYPTION_KEY, else the key derived from SECRET_KEY): run it with `python -m dashboard
init-db` or the app's start, not bare `alembic`. Existing house names are encrypted in batches of
BATCH rows, in the migration's transaction; the downgrade decrypts them back (and drops the new columns,
with what they held).
"""

import sqlalchemy as sa
from alembic import op

from dashboard.fieldcrypt import FieldDecryptionFailed, keyring_of

revision = "0008_personal_fields"
down_revision = "0007_privacy"
branch_labels = None
depends_on = None

BATCH = 500
AAD = "houses.name"


def _rewrite_names(transform) -> None:
    """Apply `transform` to every house name, BATCH rows at a time in id order."""
    conn = op.get_bind()
    houses = sa.table("houses", sa.column("id", sa.Integer), sa.column("name", sa.Text))
    last = 0
    while True:
        batch = conn.execute(
            sa.select(houses.c.id, houses.c.name).where(houses.c.id > last).order_by(houses.c.id).limit(BATCH)
        ).all()
        if not batch:
            return
        conn.execute(
            houses.update().where(houses.c.id == sa.bindparam("b_id")).values(name=sa.bindparam("b_name")),
            [{"b_id": i, "b_name": transform(name)} for i, name in batch],
        )
        last = batch[-1][0]


def _keyring():
    try:
        return keyring_of(op.get_bind().dialect)
    except FieldDecryptionFailed as exc:
        raise RuntimeError(f"Migration 0008 needs the data key: {exc}") from None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":  # SQLite ignores VARCHAR lengths (and a table rebuild
        # there would cascade-delete every device through the foreign keys)
        # ciphertext is longer than the 120 characters a name may have
        op.alter_column(
            "houses", "name", existing_type=sa.String(length=120), type_=sa.Text(), existing_nullable=False
        )
    with op.batch_alter_table("houses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address", sa.Text(), nullable=True))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("full_name", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("email", sa.Text(), nullable=True))
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT count(*) FROM houses")).scalar():
        keyring = _keyring()
        _rewrite_names(lambda name: keyring.encrypt(name, AAD))


def downgrade() -> None:
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT count(*) FROM houses")).scalar():
        keyring = _keyring()
        _rewrite_names(lambda stored: keyring.decrypt(stored, AAD)[:120])
    # plain DROP COLUMN (SQLite 3.35+): a batch rebuild of the table on SQLite would cascade-delete
    # every device and membership through the foreign keys
    for table, column in (("users", "email"), ("users", "full_name"), ("houses", "address")):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    if conn.dialect.name == "postgresql":
        op.alter_column(
            "houses", "name", existing_type=sa.Text(), type_=sa.String(length=120), existing_nullable=False
        )
