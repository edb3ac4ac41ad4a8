"""One object-store interface, two adapters: a local folder (embedded default) and S3/MinIO.

Models and other artefacts go through `ObjectStore`; the code that stores them never knows which
adapter it has. Writes are atomic in both: a reader sees the old object or the new one, never half.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from dashboard.config import Settings

log = logging.getLogger(__name__)
# An unreachable store fails within 10 s: 2 s per connection attempt and 2 retries (refused: under a
# second; silent: ~6.5 s), a reply awaited at most 8 s and not retried (minio's defaults, 5 retries and a
# 5-minute timeout, took 57 s). The read timeout is per socket read, not per transfer.
S3_CONNECT_TIMEOUT_S = 2
S3_READ_TIMEOUT_S = 8
S3_RETRIES = 2
UNAVAILABLE_HINT = (
    "Check S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY, or unset S3_ENDPOINT for the local folder."
)


class ObjectNotFound(KeyError):
    pass


class StoreUnavailable(RuntimeError):
    """The object store cannot be reached or refuses us. The message never names its address (API callers
    see it); the log line written where it is raised does."""


class ObjectStore(Protocol):
    def put_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def get_metadata(self, key: str) -> dict[str, str]: ...
    def exists(self, key: str) -> bool: ...
    def list_keys(self, prefix: str = "") -> list[str]: ...
    def delete(self, key: str) -> None: ...
    def ping(self) -> None: ...


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

    def ping(self) -> None:
        """Raises StoreUnavailable unless the folder is there and writable (`/readyz`)."""
        if not (self.root.is_dir() and os.access(self.root, os.W_OK | os.X_OK)):
            raise StoreUnavailable(
                "The local object store folder (DATA_DIR/objects) is missing or not writable"
            )

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
        import urllib3
        from minio import Minio

        parsed = urlparse(endpoint if "://" in endpoint else f"{'https' if secure else 'http'}://{endpoint}")
        self.endpoint = parsed.netloc
        self.bucket = bucket
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=S3_CONNECT_TIMEOUT_S, read=S3_READ_TIMEOUT_S),
            retries=urllib3.Retry(
                total=S3_RETRIES,
                connect=S3_RETRIES,
                read=0,
                backoff_factor=0.2,
                status_forcelist=(500, 502, 503, 504),
            ),  # fmt: skip
            maxsize=10,
        )
        self.client = Minio(
            self.endpoint, access_key=access_key, secret_key=secret_key, secure=parsed.scheme == "https",
            http_client=http,
        )  # fmt: skip
        with self._unreachable():
            if not self.client.bucket_exists(bucket):
                self.client.make_bucket(bucket)

    @contextmanager
    def _unreachable(self):
        """Connection failures (urllib3) and refusals other than a missing object become StoreUnavailable
        without the endpoint's address; the log has it."""
        import urllib3.exceptions
        from minio.error import S3Error

        try:
            yield
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            log.warning("Object store at %s (bucket %r) unreachable: %s", self.endpoint, self.bucket, exc)
            raise StoreUnavailable(
                f"The object store is unreachable ({exc.__class__.__name__}). {UNAVAILABLE_HINT}"
            ) from exc
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NoSuchBucket"):
                raise
            log.warning("Object store at %s (bucket %r) refused: %s", self.endpoint, self.bucket, exc)
            raise StoreUnavailable(
                f"The object store refused the request ({exc.code}). {UNAVAILABLE_HINT}"
            ) from exc

    def ping(self) -> None:
        """Raises StoreUnavailable unless the bucket answers (`/readyz`)."""
        with self._unreachable():
            self.client.bucket_exists(self.bucket)

    def put_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> None:
        with self._unreachable():
            self.client.put_object(
                self.bucket, check_key(key), io.BytesIO(data), len(data), metadata=metadata or {}
            )

    @contextmanager
    def _missing_as_not_found(self, key: str):
        from minio.error import S3Error

        try:
            with self._unreachable():
                yield
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NoSuchBucket"):
                raise ObjectNotFound(key) from None
            raise

    def get_bytes(self, key: str) -> bytes:
        with self._missing_as_not_found(key):
            response = self.client.get_object(self.bucket, check_key(key))
        try:
            with self._unreachable():
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
        with self._unreachable():
            return sorted(
                o.object_name for o in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
            )

    def delete(self, key: str) -> None:
        with self._unreachable():
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
