"""One contract, both adapters: the local folder (embedded) and the real S3 server (seaweedfs)."""

from __future__ import annotations

import os

import pytest

from dashboard.storage import (
    LocalObjectStore,
    ObjectNotFound,
    S3ObjectStore,
    StoreUnavailable,
    object_store_from_settings,
)
from tests.conftest import make_settings


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        store = object_store_from_settings(make_settings(tmp_path))
        assert isinstance(store, LocalObjectStore)
        return store
    store = object_store_from_settings(request.getfixturevalue("s3_settings"))
    assert isinstance(store, S3ObjectStore)
    return store


def test_round_trip_with_metadata(store):
    store.put_bytes("models/consumption/v1.bin", b"\x00\x01model", {"target": "consumption", "mae": "0.15"})
    assert store.get_bytes("models/consumption/v1.bin") == b"\x00\x01model"
    assert store.get_metadata("models/consumption/v1.bin") == {"target": "consumption", "mae": "0.15"}
    assert store.exists("models/consumption/v1.bin")


def test_list_by_prefix_overwrite_and_delete(store):
    for key in ("models/a/2.bin", "models/a/1.bin", "models/b/1.bin", "other/x"):
        store.put_bytes(key, key.encode())
    assert store.list_keys("models/a/") == ["models/a/1.bin", "models/a/2.bin"]
    store.put_bytes("models/a/1.bin", b"new")
    assert store.get_bytes("models/a/1.bin") == b"new"
    store.delete("models/a/1.bin")
    store.delete("models/a/1.bin")  # deleting twice is fine
    assert not store.exists("models/a/1.bin")
    assert store.list_keys("models/") == ["models/a/2.bin", "models/b/1.bin"]


def test_missing_object_raises_object_not_found(store):
    with pytest.raises(ObjectNotFound):
        store.get_bytes("models/none.bin")
    with pytest.raises(ObjectNotFound):
        store.get_metadata("models/none.bin")


def test_five_megabytes_round_trip(store):
    blob = os.urandom(5 * 1024 * 1024)
    store.put_bytes("big/model.bin", blob)
    assert store.get_bytes("big/model.bin") == blob


@pytest.mark.parametrize("key", ["../escape", "/abs", "a//b", "a/./b", ""])
def test_keys_cannot_escape_the_store(store, key):
    with pytest.raises(ValueError):
        store.put_bytes(key, b"x")


def test_wrong_credentials_say_what_to_check_and_log_the_endpoint(s3_server, tmp_path, caplog):
    """The message reaches API callers, so it names the settings to check but not the store's address;
    the operator's log has the address."""
    settings = make_settings(
        tmp_path, S3_ENDPOINT=s3_server.endpoint, S3_ACCESS_KEY="nobody", S3_SECRET_KEY="wrong"
    )
    with pytest.raises(StoreUnavailable, match="refused the request .*S3_ACCESS_KEY") as raised:
        object_store_from_settings(settings)
    assert s3_server.endpoint not in str(raised.value)
    assert s3_server.endpoint.split(":")[-1] not in str(raised.value)
    assert any(s3_server.endpoint in r.getMessage() for r in caplog.records if r.name == "dashboard.storage")
