"""Alert evaluation: every ALERT_INTERVAL_S the job (jobs/alerts.py) checks the enabled rules against the
data, opens an episode (an event) when a rule's condition starts to hold and resolves it when it clears,
so a rule fires once per episode, not once a minute. Each transition writes an in-app notification for
the rule's owner and queues the rule's webhook and e-mail, sent afterwards (dashboard/alert_delivery.py).

The checks reuse the app's own analytics under the OWNER's scope, resolved again at every run (a
consumer who lost a house stops being told about it; the rule records why):
- silent_device: a device of the scope without a reading for `minutes` (never reported: counted from when
  it was added), as the Real-Time page's latest-reading probe (dashboard/live.py);
- threshold: consumption, production or net mean power (kW) above/below `threshold_kw` over the last
  `minutes`: every minute with readings from the one that covers the window's start (a reading stands
  for its interval, up to 15 minutes) is beyond the threshold; no readings, no verdict;
- voltage_event: an EN 50160 event (dashboard/analytics_power.py) still under way or ended in the last
  5 minutes, from the meters' raw readings of the last 30 minutes;
- anomaly: a consumption anomaly (dashboard/analytics_anomalies.py on the 15-minute rollups, with its
  28 days of history) that ended in the last 30 minutes; evaluated at most every 15 minutes (the
  rollups' step), the costliest check.
Bounded work: at most ALERT_MAX_RULES_PER_RUN rules per run, those evaluated longest ago first, and at
most DELIVERY_BATCH events' deliveries. A failing rule or delivery is recorded and never stops the run.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard import analytics
from dashboard.alert_delivery import DeliveryFailed, due, post_webhook, record_attempt, send_email
from dashboard.alert_rules import check_target
from dashboard.auth import user_scope
from dashboard.choices import Choice
from dashboard.clock import iso_utc, utcnow
from dashboard.config import Settings
from dashboard.errors import DomainError, Forbidden
from dashboard.live import latest_readings, power_buckets, scope_devices
from dashboard.schema import Device, User, community_houses
from dashboard.schema_features import AlertEvent, AlertRule, Notification
from dashboard.scope import Scope

log = logging.getLogger(__name__)
ANOMALY_WINDOW, ANOMALY_RECENT, ANOMALY_EVERY = (
    timedelta(hours=2),
    timedelta(minutes=30),
    timedelta(minutes=15),
)
VOLTAGE_WINDOW, VOLTAGE_RECENT = timedelta(minutes=30), timedelta(minutes=5)
READING_SPAN = timedelta(seconds=analytics.MAX_GAP_S)  # the longest interval one reading stands for
MAX_LISTED = 20  # devices or events listed in an event's details
DELIVERY_BATCH = 50


@dataclass(frozen=True)
class Target:
    choice: Choice  # for dashboard/live.py
    houses: list[int] | None  # for dashboard/analytics.py (None: every house)
    label: str


@dataclass(frozen=True)
class Condition:
    active: bool
    message: str = ""
    details: dict = field(default_factory=dict)


def owner_scope(session: Session, rule: AlertRule) -> Scope:
    user = session.get(User, rule.owner_id)
    if user is None or not user.is_active:
        raise Forbidden("The rule's owner is deactivated")
    return user_scope(session, user)


def rule_target(session: Session, scope: Scope, rule: AlertRule) -> Target:
    """The rule's house, community or fleet, checked against the owner's scope as at creation."""
    scope_id = check_target(session, scope, rule.scope_kind, rule.scope_id)
    if rule.scope_kind == "house":
        return Target(Choice(house_id=scope_id), [scope_id], f"house #{scope_id}")
    if rule.scope_kind == "community":
        members = session.scalars(
            select(community_houses.c.house_id).where(community_houses.c.community_id == scope_id)
        )
        houses = sorted(h for h in members if scope.can_see_house(h))
        return Target(Choice(community_id=scope_id), houses, f"community #{scope_id}")
    return Target(Choice(), None, "the fleet")


def check_silent(session, settings, scope, target, params, now) -> Condition:
    minutes = params["minutes"]
    devices = scope_devices(session, scope, target.choice)
    latest = latest_readings(session, devices)
    added = dict(
        session.execute(select(Device.id, Device.created_at).where(Device.id.in_(list(latest)))).all()
    )
    cutoff = now - timedelta(minutes=minutes)
    silent = sorted(
        (dev.info.serial, latest[dev.id]) for dev in devices if (latest[dev.id] or added[dev.id]) < cutoff
    )
    details = {"minutes": minutes, "devices": [{"device": serial, "last_reading": iso_utc(ts) if ts else None}
                                               for serial, ts in silent[:MAX_LISTED]], "count": len(silent)}  # fmt: skip
    names = ", ".join(serial for serial, _ts in silent[:5]) + (" ..." if len(silent) > 5 else "")
    return Condition(bool(silent), f"{len(silent)} device(s) of {target.label} silent for over {minutes} min: "
                     f"{names}", details)  # fmt: skip


def metric_kw(metric: str, consumption_w, production_w) -> float | None:
    if metric == "consumption":
        return None if consumption_w is None else consumption_w / 1000
    if metric == "production":
        return None if production_w is None else production_w / 1000
    return ((consumption_w or 0.0) - (production_w or 0.0)) / 1000


def check_threshold(session, settings, scope, target, params, now) -> Condition:
    metric, direction, limit, minutes = (
        params["metric"],
        params["direction"],
        params["threshold_kw"],
        params["minutes"],
    )
    window_start = now - timedelta(minutes=minutes)
    devices = scope_devices(session, scope, target.choice)
    buckets = power_buckets(session, devices, window_start - READING_SPAN, now, timedelta(minutes=1))
    series = [(b, v) for b, c, p in buckets if (v := metric_kw(metric, c, p)) is not None]
    first = max((i for i, (b, _v) in enumerate(series) if b <= window_start), default=None)
    if first is None:  # no reading covers the window's start: no verdict (silence has its own rule kind)
        return Condition(False, details={"reason": "no readings cover the window"})
    values = [v for _b, v in series[first:]]
    beyond = all(v > limit for v in values) if direction == "above" else all(v < limit for v in values)
    details = {"metric": metric, "direction": direction, "threshold_kw": limit, "minutes": minutes,
               "latest_kw": round(values[-1], 3), "min_kw": round(min(values), 3), "max_kw": round(max(values), 3)}  # fmt: skip
    return Condition(beyond, f"{metric} of {target.label} {direction} {limit:g} kW for {minutes} min "
                     f"(now {values[-1]:.2f} kW)", details)  # fmt: skip


def check_voltage(session, settings, scope, target, params, now) -> Condition:
    found = analytics.voltage_events(session, scope, now - VOLTAGE_WINDOW, now, nominal_v=params["nominal_v"],
                                     houses=target.houses if target.houses is not None else None)  # fmt: skip
    recent = [e for e in found["events"] if e["end"] >= iso_utc(now - VOLTAGE_RECENT)]
    kinds = Counter(e["kind"] for e in recent)
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    return Condition(bool(recent), f"voltage events on {target.label}: {summary}",
                     {"nominal_v": params["nominal_v"], "events": recent[:MAX_LISTED], "count": len(recent)})  # fmt: skip


def check_anomaly(session, settings, scope, target, params, now) -> Condition:
    found = analytics.anomalies(session, scope, now - ANOMALY_WINDOW, now, timezone=settings.timezone,
                                houses=target.houses)  # fmt: skip
    recent = [e for e in found if e["end"] >= iso_utc(now - ANOMALY_RECENT)]
    kinds = Counter(e["kind"] for e in recent)
    summary = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(kinds.items()))
    return Condition(bool(recent), f"consumption anomalies on {target.label}: {summary}",
                     {"anomalies": recent[:MAX_LISTED], "count": len(recent)})  # fmt: skip


CHECKS: dict[str, Callable[..., Condition]] = {
    "silent_device": check_silent,
    "threshold": check_threshold,
    "voltage_event": check_voltage,
    "anomaly": check_anomaly,
}


def channels(rule: AlertRule) -> list[str]:
    return (["webhook"] if rule.webhook_url else []) + (["email"] if rule.email else [])


def queue_deliveries(event: AlertEvent, rule: AlertRule, state: str) -> None:
    deliveries = json.loads(event.deliveries_json or "{}")
    for channel in channels(rule):
        deliveries[f"{channel}:{state}"] = {"status": "pending", "attempts": 0}
    event.deliveries_json = json.dumps(deliveries, sort_keys=True)
    event.delivery_pending = any(d.get("status") == "pending" for d in deliveries.values())


def notify(session: Session, rule: AlertRule, event: AlertEvent, state: str, now: datetime) -> None:
    title = f"{'Alert' if state == 'firing' else 'Resolved'}: {rule.name}"
    body = event.message if state == "firing" else f"Cleared after {iso_utc(event.fired_at)}: {event.message}"
    session.add(
        Notification(user_id=rule.owner_id, event_id=event.id, created_at=now, title=title[:200], body=body)
    )


def open_event(session: Session, rule_id: int) -> AlertEvent | None:
    e = AlertEvent
    return session.scalar(select(e).where(e.rule_id == rule_id, e.resolved_at.is_(None)))


def evaluate_rule(session: Session, settings: Settings, rule: AlertRule, now: datetime) -> str:
    """Check one rule and move its episode: 'fired', 'resolved', 'firing' (still), 'ok' or 'skipped'."""
    if rule.kind == "anomaly" and rule.evaluated_at is not None and now - rule.evaluated_at < ANOMALY_EVERY:
        return "skipped"
    scope = owner_scope(session, rule)
    condition = CHECKS[rule.kind](session, settings, scope, rule_target(session, scope, rule),
                                  json.loads(rule.params_json), now)  # fmt: skip
    rule.evaluated_at, rule.last_error = now, None
    current = open_event(session, rule.id)
    if condition.active and current is None:
        event = AlertEvent(rule_id=rule.id, fired_at=now, message=f"{rule.name}: {condition.message}",
                           details_json=json.dumps(condition.details, sort_keys=True, default=str))  # fmt: skip
        session.add(event)
        session.flush()  # the unique open-episode index refuses a second open event here
        queue_deliveries(event, rule, "firing")
        notify(session, rule, event, "firing", now)
        return "fired"
    if not condition.active and current is not None:
        current.resolved_at = now
        queue_deliveries(current, rule, "resolved")
        notify(session, rule, current, "resolved", now)
        return "resolved"
    return "firing" if condition.active else "ok"


def close_open_event(session: Session, rule_id: int, now: datetime) -> None:
    """End a rule's episode without notifying (the rule changed or was disabled: a new one may begin)."""
    current = open_event(session, rule_id)
    if current is not None:
        current.resolved_at = now


def _record_error(factory, rule_id: int, text: str, now: datetime) -> None:
    with factory() as session:
        rule = session.get(AlertRule, rule_id)
        if rule is not None:
            rule.evaluated_at, rule.last_error = now, text[:500]
            session.commit()


def run_alerts(factory, settings: Settings, now: datetime | None = None) -> dict:
    """One evaluation run: the due rules, then the due deliveries. Counts by outcome."""
    now = now or utcnow()
    counts: Counter = Counter()
    with factory() as session:
        r = AlertRule
        ids = session.scalars(select(r.id).where(r.enabled.is_(True)).order_by(r.evaluated_at.asc().nulls_first(), r.id)
                              .limit(settings.alert_max_rules_per_run)).all()  # fmt: skip
    for rule_id in ids:
        try:
            with factory() as session:
                rule = session.get(AlertRule, rule_id)
                if rule is not None:
                    counts[evaluate_rule(session, settings, rule, now)] += 1
                    session.commit()
        except DomainError as exc:  # the owner's scope no longer covers the target, ...
            _record_error(factory, rule_id, exc.one_line(), now)
            counts["error"] += 1
        except Exception as exc:  # noqa: BLE001 - one broken rule never stops the others
            log.exception("Alert rule %s could not be evaluated", rule_id)
            _record_error(factory, rule_id, f"evaluation failed ({exc.__class__.__name__}); see the log", now)
            counts["error"] += 1
    counts.update(deliver_pending(factory, settings, now))
    return dict(counts)


def payload(event: AlertEvent, rule: AlertRule, state: str) -> dict:
    return {"event_id": event.id, "state": state, "message": event.message,
            "rule": {"id": rule.id, "name": rule.name, "kind": rule.kind, "scope_kind": rule.scope_kind,
                     "scope_id": rule.scope_id},
            "fired_at": iso_utc(event.fired_at),
            "resolved_at": iso_utc(event.resolved_at) if event.resolved_at else None,
            "details": json.loads(event.details_json)}  # fmt: skip


def email_text(body: dict) -> tuple[str, str]:
    state = "Alert" if body["state"] == "firing" else "Resolved"
    subject = f"[Aggregator] {state}: {body['rule']['name']}"
    lines = [body["message"], "", f"Fired at: {body['fired_at']} (UTC)"]
    if body["resolved_at"]:
        lines.append(f"Resolved at: {body['resolved_at']} (UTC)")
    lines += ["", "Details:", json.dumps(body["details"], indent=2, sort_keys=True)]
    return subject, "\n".join(lines)


def attempt(settings: Settings, channel: str, snapshot: dict, body: dict) -> str | None:
    """One delivery attempt: None when delivered, else what went wrong."""
    try:
        if channel == "webhook":
            if not snapshot["url"]:
                return "the rule no longer has a webhook"
            post_webhook(snapshot["url"], snapshot["secret"], body, settings.alert_delivery_timeout_s,
                         settings.alert_webhook_allow_link_local)  # fmt: skip
        else:
            if not snapshot["email"]:
                return "the owner's account has no e-mail address"
            send_email(settings, snapshot["email"], *email_text(body))
    except DeliveryFailed as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - recorded, never raised
        log.exception("Alert delivery failed unexpectedly")
        return f"delivery failed ({exc.__class__.__name__})"
    return None


def deliver_pending(factory, settings: Settings, now: datetime, limit: int = DELIVERY_BATCH) -> Counter:
    """Send the due webhooks and e-mails of at most `limit` events, each outcome recorded on its event.
    No database transaction stays open while the network is waited for."""
    counts: Counter = Counter()
    with factory() as session:
        e = AlertEvent
        ids = session.scalars(
            select(e.id).where(e.delivery_pending.is_(True)).order_by(e.id).limit(limit)
        ).all()
    for event_id in ids:
        with factory() as session:
            event = session.get(AlertEvent, event_id)
            rule = session.get(AlertRule, event.rule_id)
            owner = session.get(User, rule.owner_id)
            work = [
                (key, key.split(":")) for key, st in json.loads(event.deliveries_json).items() if due(st, now)
            ]
            snapshot = {"url": rule.webhook_url, "secret": rule.webhook_secret, "email": owner.email}
            bodies = {state: payload(event, rule, state) for _key, (_channel, state) in work}
        outcomes = {
            key: attempt(settings, channel, snapshot, bodies[state]) for key, (channel, state) in work
        }
        with factory() as session:
            event = session.get(AlertEvent, event_id)
            deliveries = json.loads(event.deliveries_json)
            for key, error in outcomes.items():
                deliveries[key] = record_attempt(
                    deliveries[key], error, now, settings.alert_delivery_attempts
                )
                counts[f"{key.split(':')[0]}_{deliveries[key]['status']}"] += 1
            event.deliveries_json = json.dumps(deliveries, sort_keys=True)
            event.delivery_pending = any(d.get("status") == "pending" for d in deliveries.values())
            session.commit()
    return counts
