"""Scheduled retraining: every house, community and the fleet with enough data gets fresh models of the
kind the Forecasts page opens with (next 24 hours, model auto, direct), consumption always and production
where the scope has production devices.

`retrain_due` (a job) plans the run and queues one training job per slot through the same dedup as every
other training (`enqueue_training_once`: a slot queued or running already is not queued twice), in order:
slots without a model first, then the stalest (oldest active model); at most RETRAIN_MAX_JOBS per run.
Each training is its own job, so a scope that fails (too little data, a constant series) fails alone,
logged in the run log, and the others go on.

When it runs: RETRAIN_CRON (default "30 2 * * *"), a cron line read in TIMEZONE with croniter.
- RQ: every training worker's maintenance pass (10 s) calls `schedule_retraining`; the first to take the
  firing's Redis key (SET NX) queues `retrain_due`, so a fleet of workers runs each firing once.
- Embedded (`make run`, no Redis): a thread (`retrain_loop`, started by jobs/embedded.py) queues it on
  the in-process queue, whose trainings run one at a time on a thread of their own (dashboard/jobqueue.py).
A firing missed by less than CATCH_UP (the workers or the app were restarting) still runs.

RQ 3.0's own `CronScheduler` was weighed and not used: it is a separate process (`rq cron`) to deploy
and keep alive, reads cron lines in the host's local time rather than TIMEZONE, and two of them would
both enqueue each firing; it is also marked beta. croniter is what it uses underneath.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from dashboard.context import worker_services
from dashboard.model_store import Slot, current_version
from dashboard.queries import has_production_devices
from dashboard.rollups import FLEET
from dashboard.schema import Community, EnergyRollup, PVPark, community_houses
from dashboard.scope import system_scope
from jobs.training import enqueue_training_once

log = logging.getLogger(__name__)

# the Forecasts page's default view (pages/forecasts.py; tests/api/test_auto_forecast.py checks they match)
PRODUCT, MODEL, STRATEGY, HORIZON = "next-24-hours", "auto", "direct", 24
MIN_DAYS = 15  # models.base: 7 days of lags, 7 of origins and a hold-out
CATCH_UP = timedelta(hours=1)
RETRAIN_KEY = "aggregator:retrain:"  # + the firing (UTC): taken (NX) by the worker that queues the run
CHECK_EVERY_S = 30


@dataclass(frozen=True)
class Planned:
    slot: Slot
    trained_at: datetime | None  # the current model's, None without one

    @property
    def params(self) -> dict:
        params = {"model": MODEL, "strategy": STRATEGY}
        if self.slot.scope_kind == "house":
            params["house_id"] = self.slot.scope_id
        elif self.slot.scope_kind == "community":
            params["community_id"] = self.slot.scope_id
        return params


def _spans(session, kind: str) -> dict[int, tuple[datetime, datetime, int]]:
    r = EnergyRollup
    rows = session.execute(
        select(r.entity_id, func.min(r.bucket_start), func.max(r.bucket_start), func.count())
        .where(r.resolution == "hour", r.entity_kind == kind)
        .group_by(r.entity_id)
    ).all()
    return {entity: (first, last, count) for entity, first, last, count in rows}


def _enough(span: tuple[datetime, datetime, int] | None, now: datetime) -> bool:
    """At least MIN_DAYS of hourly data (80 % present), the latest within the training window."""
    if span is None:
        return False
    first, last, hours = span
    return (
        (last - first) >= timedelta(days=MIN_DAYS)
        and hours >= 0.8 * MIN_DAYS * 24
        and (now - last <= timedelta(days=365))
    )


def scopes_with_data(session, now: datetime) -> list[tuple[str, int | None]]:
    """The fleet, then every community, then every house, that has enough data to train on."""
    houses, parks = _spans(session, "house"), _spans(session, "pv_park")
    fleet = _spans(session, FLEET[0]).get(FLEET[1])
    out: list[tuple[str, int | None]] = [("all", None)] if _enough(fleet, now) else []
    members = session.execute(select(community_houses.c.community_id, community_houses.c.house_id)).all()
    for community_id in session.scalars(select(Community.id).order_by(Community.id)):
        parts = [houses.get(h) for c, h in members if c == community_id]
        park_ids = session.scalars(select(PVPark.id).where(PVPark.community_id == community_id))
        parts += [parks.get(p) for p in park_ids]
        parts = [p for p in parts if p is not None]
        if parts:
            span = (min(p[0] for p in parts), max(p[1] for p in parts), max(p[2] for p in parts))
            if _enough(span, now):
                out.append(("community", community_id))
    out += [("house", h) for h in sorted(houses) if _enough(houses[h], now)]
    return out


def plan(session, now: datetime | None = None) -> list[Planned]:
    """Every slot the run should train, in order: without a model first, then the stalest model first."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    scope = system_scope()
    out = []
    for kind, scope_id in scopes_with_data(session, now):
        kwargs = {"house_id": scope_id} if kind == "house" else {}
        kwargs = {"community_id": scope_id} if kind == "community" else kwargs
        targets = ["consumption"] + (
            ["production"] if has_production_devices(session, scope, **kwargs) else []
        )
        for target in targets:
            slot = Slot(target, PRODUCT, HORIZON, kind, scope_id, MODEL, STRATEGY)
            row = current_version(session, slot)
            out.append(Planned(slot, row.trained_at if row is not None else None))
    # stable: among equals, the fleet, communities, then houses (the order above)
    return sorted(out, key=lambda p: (p.trained_at is not None, p.trained_at or datetime.min))


def retrain_due(max_jobs: int | None = None) -> dict:
    """The job: plan and queue this run's trainings (see the module docstring). Returns counts."""
    svc = worker_services()
    budget = max_jobs or svc.settings.retrain_max_jobs
    with svc.session_factory() as session:
        planned = plan(session)
    counts = {"planned": len(planned), "queued": 0, "already_queued": 0, "errors": 0, "over_budget": 0}
    scope = system_scope()
    for item in planned:
        if counts["queued"] >= budget:
            counts["over_budget"] += 1
            continue
        slot = item.slot
        try:
            _job_id, created = enqueue_training_once(
                svc.job_queue, slot, slot.target, PRODUCT, item.params, scope
            )
        except Exception:  # noqa: BLE001 - one scope that cannot be queued must not stop the run
            counts["errors"] += 1
            log.exception("Scheduled retraining: could not queue %s", slot)
            continue
        counts["queued" if created else "already_queued"] += 1
    log.info("Scheduled retraining: %s", counts)
    return counts


# ---- when ----------------------------------------------------------------------------------------------


def last_firing(cron: str, timezone: str, now: datetime | None = None) -> datetime | None:
    """The latest firing of the cron line (read in `timezone`) at or before now, as aware UTC."""
    if not cron:
        return None
    from croniter import croniter

    now = now or datetime.now(UTC)
    local = now.astimezone(ZoneInfo(timezone))
    if croniter.match(cron, local.replace(second=0, microsecond=0)):
        return local.replace(second=0, microsecond=0).astimezone(UTC)
    return croniter(cron, local).get_prev(datetime).astimezone(UTC)


def due_firing(settings, now: datetime | None = None) -> datetime | None:
    """The firing to run now (the latest, if less than CATCH_UP ago), else None."""
    now = now or datetime.now(UTC)
    fired = last_firing(settings.retrain_cron, settings.timezone, now)
    return fired if fired is not None and now - fired < CATCH_UP else None


def schedule_retraining(connection, settings, now: datetime | None = None) -> bool:
    """RQ: queue the due firing's run unless a worker already did; True when this call queued it."""
    from rq import Queue

    fired = due_firing(settings, now)
    if fired is None:
        return False
    try:
        if not connection.set(f"{RETRAIN_KEY}{fired:%Y-%m-%dT%H:%MZ}", "1", nx=True, ex=2 * 24 * 3600):
            return False
        Queue("default", connection=connection).enqueue("jobs.retrain.retrain_due", job_timeout=600)
    except Exception:  # noqa: BLE001 - Redis away: the next maintenance pass tries again
        log.warning("Could not queue the scheduled retraining; will retry", exc_info=True)
        return False
    return True


def retrain_loop(services, stop: threading.Event) -> None:
    """Embedded: queue `retrain_due` on the in-process queue at each firing (a thread of the app)."""
    done = None
    while not stop.wait(CHECK_EVERY_S):
        try:
            fired = due_firing(services.settings)
            if fired is not None and fired != done:
                services.job_queue.enqueue("jobs.retrain.retrain_due")
                done = fired
        except Exception:  # noqa: BLE001
            log.exception("Could not queue the scheduled retraining; will retry")
