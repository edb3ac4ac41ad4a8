"""Keys and encryption at rest for stored models (spec 1.3: AES-256).

One secret (SECRET_KEY) is never used directly: each use gets its own 256-bit key, derived with
HKDF-SHA256 under its own `info` label (`derive_key`), so a key that leaks from one use (a pseudonym
table, a model file) says nothing about the others, and the JWT signing key is not the model key.

| use | label | override |
|---|---|---|
| JWT signing (access and refresh tokens) | `aggregator jwt signing` | |
| models in the object store | `aggregator model store` (unchanged: models stored before stay readable) | MODEL_ENCRYPTION_KEY |
| personal data at rest | `aggregator personal data` | DATA_ENCRYPTION_KEY (when set) |
| third-party pseudonyms | `aggregator pseudonyms` | |
| the login form's CSRF token | `aggregator login form` | |

Models: AES-256-GCM with a fresh 96-bit nonce per object and the object's key as associated data, so a
ciphertext cannot be swapped to another key path unnoticed. Every process that shares the secret (or
MODEL_ENCRYPTION_KEY) can read what another wrote.
"""

from __future__ import annotations

import functools
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dashboard.config import parse_key_b64

MAGIC = b"AGM1"  # format marker + version, so a future format can be told apart

JWT_LABEL = b"aggregator jwt signing"
MODEL_LABEL = b"aggregator model store"  # the label models were always stored under: do not change
DATA_LABEL = b"aggregator personal data"
PSEUDONYM_LABEL = b"aggregator pseudonyms"
LOGIN_FORM_LABEL = b"aggregator login form"


class DecryptionFailed(Exception):
    """Wrong key, tampered bytes, or an object moved to another key path."""


@functools.lru_cache(maxsize=64)
def derive_key(secret_key: str, label: bytes) -> bytes:
    """A 256-bit key for one use (`label`), derived from the app's secret with HKDF-SHA256."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(secret_key.encode())


def model_key(secret_key: str, explicit_b64: str | None = None) -> bytes:
    """MODEL_ENCRYPTION_KEY when set, else derived from the secret (as every earlier version did)."""
    if explicit_b64:
        return parse_key_b64("MODEL_ENCRYPTION_KEY", explicit_b64)
    return derive_key(secret_key, MODEL_LABEL)


def jwt_key(secret_key: str) -> bytes:
    return derive_key(secret_key, JWT_LABEL)


def data_key(secret_key: str, explicit_b64: str | None = None) -> bytes:
    """DATA_ENCRYPTION_KEY when set, else derived from the secret."""
    if explicit_b64:
        return parse_key_b64("DATA_ENCRYPTION_KEY", explicit_b64)
    return derive_key(secret_key, DATA_LABEL)


def pseudonym_key(secret_key: str) -> bytes:
    return derive_key(secret_key, PSEUDONYM_LABEL)


def backup_key(secret_key: str) -> bytes:
    """The key of encrypted backups made without --key-file (dashboard/backup.py)."""
    return derive_key(secret_key, b"aggregator backup")


def login_form_key(secret_key: str) -> bytes:
    return derive_key(secret_key, LOGIN_FORM_LABEL)


def encrypt(key: bytes, plaintext: bytes, associated: str) -> bytes:
    nonce = os.urandom(12)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, plaintext, associated.encode())


def decrypt(key: bytes, blob: bytes, associated: str) -> bytes:
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 12 + 16:
        raise DecryptionFailed("Not an encrypted model object")
    nonce = blob[len(MAGIC) : len(MAGIC) + 12]
    try:
        return AESGCM(key).decrypt(nonce, blob[len(MAGIC) + 12 :], associated.encode())
    except InvalidTag:
        raise DecryptionFailed("Model object failed authentication (wrong key or tampered)") from None
