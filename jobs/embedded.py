"""Embedded mode, what `python app.py` runs around the app: first-start demo seeding, the simulator, the
hourly maintenance and the forecast publication, as threads (the RQ workers do this in production).

Kept out of the app factory so tests and gunicorn workers get a clean app with no background threads.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta

from flask import Flask

from dashboard.config import Settings
from dashboard.context import EXTENSION, AppServices
from dashboard.db import session_scope
from dashboard.maintenance import prune_logs
from dashboard.places import default_place
from dashboard.weather import provider_from_settings
from dashboard.weather.fetch import refresh_weather
from jobs.alerts import alerts_loop
from jobs.forecasting import PUBLISH_QUEUE, due_origin

log = logging.getLogger(__name__)
MAINTENANCE_EVERY_S = 3600
PUBLISH_CHECK_S = 10
_stop = threading.Event()


def logins_file(settings: Settings):
    return settings.data_dir / "demo-logins.txt"


def prepare_embedded(server: Flask, settings: Settings) -> None:
    """Seed demo data on the first start (DEMO_DATA unset or 1) and print how to log in."""
    services: AppServices = server.extensions[EXTENSION]
    if not settings.demo_data:
        return
    from dashboard.seed import backfill_demo, database_is_empty, seed_demo  # pvlib: only when seeding

    with services.session_factory() as session:
        empty = database_is_empty(session)
    path = logins_file(settings)
    if empty:
        # a year: enough history for the forecasters to learn the seasons (a backtest on 60 days trains
        # on only 32); about 100 s (2 cores) and 550 MB of SQLite once, on the first start
        print(f"First start: seeding demo data (20 houses, {settings.demo_days} days of 15-minute readings; "
              "1-2 minutes)...", flush=True)  # fmt: skip
        logins = seed_demo(services.session_factory, settings.timezone, days=settings.demo_days)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(logins.text() + "\n")
    else:
        added = backfill_demo(services.session_factory, settings.timezone)
        if added:
            print(f"Backfilled {added} demo readings since the last run", flush=True)
    if path.exists():
        print("\n" + path.read_text() + f"(kept in {path})", flush=True)
    else:
        print(
            "Create a login with: .venv/bin/python -m dashboard create-user --username NAME "
            "--password PASSWORD --role admin",
            flush=True,
        )


def run_maintenance(server: Flask, settings: Settings) -> None:
    services: AppServices = server.extensions[EXTENSION]
    with session_scope(services.session_factory) as session:
        pruned = prune_logs(session, settings.access_log_retention_days, settings.raw_retention_days)
    if any(pruned.values()):
        log.info("Pruned old log rows: %s", pruned)
    if settings.weather_provider != "none" and not settings.redis_url:  # with Redis, a worker fetches
        refresh_embedded_weather(services.session_factory, settings)


def refresh_embedded_weather(factory, settings: Settings) -> dict:
    """The hourly weather fetch the RQ workers queue (jobs/weather.py), run in the maintenance thread."""

    counts = refresh_weather(factory, provider_from_settings(settings), default_place(settings),
                             timedelta(days=settings.weather_history_days))  # fmt: skip
    log.info("Weather refreshed: %s", counts)
    return counts


def _maintenance_loop(server: Flask, settings: Settings) -> None:
    while not _stop.is_set():
        try:
            run_maintenance(server, settings)
        except Exception:
            log.exception("Maintenance failed; will retry")
        _stop.wait(MAINTENANCE_EVERY_S)


def _publish_loop(services: AppServices) -> None:
    """Embedded (no Redis): queue each 15-minute origin's forecast publication in the in-process job
    pool, as the RQ workers' maintenance does (jobs/worker.py `schedule_publication`)."""

    published = None
    while not _stop.wait(PUBLISH_CHECK_S):
        due = due_origin()
        if due == published:
            continue
        try:
            services.job_queue.enqueue("jobs.forecasting.publish_due", queue=PUBLISH_QUEUE)
            published = due
        except Exception:
            log.exception("Could not queue the forecast publication; will retry")


def start_background(server: Flask, settings: Settings) -> None:
    threading.Thread(
        target=_maintenance_loop, args=(server, settings), name="maintenance", daemon=True
    ).start()
    if not settings.redis_url:  # with Redis the workers publish (one of them per origin)
        threading.Thread(target=_publish_loop, args=(server.extensions[EXTENSION],), name="publish",
                         daemon=True).start()  # fmt: skip
        # alert rules every ALERT_INTERVAL_S (with Redis a worker does: jobs/alerts.py)
        threading.Thread(target=alerts_loop, args=(server.extensions[EXTENSION], _stop), name="alerts",
                         daemon=True).start()  # fmt: skip
    if not settings.redis_url and settings.retrain_cron:  # with Redis the workers schedule it
        from jobs.retrain import retrain_loop

        threading.Thread(target=retrain_loop, args=(server.extensions[EXTENSION], _stop), name="retrain",
                         daemon=True).start()  # fmt: skip
    if settings.demo_data:
        from dashboard.simulator import start_in_process  # pvlib: only when the demo runs

        start_in_process(server.extensions[EXTENSION].session_factory, settings, _stop)
