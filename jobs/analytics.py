"""The Analytics page's all-houses scan (anomalies, voltage events, power factor), run as a background job.

One house is judged in tens of milliseconds, so the page does that in its callbacks. Several houses cost
about 15 ms per house for the anomalies, and the voltage events and power-factor trend read every
meter's raw readings (576k readings for 200 houses over 30 days, beyond one request's limit), so the
page queues this one job for the three sections and polls it. It reads and judges a batch of houses at a
time (`dashboard.analytics.scan_in_batches`) and reports progress after each batch.

Arguments are plain data: the owner's user id, the caller's resolved scope (jobs.context.scope_fields)
and the UTC bounds as ISO text. The result repeats who asked for what, so the page can check, when it
polls, that the job it shows was started by the same user for the same range.
"""

from __future__ import annotations

from datetime import datetime

from jobs.context import scope_from_fields, services

KIND = "analytics.anomaly_scan"


def anomaly_scan(user_id: int, scope_fields: dict, start: str, end: str, timezone: str) -> dict:
    """Anomalies, voltage events and the power-factor trend of every house in the scope over [start, end)
    (naive UTC ISO), with progress reports."""
    from dashboard import analytics
    from dashboard.jobqueue import report_progress

    scope = scope_from_fields(scope_fields)

    def progress(done: int, total: int) -> None:
        report_progress(0.02 + 0.98 * done / total if total else 1.0, f"{done} of {total} houses scanned")

    with services().session_factory() as session:
        found = analytics.scan_in_batches(
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
        "events": found["anomalies"],
        "voltage": found["voltage"],
        "power_factor": found["power_factor"],
        "errors": found["errors"],
    }
