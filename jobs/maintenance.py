"""Scheduled maintenance: the retention rules (dashboard/maintenance.py), raw readings past
RAW_RETENTION_DAYS included, queued once a day by one training worker (jobs/worker.py)."""

from __future__ import annotations

from dashboard.context import worker_services
from dashboard.maintenance import prune_logs as prune


def prune_logs() -> dict:
    svc = worker_services()
    with svc.session_factory() as session:
        counts = prune(session, svc.settings.access_log_retention_days, svc.settings.raw_retention_days)
        session.commit()
    return counts
