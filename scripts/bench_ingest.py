"""Ingestion benchmark (`make bench-ingest`): the real HTTP server (gunicorn) over PostgreSQL.

Measures
1. throughput: readings/s posted in batches of 1,000 by concurrent clients;
2. ingest-to-visible latency: a single reading's POST until it shows in GET /api/v1/energy, p50/p99,
   while a background client keeps 1,000 readings/s flowing;
3. the limit: a raw PostgreSQL COPY of the same rows into a bare table;
4. memory: the RSS of each gunicorn worker afterwards.
It creates and drops its own database; nothing else is touched. Prints a Markdown block for
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.config import load_settings  # noqa: E402
from dashboard.db import make_engine, make_session_factory, migrate  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """A keep-alive HTTP client (one per thread) so the benchmark measures the server, not TCP setup."""

    def __init__(self, port: int, token: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.conn.request("POST", path, body=body, headers=self.headers)
        r = self.conn.getresponse()
        return r.status, r.read()

    def get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", path, headers=self.headers)
        r = self.conn.getresponse()
        return r.status, r.read()


def make_batches(serials: list[str], start: datetime, n_batches: int, batch: int) -> list[bytes]:
    """Batches in arrival order: each batch is the next timestamps for a slice of devices."""
    bodies = []
    per_step = len(serials)
    i = 0
    for _ in range(n_batches):
        items = []
        for _ in range(batch):
            step, d = divmod(i, per_step)
            ts = start + timedelta(seconds=10 * step)
            items.append(
                {
                    "device_id": serials[d],
                    "timestamp": ts.isoformat(),
                    "power_w": 800.0 + (i % 97),
                    "energy_wh": round((800.0 + (i % 97)) * 10 / 3600, 4),
                    "voltage_v": 229.0 + (i % 7) * 0.5,
                    "current_a": 3.6,
                    "power_factor": 0.96,
                }
            )
            i += 1
        bodies.append(json.dumps({"measurements": items}).encode())
    return bodies


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def worker_pids(master: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=400)
    ap.add_argument("--batches", type=int, default=120, help="throughput phase: batches of --batch")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--probes", type=int, default=300)
    args = ap.parse_args()

    db_name = f"aggbench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{db_name}"'))
    db_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + db_name
    tmp = Path(f"/tmp/{db_name}")
    tmp.mkdir()
    env = os.environ | {
        "DATABASE_URL": db_url,
        "DATA_DIR": str(tmp),
        "DEMO_DATA": "0",
        "SECRET_KEY": "bench-" + "k" * 40,
    }
    env.pop("REDIS_URL", None)
    settings = load_settings(env)
    engine = make_engine(settings)
    migrate(engine)
    factory = make_session_factory(engine)

    from dashboard.auth import create_user
    from dashboard.clock import utcnow
    from dashboard.schema import Device, House

    with factory() as s:
        houses = [House(name=f"B{i}", created_at=utcnow()) for i in range(args.devices)]
        s.add_all(houses)
        s.flush()
        s.add_all(
            Device(serial=f"BM{i:05d}", name="meter", kind="meter", direction="consumption", house_id=h.id,
                   created_at=utcnow())
            for i, h in enumerate(houses)
        )  # fmt: skip
        probe_house = House(name="probe", created_at=utcnow())
        s.add(probe_house)
        s.flush()
        s.add(Device(serial="PROBE", name="probe", kind="meter", direction="consumption", house_id=probe_house.id,
                     created_at=utcnow()))  # fmt: skip
        create_user(s, "bench", "bench-password", "admin")
        s.commit()
        probe_house_id = probe_house.id
    serials = [f"BM{i:05d}" for i in range(args.devices)]

    port = free_port()
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "-b", f"127.0.0.1:{port}", "--log-level",
         "warning", "wsgi:server"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        for _ in range(120):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.5)
        time.sleep(2)
        login = http.client.HTTPConnection("127.0.0.1", port)
        login.request("POST", "/api/v1/auth/login", body=json.dumps({"username": "bench", "password": "bench-password"}),
                      headers={"Content-Type": "application/json"})  # fmt: skip
        token = json.loads(login.getresponse().read())["access_token"]

        # ---- 1. throughput ----
        start = datetime(2026, 1, 1, tzinfo=UTC)
        bodies = make_batches(serials, start, args.batches, args.batch)
        warm = make_batches(serials, start - timedelta(days=1), args.workers * 2, args.batch)
        local = threading.local()

        def client() -> Client:
            if not hasattr(local, "c"):
                local.c = Client(port, token)
            return local.c

        def send(body: bytes) -> float:
            t = time.perf_counter()
            status, payload = client().post("/api/v1/measurements", body)
            assert status == 200, payload[:300]
            return time.perf_counter() - t

        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(send, warm))
            t0 = time.perf_counter()
            batch_times = list(pool.map(send, bodies))
            elapsed = time.perf_counter() - t0
        throughput = args.batches * args.batch / elapsed
        print(f"throughput: {throughput:,.0f} readings/s ({args.batches} x {args.batch} in {elapsed:.1f}s, "
              f"batch p50 {statistics.median(batch_times) * 1000:.0f} ms)")  # fmt: skip

        # ---- 2. ingest-to-visible latency under 1,000 readings/s of background load ----
        stop = threading.Event()
        bg_bodies = make_batches(serials, start + timedelta(days=2), 600, 1000)

        def background() -> None:
            c = Client(port, token)
            for body in bg_bodies:
                if stop.is_set():
                    return
                t = time.perf_counter()
                c.post("/api/v1/measurements", body)
                stop.wait(max(0.0, 1.0 - (time.perf_counter() - t)))

        bg = threading.Thread(target=background, daemon=True)
        bg.start()
        probe = Client(port, token)
        latencies = []
        # Each probe reading gets its own 15-minute bucket, so "visible" means "the bucket is there".
        probe_start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=5)
        for k in range(args.probes):
            bucket = probe_start + timedelta(minutes=15 * k)
            body = json.dumps({"measurements": [{"device_id": "PROBE", "timestamp": bucket.isoformat(),
                                                 "power_w": 1000.0, "energy_wh": 250.0}]}).encode()  # fmt: skip
            end = bucket + timedelta(minutes=15)
            query = (f"/api/v1/energy?resolution=15min&house_id={probe_house_id}"
                     f"&start={bucket:%Y-%m-%dT%H:%M:%SZ}&end={end:%Y-%m-%dT%H:%M:%SZ}")  # fmt: skip
            t = time.perf_counter()
            status, _ = probe.post("/api/v1/measurements", body)
            assert status == 200
            while not json.loads(probe.get(query)[1])["series"]:
                pass
            latencies.append(time.perf_counter() - t)
            time.sleep(0.05)
        stop.set()
        bg.join(timeout=5)
        lat_ms = sorted(x * 1000 for x in latencies)
        p50 = statistics.median(lat_ms)
        p99 = lat_ms[int(0.99 * (len(lat_ms) - 1))]
        print(
            f"ingest-to-visible under 1,000 readings/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(lat_ms)} probes)"
        )

        rss = [rss_mb(p) for p in worker_pids(gunicorn.pid)]
        print(f"gunicorn worker RSS: {', '.join(f'{r:.0f}' for r in rss)} MB")
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=30)

    # ---- 3. the limit: raw COPY of the same rows ----
    rows = io.StringIO()
    for body in bodies:
        for m in json.loads(body)["measurements"]:
            rows.write(f"{m['device_id']},{m['timestamp']},{m['power_w']},{m['energy_wh']},{m['voltage_v']},"
                       f"{m['current_a']},{m['power_factor']}\n")  # fmt: skip
    raw = psycopg2.connect(db_url.replace("postgresql+psycopg2", "postgresql"))
    with raw, raw.cursor() as cur:
        cur.execute("CREATE TABLE copy_limit (device text, ts timestamptz, power_w float8, energy_wh float8, "
                    "voltage_v float8, current_a float8, power_factor float8, PRIMARY KEY (device, ts))")  # fmt: skip
        rows.seek(0)
        t = time.perf_counter()
        cur.copy_expert("COPY copy_limit FROM STDIN WITH (FORMAT csv)", rows)
        copy_s = time.perf_counter() - t
    raw.close()
    copy_rate = args.batches * args.batch / copy_s
    print(f"raw COPY of the same rows: {copy_rate:,.0f} readings/s")

    engine.dispose()
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE "{db_name}" WITH (FORCE)'))

    print("\n| measure | value | target |\n|---|---|---|")
    print(f"| API ingest throughput ({args.clients} clients, batches of {args.batch}, {args.workers} gunicorn workers) "
          f"| {throughput:,.0f} readings/s | >= 20,000 |")  # fmt: skip
    print(
        f"| ingest-to-visible p50 / p99 (1,000 readings/s background) | {p50:.1f} / {p99:.1f} ms | p99 <= 100 ms |"
    )
    print(f"| raw PostgreSQL COPY of the same rows (the limit) | {copy_rate:,.0f} readings/s | - |")
    print(f"| gunicorn worker RSS after the run | {max(rss):.0f} MB max | < 400 MB |")
    print(f"\nmachine: {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{datetime.now(UTC):%Y-%m-%d}; data: {args.devices} devices, {args.batches * args.batch:,} readings")  # fmt: skip


if __name__ == "__main__":
    main()
