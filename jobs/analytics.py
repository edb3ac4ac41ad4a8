"""The Analytics page's all-houses anomaly scan, run as a background job.

One house is judged in tens of milliseconds, so the page does that in its callback; every house of a
scope costs about 15 ms per house (200 houses: seconds), so the page queues this job and polls it.
Arguments are plain data: the owner's user id, the caller's resolved scope (jobs.context.scope_fields)
and the UTC bounds as ISO text. The result repeats who asked for what, so the page can check, when it
polls, that the job it shows was started by the same user for the same range.
"""

from __future__ import annotations

from datetime import datetime

from jobs.context import scope_from_fields, services

KIND = "analytics.anomaly_scan"


def anomaly_scan(user_id: int, scope_fields: dict, start: str, end: str, timezone: str) -> dict:
    """Anomalies of every house in the scope over [start, end) (naive UTC ISO), with progress reports."""
    from dashboard import analytics
    from dashboard.jobqueue import report_progress

    scope = scope_from_fields(scope_fields)

    def progress(done: int, total: int) -> None:
        report_progress(0.02 + 0.98 * done / total if total else 1.0, f"{done} of {total} houses scanned")

    with services().session_factory() as session:
        events = analytics.anomalies_in_batches(
            session,
            scope,
            datetime.fromisoformat(start),
            datetime.fromisoformat(end),
            timezone=timezone,
            progress=progress,
        )
    return {
        "kind": KIND,
        "user_id": user_id,
        "start": start,
        "end": end,
        "timezone": timezone,
        "events": events,
    }
