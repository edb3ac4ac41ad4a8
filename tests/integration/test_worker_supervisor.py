"""The worker supervisor (`python -m jobs.worker`): a worker that dies is restarted with capped exponential
back-off and the supervisor never exits because of it; SIGTERM stops it and its workers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from jobs.worker import RESTART_MAX_S, restart_delay
from tests.private_services import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_the_back_off_doubles_and_is_capped():
    assert [restart_delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert restart_delay(100) == RESTART_MAX_S


def start_supervisor(redis_url: str, log: Path, *kinds: str) -> subprocess.Popen:
    env = os.environ | {"REDIS_URL": redis_url}
    return subprocess.Popen([sys.executable, "-m", "jobs.worker", *kinds], cwd=ROOT, env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_a_worker_that_keeps_dying_is_restarted_with_back_off_and_sigterm_ends_all(tmp_path):
    """Redis is away (a closed port): each worker exits at once; the supervisor keeps going."""
    log = tmp_path / "supervisor.log"
    proc = start_supervisor(f"redis://127.0.0.1:{free_port()}/0", log, "forecast")
    try:
        deadline = time.monotonic() + 60
        delays: list[float] = []
        while time.monotonic() < deadline and len(delays) < 3:
            delays = [float(d) for d in re.findall(r"restarting in (\d+) s", log.read_text())]
            time.sleep(0.25)
        assert delays[:3] == [1, 2, 4], log.read_text()[-2000:]
        assert proc.poll() is None  # one child's death never ends the supervisor
    finally:
        code = stop(proc)
    assert code == 0


def test_a_killed_worker_is_replaced_and_sigterm_stops_the_workers(redis_url, tmp_path):
    from redis import Redis
    from rq import Worker

    log = tmp_path / "supervisor.log"
    proc = start_supervisor(redis_url, log, "forecast", "forecast")
    conn = Redis.from_url(redis_url)

    def live() -> dict[str, int]:
        return {w.name: w.pid for w in Worker.all(connection=conn) if w.death_date is None}

    try:
        deadline = time.monotonic() + 60
        while len(live()) < 2 and time.monotonic() < deadline:
            time.sleep(0.25)
        first = live()
        assert len(first) == 2, log.read_text()[-2000:]
        victim, pid = next(iter(first.items()))
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        while (victim in live() or len(live()) < 2) and time.monotonic() < killed + 30:
            time.sleep(0.1)
        after = live()
        assert len(after) == 2 and victim not in after, (after, log.read_text()[-2000:])
        print(f"\nworker replaced {time.monotonic() - killed:.1f} s after the kill")
        workers = children(proc.pid)
        assert len(workers) == 2
    finally:
        code = stop(proc)
        conn.close()
    assert code == 0
    assert all(not Path(f"/proc/{p}").exists() for p in workers)
