"""Personal data at rest: AES-256-GCM per column value (issue 13 section 3, docs/privacy.md).

A column typed `EncryptedText("houses.name")` stores `v1:<key id>:<base64(nonce || ciphertext+tag)>`:
a fresh 96-bit nonce per write (the same name written twice gives two ciphertexts) and the column's
`table.column` as associated data, so a value copied into another column fails to decrypt (a value copied
to another row of the same column still reads: the row's id is not known before its insert). The key is
the data key of dashboard/crypto.py (DATA_ENCRYPTION_KEY, else derived from SECRET_KEY); its key id
(8 hex digits of an HMAC of the key, never the key) says which key wrote a value, so values written
under an earlier key stay readable while that key is listed in DATA_ENCRYPTION_KEY_OLD (a staged
rotation). `python -m dashboard rotate-keys` re-encrypts every column below (`ENCRYPTED_COLUMNS`).

The keyring lives on the engine's dialect (`install`, called by dashboard/db.py:make_engine), so each
engine reads and writes under its own settings' keys, and migrations running on that engine's connection
find it there too. The database can no longer compare or sort these columns: a comparison in SQL raises
(`EncryptedText.comparator_factory`), so code sorts and filters them in Python after loading.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Text
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator

from dashboard.config import Settings, parse_key_b64
from dashboard.crypto import DecryptionFailed, data_key

VERSION = "v1"
NONCE_BYTES = 12

# every encrypted column: (table, column); rotate-keys and the migration walk these
ENCRYPTED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("houses", "name"),
    ("houses", "address"),
    ("users", "full_name"),
    ("users", "email"),
    ("alert_rules", "webhook_url"),
    ("alert_rules", "webhook_secret"),
)


class FieldDecryptionFailed(DecryptionFailed):
    """A stored value that this keyring cannot read: wrong or missing key, tampered, or moved."""


def key_id(key: bytes) -> str:
    """A short public name for a key (HMAC of a constant under the key: it reveals nothing of it)."""
    return hmac.new(key, b"aggregator data key id", hashlib.sha256).hexdigest()[:8]


@dataclass(frozen=True)
class Keyring:
    """The current data key (writes) and every key that may still be read, by key id."""

    current: bytes
    older: tuple[bytes, ...] = ()
    _by_id: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for key in (self.current, *self.older):
            self._by_id.setdefault(key_id(key), key)

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    def encrypt(self, plaintext: str, associated: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.current).encrypt(nonce, plaintext.encode("utf-8"), associated.encode())
        return f"{VERSION}:{self.current_id}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, stored: str, associated: str) -> str:
        version, _, rest = stored.partition(":")
        kid, _, body = rest.partition(":")
        if version != VERSION or not kid or not body:
            raise FieldDecryptionFailed(
                f"{associated} holds a value that is not encrypted (no '{VERSION}:<key id>:' prefix); "
                "run the migrations (python -m dashboard init-db) before starting the app"
            )
        key = self._by_id.get(kid)
        if key is None:
            raise FieldDecryptionFailed(
                f"{associated} was encrypted under data key id {kid}, but DATA_ENCRYPTION_KEY is key id "
                f"{self.current_id} and DATA_ENCRYPTION_KEY_OLD holds "
                f"{', '.join(key_id(k) for k in self.older) or 'no key'}; add the key that wrote it to "
                "DATA_ENCRYPTION_KEY_OLD (or set it as DATA_ENCRYPTION_KEY)"
            )
        try:
            blob = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            blob = b""
        if len(blob) < NONCE_BYTES + 16:
            raise FieldDecryptionFailed(
                f"{associated} holds a damaged encrypted value (bad base64 or too short)"
            )
        try:
            plain = AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated.encode())
        except InvalidTag:
            raise FieldDecryptionFailed(
                f"{associated} failed authentication under key id {kid}: the value was tampered with or "
                "copied from another column"
            ) from None
        return plain.decode("utf-8")


def keyring_for(settings: Settings) -> Keyring:
    current = data_key(settings.secret_key, settings.data_encryption_key)
    older = tuple(parse_key_b64("DATA_ENCRYPTION_KEY_OLD", k) for k in settings.data_encryption_key_old)
    return Keyring(current, older)


_ATTRIBUTE = "aggregator_keyring"
_process_default: Keyring | None = None


def install(engine, keyring: Keyring) -> None:
    """Give the engine its keyring; the last one installed also serves engines made without one."""
    global _process_default
    setattr(engine.dialect, _ATTRIBUTE, keyring)
    _process_default = keyring


def keyring_of(dialect) -> Keyring:
    keyring = getattr(dialect, _ATTRIBUTE, None) or _process_default
    if keyring is None:
        raise FieldDecryptionFailed(
            "No data encryption key for this database connection: create the engine with "
            "dashboard.db.make_engine(settings), which installs DATA_ENCRYPTION_KEY (or the SECRET_KEY-derived key)"
        )
    return keyring


_ALLOWED_OPERATORS = {operators.is_, operators.is_not}


class EncryptedText(TypeDecorator):
    """A text column stored as AES-256-GCM ciphertext bound to `table.column` (None stays NULL)."""

    impl = Text
    cache_ok = True

    def __init__(self, associated: str):
        super().__init__()
        self.associated = associated

    class comparator_factory(TypeDecorator.Comparator):  # noqa: N801 - SQLAlchemy's hook name
        def operate(self, op, *other, **kwargs):
            if op not in _ALLOWED_OPERATORS:
                raise TypeError(
                    f"{self.expr} is encrypted at rest: the database cannot compare or sort it "
                    f"({getattr(op, '__name__', op)}); load the rows and compare or sort in Python"
                )
            return super().operate(op, *other, **kwargs)

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"{self.associated} takes text, got {type(value).__name__}")
        return keyring_of(dialect).encrypt(value, self.associated)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return keyring_of(dialect).decrypt(value, self.associated)


@dataclass(frozen=True)
class Rotation:
    counts: dict[str, int]  # table.column -> values re-encrypted
    new_key_id: str


def rotate(connection, reader: Keyring, new_key: bytes) -> Rotation:
    """Re-encrypt every value of every encrypted column under `new_key`, on `connection` (the caller's
    transaction: all or nothing). `reader` must read every stored value (its current and older keys)."""
    from sqlalchemy import bindparam, column, select, table, text

    writer = Keyring(new_key)
    if connection.dialect.name == "postgresql":  # readers go on; writers wait until the commit
        connection.execute(text("LOCK TABLE houses, users, alert_rules IN EXCLUSIVE MODE"))
    counts = {}
    for table_name, column_name in ENCRYPTED_COLUMNS:
        rows = table(table_name, column("id"), column(column_name, Text))
        aad = f"{table_name}.{column_name}"
        values = connection.execute(
            select(rows.c.id, rows.c[column_name]).where(rows.c[column_name].is_not(None)).order_by(rows.c.id)
        ).all()
        if values:
            connection.execute(
                rows.update()
                .where(rows.c.id == bindparam("b_id"))
                .values({column_name: bindparam("b_value")}),
                [{"b_id": i, "b_value": writer.encrypt(reader.decrypt(v, aad), aad)} for i, v in values],
            )
        counts[aad] = len(values)
    return Rotation(counts, writer.current_id)


def check_readable(connection, keyring: Keyring) -> None:
    """Refuse a keyring that cannot read what is stored (FieldDecryptionFailed naming the missing key ids),
    so a wrong or lost key stops the start instead of failing every page that shows a name."""
    from sqlalchemy import and_, column, func, select, table

    known = [f"{VERSION}:{kid}:%" for kid in sorted(keyring._by_id)]
    problems = []
    for table_name, column_name in ENCRYPTED_COLUMNS:
        values = column(column_name, Text)
        stranger = and_(values.is_not(None), *(values.not_like(pattern) for pattern in known))
        ids = connection.execute(
            select(func.substr(values, 4, 8), func.count()).select_from(table(table_name)).where(stranger)
            .group_by(func.substr(values, 4, 8))
        ).all()  # fmt: skip
        problems += [f"{n} in {table_name}.{column_name} under key id {kid}" for kid, n in ids]
    if problems:
        raise FieldDecryptionFailed(
            f"The stored personal data cannot be read: {'; '.join(problems[:8])}. DATA_ENCRYPTION_KEY is key id "
            f"{keyring.current_id} (derived from SECRET_KEY when unset: a changed SECRET_KEY changes it) and "
            f"DATA_ENCRYPTION_KEY_OLD holds {', '.join(key_id(k) for k in keyring.older) or 'no key'}. Set "
            "DATA_ENCRYPTION_KEY (or add to DATA_ENCRYPTION_KEY_OLD) the key that wrote them"
        )
