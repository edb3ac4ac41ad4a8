"""The production shape: `gunicorn wsgi:server` over PostgreSQL, driven over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_gunicorn_serves_login_ingest_and_scoped_reads(world, pg_url, tmp_path):
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": pg_url,
        "DATA_DIR": str(tmp_path),
        "DEMO_DATA": "0",
        "SECRET_KEY": TEST_SECRET,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "wsgi:server"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if requests.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:  # refused, or accepted while workers still boot
                time.sleep(0.25)
        else:
            raise AssertionError(proc.stdout.read1().decode() if proc.stdout else "gunicorn did not start")
        login = requests.post(
            base + "/api/v1/auth/login", json={"username": "consumer", "password": "correct-horse-battery"}
        )
        assert login.status_code == 200
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        items = [
            {
                "device_id": "H1-MAIN",
                "timestamp": "2026-01-05T10:00:00+02:00",
                "power_w": 2000,
                "energy_wh": 500,
            }
        ]
        assert requests.post(base + "/api/v1/measurements", json={"measurements": items}, headers=headers).json() == {
            "accepted": 1, "duplicates": 0,
        }  # fmt: skip
        params = {"resolution": "15min", "start": "2026-01-05T08:00:00Z", "end": "2026-01-05T09:00:00Z"}
        series = requests.get(base + "/api/v1/energy", params=params, headers=headers).json()["series"]
        assert series == [
            {
                "timestamp": "2026-01-05T08:00:00Z",
                "consumption_kwh": 0.5,
                "production_kwh": 0.0,
                "net_kwh": 0.5,
            }
        ]
        assert (
            requests.get(
                base + "/api/v1/energy", params=params | {"house_id": world.house2}, headers=headers
            ).status_code
            == 404
        )
        workers = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        assert workers and all(rss_mb(int(pid)) < 400 for pid in workers)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
