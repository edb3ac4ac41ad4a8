"""The all-houses scan (anomalies, voltage events, power factor) as a background job, and its protocol:
start (or reuse) a scan, check a job id is the caller's, read a finished scan's result for the caller.

Several houses cost seconds (the voltage events and power factor read every meter's raw readings), so the
Analytics page and `POST /api/v1/analytics/scans` queue this one job and poll it. It judges a batch of
houses at a time (`dashboard.analytics_scan.scan_in_batches`) and reports progress after each batch.

A job id is made on the server: owner, a digest of the request (scope and range), a random part. On every
poll the caller's id is checked against it, and a finished result is checked to be the caller's for the
same range. A scan of the same user, scope and range is reused for SCAN_REUSE_S, through the services'
TTL cache (Redis with REDIS_URL, so every web worker shares the map).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dashboard.analytics_scan import scan_in_batches
from dashboard.context import AppServices, worker_services
from dashboard.jobqueue import JobNotFound, JobStatus, report_progress
from dashboard.scope import Scope

log = logging.getLogger(__name__)
KIND = "analytics.anomaly_scan"
SCAN_REUSE_S = 180  # a scan of the same user, scope and range is reused this long
SCAN_PREFIX = "anomalies-"
SCAN_ID = re.compile(r"anomalies-\d+-[0-9a-f]{16}-[0-9a-f]{32}")  # owner, request digest, random part
REUSE_KEY = "aggregator:scan:v1:"


class ScanRequest(Protocol):
    """What a scan answers: the caller's scope, naive-UTC bounds and the zone of its local days."""

    scope: Scope
    start: datetime
    end: datetime
    timezone: str


@dataclass(frozen=True)
class Scan:
    """A ScanRequest of its own (the API's; the Analytics page passes its checked request)."""

    scope: Scope
    start: datetime
    end: datetime
    timezone: str


def scan_digest(req: ScanRequest) -> str:
    """The user's scope and the range, so a job id names its request."""
    scope = req.scope
    key = {
        "user": scope.user_id,
        "role": scope.role,
        "houses": None if scope.house_ids is None else sorted(scope.house_ids),
        "start": req.start.isoformat(),
        "end": req.end.isoformat(),
        "timezone": req.timezone,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def scan_owner_prefix(scope: Scope) -> str:
    return f"{SCAN_PREFIX}{scope.user_id}-"


def own_scan_id(scope: Scope, job_id) -> bool:
    """A job id as `start_scan` makes them, for this user (the server made it: the user id in it is the
    one the job was queued with)."""
    return (
        isinstance(job_id, str)
        and SCAN_ID.fullmatch(job_id) is not None
        and job_id.startswith(scan_owner_prefix(scope))
    )


def scan_of(req: ScanRequest, job_id: str) -> bool:
    """The caller's own job id for this very request (scope and range)."""
    return own_scan_id(req.scope, job_id) and job_id.split("-")[2] == scan_digest(req)


def start_scan(svc: AppServices, req: ScanRequest) -> str:
    """Queue the all-houses scan for this request, or reuse the one queued for it in the last SCAN_REUSE_S
    (unless it failed or is gone); its job id."""
    digest = scan_digest(req)
    recent = svc.cache.get(REUSE_KEY + digest)
    if recent is not None:
        try:
            if svc.job_queue.status(recent["job"]).status != "failed":
                return recent["job"]
        except JobNotFound:
            pass
    job_id = f"{scan_owner_prefix(req.scope)}{digest}-{uuid.uuid4().hex}"
    svc.job_queue.enqueue(
        "jobs.analytics.anomaly_scan",
        req.scope.user_id,
        req.scope.to_fields(),
        req.start.isoformat(),
        req.end.isoformat(),
        req.timezone,
        job_id=job_id,
        result_ttl_s=3600,
    )
    svc.cache.put(REUSE_KEY + digest, {"job": job_id}, SCAN_REUSE_S)
    return job_id


def scan_result(req: ScanRequest, status: JobStatus) -> dict | None:
    """What a finished scan found, when it is this user's, for this request; else None: {"events"
    (anomalies), "voltage" (as the voltage-events service, or None), "power_factor" (as the power-factor
    service, or None), "errors" ({section: text})}. Houses the scope no longer sees are dropped (the
    user's houses may have changed since it was queued)."""
    result = status.result
    if not isinstance(result, dict) or result.get("kind") != KIND:
        return None
    scope = req.scope
    asked = (result.get("user_id"), result.get("start"), result.get("end"), result.get("timezone"))
    if asked != (scope.user_id, req.start.isoformat(), req.end.isoformat(), req.timezone):
        return None
    if not all(key in result for key in ("events", "voltage", "power_factor")):
        return None
    sees = scope.can_see_house
    voltage, days = result["voltage"], result["power_factor"]
    if voltage is not None:
        voltage = voltage | {
            "events": [e for e in voltage["events"] if sees(e["house_id"])],
            "summary": [s for s in voltage["summary"] if sees(s["house_id"])],
        }
    return {
        "events": [e for e in result["events"] if sees(e["house_id"])],
        "voltage": voltage,
        "power_factor": None if days is None else [d for d in days if sees(d["house_id"])],
        "errors": result.get("errors") or {},
    }


# ---- the job ----------------------------------------------------------------------------------------


def anomaly_scan(user_id: int, scope_fields: dict, start: str, end: str, timezone: str) -> dict:
    """Anomalies, voltage events and the power-factor trend of every house in the scope over [start, end)
    (naive UTC ISO), with progress reports."""

    scope = Scope.from_fields(scope_fields)

    def progress(done: int, total: int) -> None:
        report_progress(0.02 + 0.98 * done / total if total else 1.0, f"{done} of {total} houses scanned")

    with worker_services().session_factory() as session:
        found = scan_in_batches(
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
