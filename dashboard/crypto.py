"""Encryption at rest for stored models (spec 1.3: AES-256).

AES-256-GCM with a fresh 96-bit nonce per object and the object's key as associated data, so a
ciphertext cannot be swapped to another key path unnoticed. The 256-bit key comes from
MODEL_ENCRYPTION_KEY (base64) or is derived from SECRET_KEY with HKDF-SHA256, so every process that
shares the secret can read what another wrote.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"AGM1"  # format marker + version, so a future format can be told apart


class DecryptionFailed(Exception):
    """Wrong key, tampered bytes, or an object moved to another key path."""


def model_key(secret_key: str, explicit_b64: str | None = None) -> bytes:
    if explicit_b64:
        key = base64.b64decode(explicit_b64)
        if len(key) != 32:
            raise ValueError(
                "MODEL_ENCRYPTION_KEY must be 32 bytes, base64-encoded (openssl rand -base64 32)"
            )
        return key
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"aggregator model store").derive(
        secret_key.encode()
    )


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
