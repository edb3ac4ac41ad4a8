"""A PostgreSQL and a redis-server of a test's own, on spare ports, that the test may stop and restart
(the machine's services on 5432 and 6379 are never touched). Missing binaries fail under CI=true and
skip elsewhere (tests/conftest.py `service_missing`)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import service_missing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin_dir() -> Path | None:
    """The newest PostgreSQL server binaries of the machine (/usr/lib/postgresql/N/bin), or PG_BIN_DIR."""
    if os.environ.get("PG_BIN_DIR"):
        return Path(os.environ["PG_BIN_DIR"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def wait_port(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


@dataclass
class PrivatePostgres:
    bin_dir: Path
    data: Path
    port: int
    log: Path
    run_as: dict = field(default_factory=dict)  # PostgreSQL refuses to run as root: then as `nobody`

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), *args],
                       check=True, capture_output=True, timeout=60, **self.run_as)  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-w", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-w", "-m", mode, "stop")

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.data.parent, ignore_errors=True)


def start_private_postgres() -> PrivatePostgres:
    """initdb in a fresh folder (under /tmp, so `nobody` can reach it when the tests run as root), start."""
    import tempfile

    bin_dir = pg_bin_dir()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        service_missing(
            "PostgreSQL server binaries", "no initdb/pg_ctl (apt-get install postgresql) or set PG_BIN_DIR"
        )
    workdir = Path(tempfile.mkdtemp(prefix="aggpg-"))
    run_as: dict = {}
    if os.geteuid() == 0:
        import pwd

        nobody = pwd.getpwnam("nobody")
        run_as = {"user": nobody.pw_uid, "group": nobody.pw_gid}
        os.chmod(workdir, 0o755)
        os.chown(workdir, nobody.pw_uid, nobody.pw_gid)
    data = workdir / "data"
    initdb = [
        str(bin_dir / "initdb"),
        "-D",
        str(data),
        "-U",
        "postgres",
        "-A",
        "trust",
        "--no-sync",
        "-E",
        "UTF8",
    ]
    subprocess.run(initdb, check=True, capture_output=True, timeout=120, **run_as)
    pg = PrivatePostgres(bin_dir, data, free_port(), workdir / "postgres.log", run_as)
    pg.start()
    return pg


@dataclass
class PrivateRedis:
    port: int
    workdir: Path
    proc: subprocess.Popen | None = field(default=None)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            service_missing("redis-server", "the binary is missing (apt-get install redis-server)")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
                "--appendfsync", "always", "--dir", str(self.workdir)]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        if not wait_port(self.port, 15):
            raise RuntimeError(f"redis-server did not listen on {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


def start_private_redis(workdir: Path) -> PrivateRedis:
    redis = PrivateRedis(free_port(), workdir)
    redis.start()
    return redis
