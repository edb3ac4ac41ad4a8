"""The live simulator: demo devices keep sending readings, so the real-time views move.

`make run` runs it in-process (readings go through the same validation and ingestion as the API);
`python -m dashboard simulate --url ...` posts the same readings over HTTP like a real gateway.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pandas as pd
from sqlalchemy import func, select

from dashboard import demo
from dashboard.db import session_scope
from dashboard.ingest import ingest_readings
from dashboard.readings import validate_batch
from dashboard.schema import Device, House
from dashboard.scope import system_scope

log = logging.getLogger(__name__)


def demo_plan_for(factory, timezone: str, seed: int = 7) -> demo.DemoPlan | None:
    """Rebuild the seeded plan (deterministic per house count and seed); None if not seeded."""
    with factory() as session:
        n_houses = session.scalar(select(func.count()).select_from(House))
        serials = set(session.scalars(select(Device.serial)))
    if not n_houses:
        return None
    plan = demo.plan_demo(n_houses=n_houses, seed=seed, timezone=timezone)
    return plan if {d.key for d in plan.devices} <= serials else None


def live_batch(plan: demo.DemoPlan, at: pd.Timestamp, interval_s: float) -> list[dict]:
    """One reading per device; each reports the energy of its own reporting interval, as meters do."""
    batch = [demo.live_reading(plan, device, at) for device in plan.devices]
    for reading in batch:
        reading["energy_wh"] = round(reading["power_w"] * interval_s / 3600.0, 4)
    return batch


def run_loop(
    send: Callable[[list[dict]], None],
    plan: demo.DemoPlan,
    interval_s: float,
    stop: threading.Event,
    iterations: int | None = None,
) -> None:
    done = 0
    while not stop.is_set() and (iterations is None or done < iterations):
        at = pd.Timestamp.now(tz="UTC").floor("s")
        try:
            send(live_batch(plan, at, interval_s))
        except Exception:  # a failed tick is logged and retried on the next one
            log.exception("Simulator tick failed")
        done += 1
        stop.wait(interval_s)


def in_process_sender(factory, timezone: str, max_gap_s: int) -> Callable[[list[dict]], None]:
    def send(items: list[dict]) -> None:
        readings = validate_batch(items, max_batch=100_000)
        with session_scope(factory) as session:
            ingest_readings(session, system_scope(), readings, timezone, max_gap_s)

    return send


def http_sender(url: str, headers: dict[str, str]) -> Callable[[list[dict]], None]:
    import requests

    def send(items: list[dict]) -> None:
        response = requests.post(
            url.rstrip("/") + "/api/v1/measurements",
            json={"measurements": items},
            headers=headers,
            timeout=10,
        )
        response.raise_for_status()

    return send


def start_in_process(factory, settings, stop: threading.Event) -> threading.Thread | None:
    plan = demo_plan_for(factory, settings.timezone)
    if plan is None:
        log.info("No demo devices found; the simulator stays off")
        return None
    send = in_process_sender(factory, settings.timezone, settings.derive_energy_max_gap_s)
    thread = threading.Thread(
        target=run_loop, args=(send, plan, settings.simulator_interval_s, stop), name="simulator", daemon=True
    )
    thread.start()
    log.info("Simulator feeding %d devices every %ss", len(plan.devices), settings.simulator_interval_s)
    return thread
