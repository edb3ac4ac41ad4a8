"""One object-store interface, two adapters: a local folder (embedded default) and S3/MinIO.

Models and other artefacts go through `ObjectStore`; the code that stores them never knows which
adapter it has. Writes are atomic in both: a reader sees the old object or the new one, never half.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from dashboard.config import Settings


class ObjectNotFound(KeyError):
    pass


class StoreUnavailable(RuntimeError):
    pass


class ObjectStore(Protocol):
    def put_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def get_metadata(self, key: str) -> dict[str, str]: ...
    def exists(self, key: str) -> bool: ...
    def list_keys(self, prefix: str = "") -> list[str]: ...
    def delete(self, key: str) -> None: ...


def check_key(key: str) -> str:
    """Keys are relative, '/'-separated paths without '..', so no key escapes its store."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in key:
        raise ValueError(f"Invalid object key {key!r}")
    return key


class LocalObjectStore:
    """Objects as files under `root`; metadata in a sidecar `<file>.meta.json`."""

    META = ".meta.json"

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)  # private: objects are 0600 (mkstemp)
        self.root.chmod(0o700)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        for folder in reversed(path.parents):  # new folders 0700 (mkdir(parents=True) would make them 0755)
            folder.mkdir(mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> None:
        path = self._path(key)
        if key.endswith(self.META):
            raise ValueError(f"Keys may not end with {self.META}")
        self._atomic_write(Path(str(path) + self.META), json.dumps(metadata or {}).encode())
        self._atomic_write(path, data)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    def get_metadata(self, key: str) -> dict[str, str]:
        if not self.exists(key):
            raise ObjectNotFound(key)
        meta = Path(str(self._path(key)) + self.META)
        return json.loads(meta.read_text()) if meta.exists() else {}

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_keys(self, prefix: str = "") -> list[str]:
        keys = []
        for path in self.root.rglob("*"):
            name = path.relative_to(self.root).as_posix()
            if path.is_file() and not name.endswith(self.META) and not path.name.startswith(".tmp-"):
                if name.startswith(prefix):
                    keys.append(name)
        return sorted(keys)

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        Path(str(path) + self.META).unlink(missing_ok=True)


class S3ObjectStore:
    """S3/MinIO through the minio client. A PUT of one object is atomic on S3."""

    def __init__(
        self, endpoint: str, access_key: str | None, secret_key: str | None, bucket: str, secure: bool
    ):
        from minio import Minio

        parsed = urlparse(endpoint if "://" in endpoint else f"{'https' if secure else 'http'}://{endpoint}")
        self.endpoint = parsed.netloc
        self.bucket = bucket
        self.client = Minio(
            self.endpoint, access_key=access_key, secret_key=secret_key, secure=parsed.scheme == "https"
        )
        try:
            if not self.client.bucket_exists(bucket):
                self.client.make_bucket(bucket)
        except Exception as exc:  # noqa: BLE001 - urllib3 and S3 errors alike mean "not usable"
            raise StoreUnavailable(
                f"Object store at {self.endpoint} (bucket {bucket!r}) is not usable: {exc}. "
                "Check S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY, or unset S3_ENDPOINT for the local folder."
            ) from exc

    def put_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> None:
        self.client.put_object(
            self.bucket, check_key(key), io.BytesIO(data), len(data), metadata=metadata or {}
        )

    @contextmanager
    def _missing_as_not_found(self, key: str):
        from minio.error import S3Error

        try:
            yield
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NoSuchBucket"):
                raise ObjectNotFound(key) from None
            raise

    def get_bytes(self, key: str) -> bytes:
        with self._missing_as_not_found(key):
            response = self.client.get_object(self.bucket, check_key(key))
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def get_metadata(self, key: str) -> dict[str, str]:
        with self._missing_as_not_found(key):
            stat = self.client.stat_object(self.bucket, check_key(key))
        prefix = "x-amz-meta-"
        return {k[len(prefix) :].lower(): v for k, v in stat.metadata.items() if k.lower().startswith(prefix)}

    def exists(self, key: str) -> bool:
        try:
            self.get_metadata(key)
            return True
        except ObjectNotFound:
            return False

    def list_keys(self, prefix: str = "") -> list[str]:
        return sorted(
            o.object_name for o in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
        )

    def delete(self, key: str) -> None:
        self.client.remove_object(self.bucket, check_key(key))


def object_store_from_settings(settings: Settings) -> ObjectStore:
    if settings.s3_endpoint:
        return S3ObjectStore(
            settings.s3_endpoint,
            settings.s3_access_key,
            settings.s3_secret_key,
            settings.s3_bucket,
            settings.s3_secure,
        )
    return LocalObjectStore(settings.objects_dir)
