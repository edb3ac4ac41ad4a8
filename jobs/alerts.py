"""The alert evaluation job (dashboard/alerts.py), every ALERT_INTERVAL_S.

With Redis: each training worker's maintenance pass (every 10 s, jobs/worker.py) calls `schedule_alerts`;
the first to take a Redis key that lives ALERT_INTERVAL_S queues one run on the `default` (maintenance)
queue, so one run per interval across every worker. Embedded (`python app.py`): `alerts_loop` runs in a
thread of its own (jobs/embedded.py), so a slow delivery never delays the hourly maintenance.
"""

from __future__ import annotations

import logging
import threading

from rq import Queue

from dashboard.alerts import run_alerts
from dashboard.context import AppServices, worker_services

log = logging.getLogger(__name__)
ALERTS_LOCK_KEY = "aggregator:alerts:evaluate"
JOB_TIMEOUT_S = 600


def evaluate_alerts() -> dict:
    svc = worker_services()
    counts = run_alerts(svc.session_factory, svc.settings)
    if counts:
        log.info("Alerts evaluated: %s", counts)
    return counts


def schedule_alerts(worker) -> bool:
    """Queue one evaluation run unless a worker did within ALERT_INTERVAL_S; True when this call queued it."""
    try:
        if "default" not in worker.queue_names():
            return False
        interval = worker.app_services().settings.alert_interval_s
        if not worker.connection.set(ALERTS_LOCK_KEY, worker.name, nx=True, ex=interval):
            return False
        Queue("default", connection=worker.connection).enqueue(
            "jobs.alerts.evaluate_alerts", job_timeout=JOB_TIMEOUT_S
        )
    except Exception:  # noqa: BLE001 - settings or Redis away: the next maintenance pass tries again
        return False
    return True


def alerts_loop(services: AppServices, stop: threading.Event) -> None:
    """Embedded: one run every ALERT_INTERVAL_S until `stop` is set; a failed run is logged, not fatal."""
    while not stop.wait(services.settings.alert_interval_s):
        try:
            counts = run_alerts(services.session_factory, services.settings)
            if counts:
                log.info("Alerts evaluated: %s", counts)
        except Exception:
            log.exception("Alert evaluation failed; will retry")
