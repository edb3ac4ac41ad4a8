"""The workers' healthcheck asks whether a registered worker's process still lives; a zombie does not."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs.worker import _pid_alive

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def _state(pid: int) -> bytes:
    return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]


def test_a_running_process_is_alive_and_its_zombie_is_not():
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert _pid_alive(child.pid)
        child.stdin.close()  # it exits; nobody reaps it until wait() below
        for _ in range(200):
            if _state(child.pid) == b"Z":
                break
            time.sleep(0.02)
        assert _state(child.pid) == b"Z"
        assert not _pid_alive(child.pid)
    finally:
        child.wait()
    assert not _pid_alive(child.pid)


def test_no_pid_is_not_alive():
    assert not _pid_alive(None) and not _pid_alive(0)
