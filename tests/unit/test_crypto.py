"""Models are encrypted at rest with AES-256-GCM bound to their object key."""

import base64
import os

import pytest

from dashboard.crypto import DecryptionFailed, decrypt, encrypt, model_key


def test_round_trip_and_ciphertext_is_not_plaintext():
    key = model_key("some secret")
    plaintext = b"xgboost model bytes " * 100
    blob = encrypt(key, plaintext, "models/a/1.bin")
    assert plaintext[:20] not in blob
    assert decrypt(key, blob, "models/a/1.bin") == plaintext
    assert encrypt(key, plaintext, "models/a/1.bin") != blob  # fresh nonce every time


@pytest.mark.parametrize("change", ["key", "path", "bytes"])
def test_wrong_key_moved_object_or_tampering_is_detected(change):
    key = model_key("some secret")
    blob = encrypt(key, b"payload", "models/a/1.bin")
    if change == "key":
        key = model_key("another secret")
    path = "models/b/1.bin" if change == "path" else "models/a/1.bin"
    if change == "bytes":
        blob = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(DecryptionFailed):
        decrypt(key, blob, path)


def test_explicit_key_must_be_256_bits():
    assert model_key("x", base64.b64encode(os.urandom(32)).decode()) != model_key("x")
    with pytest.raises(ValueError, match="32 bytes"):
        model_key("x", base64.b64encode(b"short").decode())
