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


def test_each_use_has_its_own_key_and_the_model_key_is_unchanged():
    """Models stored before the keys were split stay readable: the model key is still HKDF-SHA256 of the
    secret under the label 'aggregator model store'; JWTs, data, pseudonyms and the login form each get
    another key."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from dashboard.crypto import data_key, jwt_key, login_form_key, pseudonym_key

    secret = "s" * 40
    before = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"aggregator model store").derive(
        secret.encode()
    )
    assert model_key(secret) == before
    keys = [
        model_key(secret),
        jwt_key(secret),
        data_key(secret),
        pseudonym_key(secret),
        login_form_key(secret),
    ]
    assert len(set(keys)) == 5 and all(len(k) == 32 for k in keys)
    assert secret.encode() not in keys


@pytest.mark.parametrize("bad", ["abc", "not base64!" * 4, base64.b64encode(b"x" * 31).decode()])
def test_a_malformed_explicit_key_says_how_to_make_one(bad):
    with pytest.raises(ValueError, match="MODEL_ENCRYPTION_KEY must be 32 bytes.*os.urandom"):
        model_key("x", bad)
