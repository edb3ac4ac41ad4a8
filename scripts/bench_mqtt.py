"""MQTT ingestion benchmark (`make bench-mqtt`): publishers -> Mosquitto -> the bridge process -> PostgreSQL.

Measures
1. throughput: readings/s stored in PostgreSQL (counted there) while publisher processes send messages
   of --readings readings each (a gateway's batch), then the same with 1-reading messages;
2. publish-to-visible latency: a 1-reading probe's publish until its 15-minute house rollup (what
   GET /api/v1/energy reads) is committed and readable, p50/p95/p99, at a steady moderate background rate;
3. the bridge's RSS afterwards.
The bridge runs as deployments run it, `python -m dashboard mqtt-bridge`, against a private Mosquitto
on a free port (its queue unlimited so a fast publisher loses nothing; the machine's broker keeps 1,000
per session), and a fresh PostgreSQL database; both are removed at the end. Prints a Markdown block for
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from sqlalchemy import create_engine, text
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.config import load_settings  # noqa: E402
from dashboard.db import make_engine, make_session_factory, migrate  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
PREFIX = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the processes used so far (a figure the machine's other load does not
    inflate, unlike wall time)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return total


def process_tree(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [pid, *(int(p) for p in out.split())]


def backends(db_name: str) -> list[int]:
    """The PostgreSQL backends serving the benchmark's database (their command line names it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f" {db_name} ".encode() in (entry / "cmdline").read_bytes().replace(b"\0", b" "):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def publisher_client(port: int) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def publish_all(port: int, messages: list[tuple[str, bytes]], start: mp.Event) -> None:
    """One publisher process: every message with QoS 1, then wait for the broker's acknowledgements."""
    c = publisher_client(port)
    start.wait()
    infos = [
        c.publish(f"{PREFIX}/devices/{serial}/measurements", payload, qos=1) for serial, payload in messages
    ]
    for info in infos:
        info.wait_for_publish(120)
    c.disconnect()
    c.loop_stop()


def messages_for(
    serials: list[str], start: datetime, per_message: int, total: int
) -> list[tuple[str, bytes]]:
    """`total` readings, `per_message` consecutive 10-second readings of one device per message."""
    out, step = [], 0
    while len(out) * per_message < total:
        for serial in serials:
            items = []
            for k in range(per_message):
                ts = start + timedelta(seconds=10 * (step * per_message + k))
                p = 800.0 + (k % 97)
                items.append({"timestamp": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "power_w": p,
                              "energy_wh": round(p * 10 / 3600, 4), "voltage_v": 230.5, "power_factor": 0.96})  # fmt: skip
            body = {"measurements": items} if per_message > 1 else items[0]
            out.append((serial, json.dumps(body).encode()))
            if len(out) * per_message >= total:
                break
        step += 1
    return out


def throughput(
    port: int, engine, serials, start: datetime, per_message: int, total: int, publishers: int
) -> tuple[float, float]:
    """(readings/s stored, seconds): from the publishers' start until PostgreSQL holds every reading."""
    messages = messages_for(serials, start, per_message, total)
    with engine.connect() as c:
        before = c.execute(text("SELECT count(*) FROM measurements")).scalar()
    go = mp.Event()
    procs = [
        mp.Process(target=publish_all, args=(port, messages[i::publishers], go)) for i in range(publishers)
    ]
    for p in procs:
        p.start()
    time.sleep(1.0)  # connected
    t0 = time.perf_counter()
    go.set()
    bar = tqdm(total=total, desc=f"{per_message}-reading messages", unit=" readings")
    stored = 0
    with engine.connect() as c:
        while stored < total:
            time.sleep(0.1)
            now = c.execute(text("SELECT count(*) FROM measurements")).scalar() - before
            c.rollback()
            bar.update(now - stored)
            stored = now
            if time.perf_counter() - t0 > 600:
                raise SystemExit(f"only {stored} of {total} readings stored after 600 s")
    elapsed = time.perf_counter() - t0
    bar.close()
    for p in procs:
        p.join(60)
    return total / elapsed, elapsed


def latency(port: int, engine, serials, probe_house: int, probes: int, background_rate: int) -> list[float]:
    """Probe latencies (ms) while a background publisher keeps `background_rate` readings/s flowing."""
    stop = threading.Event()
    bg_messages = messages_for(
        serials, datetime(2026, 2, 1, tzinfo=UTC), 100, background_rate * (probes // 10 + 20)
    )

    def background() -> None:
        c = publisher_client(port)
        per_s = max(1, background_rate // 100)
        for i in range(0, len(bg_messages), per_s):
            if stop.is_set():
                break
            t = time.perf_counter()
            for serial, payload in bg_messages[i : i + per_s]:
                c.publish(f"{PREFIX}/devices/{serial}/measurements", payload, qos=1)
            stop.wait(max(0.0, 1.0 - (time.perf_counter() - t)))
        c.disconnect()
        c.loop_stop()

    bg = threading.Thread(target=background, daemon=True)
    bg.start()
    time.sleep(2)
    c = publisher_client(port)
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=5)
    out = []
    query = text("SELECT 1 FROM energy_rollups WHERE resolution = '15min' AND entity_kind = 'house' "
                 "AND entity_id = :h AND bucket_start = :b")  # fmt: skip
    with engine.connect() as conn:
        for k in tqdm(range(probes), desc="probes"):
            bucket = base + timedelta(minutes=15 * k)
            body = json.dumps({"timestamp": bucket.strftime("%Y-%m-%dT%H:%M:%SZ"), "power_w": 1000.0,
                               "energy_wh": 250.0}).encode()  # fmt: skip
            t = time.perf_counter()
            c.publish(f"{PREFIX}/devices/PROBE/measurements", body, qos=1)
            while True:
                found = conn.execute(query, {"h": probe_house, "b": bucket.replace(tzinfo=None)}).first()
                conn.rollback()
                if found:
                    break
                time.sleep(0.001)
                if time.perf_counter() - t > 30:
                    raise SystemExit(f"probe {k} not visible after 30 s")
            out.append((time.perf_counter() - t) * 1000)
            time.sleep(0.05)
    stop.set()
    bg.join(10)
    c.disconnect()
    c.loop_stop()
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--houses", type=int, default=200, help="houses, each with a meter and a PV inverter")
    ap.add_argument("--readings", type=int, default=100, help="readings per message in the throughput run")
    ap.add_argument("--total", type=int, default=200_000, help="readings in the throughput run")
    ap.add_argument("--single-total", type=int, default=10_000, help="readings sent as 1-reading messages")
    ap.add_argument("--publishers", type=int, default=2, help="publisher processes")
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--background", type=int, default=2000, help="readings/s during the latency probes")
    args = ap.parse_args()
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

    db_name = f"aggbench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{db_name}"'))
    tmp = Path(tempfile.mkdtemp(prefix=db_name))
    port = free_port()
    (tmp / "mosquitto.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                                        "max_queued_messages 0\nmax_inflight_messages 1000\n")  # fmt: skip
    broker = subprocess.Popen([binary, "-c", str(tmp / "mosquitto.conf")], stderr=subprocess.DEVNULL)
    env = os.environ | {
        "DATABASE_URL": PG_ADMIN.rsplit("/", 1)[0] + "/" + db_name,
        "DATA_DIR": str(tmp),
        "DEMO_DATA": "0",
        "SECRET_KEY": "bench-" + "k" * 40,
        "MQTT_URL": f"mqtt://127.0.0.1:{port}",
        "MQTT_TOPIC_PREFIX": PREFIX,
        "MQTT_CLIENT_ID": f"bench-{db_name}",
    }
    env.pop("REDIS_URL", None)
    settings = load_settings(env)
    engine = make_engine(settings)
    migrate(engine)
    factory = make_session_factory(engine)
    from dashboard.clock import utcnow
    from dashboard.schema import Device, House

    with factory() as s:
        houses = [House(name=f"B{i}", created_at=utcnow()) for i in range(args.houses + 1)]
        s.add_all(houses)
        s.flush()
        for i, h in enumerate(houses[:-1]):
            s.add(Device(serial=f"BM{i:04d}", name="meter", kind="meter", direction="consumption",
                         house_id=h.id, created_at=utcnow()))  # fmt: skip
            s.add(Device(serial=f"BP{i:04d}", name="pv", kind="pv", direction="production", house_id=h.id,
                         created_at=utcnow()))  # fmt: skip
        s.add(Device(serial="PROBE", name="probe", kind="meter", direction="consumption", house_id=houses[-1].id,
                     created_at=utcnow()))  # fmt: skip
        s.commit()
        probe_house = houses[-1].id
    serials = [f"B{k}{i:04d}" for i in range(args.houses) for k in ("M", "P")]

    bridge = subprocess.Popen([sys.executable, "-m", "dashboard", "mqtt-bridge"], cwd=ROOT, env=env,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    check = [sys.executable, "-m", "dashboard", "mqtt-bridge", "--check"]
    try:
        for _ in range(300):
            if subprocess.run(check, cwd=ROOT, env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise SystemExit("the bridge did not start")
        warm = messages_for(serials, datetime(2025, 12, 1, tzinfo=UTC), args.readings, 20_000)
        go = mp.Event()
        go.set()
        publish_all(port, warm, go)
        time.sleep(3)
        watched = {"bridge": lambda: process_tree(bridge.pid), "PostgreSQL": lambda: backends(db_name),
                   "Mosquitto": lambda: [broker.pid]}  # fmt: skip
        before = {k: cpu_s(f()) for k, f in watched.items()}
        rate, secs = throughput(port, engine, serials, datetime(2026, 1, 1, tzinfo=UTC), args.readings, args.total,
                                args.publishers)  # fmt: skip
        cpu = {
            k: (cpu_s(f()) - before[k]) / args.total * 1e6 for k, f in watched.items()
        }  # CPU us per reading
        print("CPU per reading: " + ", ".join(f"{k} {v:.0f} us" for k, v in cpu.items()))
        print(
            f"throughput, {args.readings}-reading messages: {rate:,.0f} readings/s ({args.total:,} in {secs:.1f} s)"
        )
        rss = max(rss_mb(p) for p in process_tree(bridge.pid))
        before = {k: cpu_s(f()) for k, f in watched.items()}
        single, single_s = throughput(port, engine, serials, datetime(2026, 1, 20, tzinfo=UTC), 1,
                                      args.single_total, args.publishers)  # fmt: skip
        cpu1 = {k: (cpu_s(f()) - before[k]) / args.single_total * 1e6 for k, f in watched.items()}
        print("CPU per 1-reading message: " + ", ".join(f"{k} {v:.0f} us" for k, v in cpu1.items()))
        print(
            f"throughput, 1-reading messages: {single:,.0f} readings/s ({args.single_total:,} in {single_s:.1f} s)"
        )
        lat = latency(port, engine, serials, probe_house, args.probes, args.background)
        p50, p95, p99 = statistics.median(lat), pct(lat, 0.95), pct(lat, 0.99)
        print(f"publish-to-visible: p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms ({len(lat)} probes)")
        rss = max(rss, *(rss_mb(p) for p in process_tree(bridge.pid)))
        with engine.connect() as c:
            stored = c.execute(text("SELECT count(*) FROM measurements")).scalar()
    finally:
        bridge.send_signal(signal.SIGTERM)
        bridge.wait(60)
        broker.terminate()
        broker.wait(10)
        engine.dispose()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        shutil.rmtree(tmp, ignore_errors=True)

    print("\n| measure | value | target |\n|---|---|---|")
    print(f"| readings stored / s, {args.readings}-reading messages ({args.publishers} publisher processes) "
          f"| {rate:,.0f} | >= 20,000 |")  # fmt: skip
    print(f"| readings stored / s, 1-reading messages | {single:,.0f} (CPU per message: "
          + ", ".join(f"{k} {v:.0f} us" for k, v in cpu1.items()) + ") | - |")  # fmt: skip
    print(f"| publish-to-visible p50 / p95 / p99 ({args.background:,} readings/s background, {len(lat)} probes) "
          f"| {p50:.0f} / {p95:.0f} / {p99:.0f} ms | p99 <= 200 ms |")  # fmt: skip
    print(f"| bridge process RSS (main + writers, largest) | {rss:.0f} MB | - |")
    total_us = sum(cpu.values())
    print(f"| CPU per reading, {args.readings}-reading messages | "
          + ", ".join(f"{k} {v:.0f} us" for k, v in cpu.items())
          + f" (total {total_us:.0f} us: {os.cpu_count()} idle cores would store about {os.cpu_count() * 1e6 / total_us:,.0f} readings/s) | - |")  # fmt: skip
    print(f"\nmachine: {platform.node()} {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, "
          f"Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d}; data: {args.houses} houses "
          f"({2 * args.houses} devices), {stored:,} readings stored")  # fmt: skip


if __name__ == "__main__":
    main()
