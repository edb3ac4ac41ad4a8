"""Alert rules and in-app notifications as the API and the Alerts page read and write them.

A rule belongs to the user who made it and is checked against that user's Scope on the server, at
creation, at every change and again at every evaluation (dashboard/alerts.py): consumers set rules on
their own houses only and get in-app and e-mail notifications, never webhooks (a webhook sends house data
to an address of the user's choosing); admins and analysts may watch any house, a community or the fleet.
A house id the client sends is only ever checked against the scope (outside it: 404, as everywhere).
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dashboard.alert_delivery import literal_address_problem
from dashboard.clock import iso_utc, utcnow
from dashboard.errors import Forbidden, NotFound, ValidationFailed
from dashboard.policy import CONSUMER
from dashboard.schema import Community, House, User
from dashboard.schema_features import ALERT_KINDS, ALERT_SCOPES, AlertEvent, AlertRule, Notification
from dashboard.scope import Scope

METRICS = ("consumption", "production", "net")
DIRECTIONS = ("above", "below")
MAX_SILENT_MINUTES = 7 * 24 * 60
MAX_THRESHOLD_MINUTES = 24 * 60
MIN_SECRET_CHARS = 16
MAX_URL_CHARS = 2000
MAX_RULES_PER_USER = 100


def _problem(field: str, message: str) -> dict:
    return {"field": field, "message": message}


def _number(params: dict, name: str, low: float, high: float, default=None, integer=False, problems=None):
    value = params.get(name, default)
    kind = int if integer else (int, float)
    if value is None or isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
        what = "an integer" if integer else "a number"
        problems.append(_problem(f"params.{name}", f"{what} from {low:g} to {high:g}"))
        return None
    return value


def check_params(kind: str, params) -> dict:
    """The kind's parameters, complete and in range (ValidationFailed naming each bad one)."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ValidationFailed(details=[_problem("params", "must be an object")])
    problems: list[dict] = []
    out: dict = {}
    if kind == "voltage_event":
        out["nominal_v"] = _number(params, "nominal_v", 50, 1000, 230.0, problems=problems)
    elif kind == "silent_device":
        out["minutes"] = _number(params, "minutes", 1, MAX_SILENT_MINUTES, integer=True, problems=problems)
    elif kind == "threshold":
        for name, allowed in (("metric", METRICS), ("direction", DIRECTIONS)):
            if params.get(name) not in allowed:
                problems.append(_problem(f"params.{name}", f"one of {', '.join(allowed)}"))
            out[name] = params.get(name)
        out["threshold_kw"] = _number(params, "threshold_kw", -1e6, 1e6, problems=problems)
        out["minutes"] = _number(params, "minutes", 1, MAX_THRESHOLD_MINUTES, integer=True, problems=problems)
    unknown = sorted(set(params) - set(out))
    problems += [_problem(f"params.{name}", f"not a parameter of {kind} rules") for name in unknown]
    if problems:
        raise ValidationFailed(details=problems)
    return out


def check_webhook_url(url: str, allow_link_local: bool) -> str:
    """An http(s) URL with a host and no credentials; a literal address in a refused range is a 422 now
    (a name is resolved and checked at every delivery: dashboard/alert_delivery.py)."""
    parts = urlsplit(url.strip())
    if len(url) > MAX_URL_CHARS or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed(details=[_problem("webhook_url", "an http:// or https:// URL with a host")])
    if parts.username or parts.password:
        raise ValidationFailed(
            details=[_problem("webhook_url", "no user:password in the URL; the signature authenticates us")]
        )
    problem = literal_address_problem(parts.hostname, allow_link_local)
    if problem:
        raise ValidationFailed(details=[_problem("webhook_url", problem)])
    return url.strip()


def check_target(session: Session, scope: Scope, scope_kind: str, scope_id) -> int | None:
    """The rule's house, community or the fleet, within the caller's scope (never trusted from input)."""
    if scope_kind != "house" and scope.role == CONSUMER:
        raise Forbidden("Consumers may set alert rules on their own houses only: give scope_kind house")
    if scope_kind == "fleet":
        if not scope.all_houses:
            raise Forbidden("Only admins and analysts may watch the whole fleet")
        return None
    if isinstance(scope_id, bool) or not isinstance(scope_id, int):
        raise ValidationFailed(details=[_problem("scope_id", f"the {scope_kind}'s id (an integer)")])
    if scope_kind == "house":
        scope.require_house(scope_id)  # outside the scope: 404, as if it did not exist
        if session.get(House, scope_id) is None:
            raise NotFound(f"House {scope_id} not found")
    elif not scope.can_see_community(scope_id) or session.get(Community, scope_id) is None:
        raise NotFound(f"Community {scope_id} not found")
    return scope_id


def _text(data: dict, name: str, required: bool, max_chars: int) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_chars:
        raise ValidationFailed(details=[_problem(name, f"text of 1 to {max_chars} characters")])
    return value.strip()


def rule_fields(session: Session, scope: Scope, data: dict, allow_link_local: bool, current=None) -> dict:
    """Validated column values for a new rule (current None) or a change (the given keys over current).

    Order: the input's shape (422) first, then what the caller may do (403, 404), so bad input never
    reveals anything about houses."""
    merged = dict(current or {}) | {k: v for k, v in data.items() if k in RULE_KEYS}
    unknown = sorted(set(data) - set(RULE_KEYS))
    if unknown:
        raise ValidationFailed(details=[_problem(name, "not a field of an alert rule") for name in unknown])
    name = _text(merged, "name", True, 120)
    if merged.get("kind") not in ALERT_KINDS:
        raise ValidationFailed(details=[_problem("kind", f"one of {', '.join(ALERT_KINDS)}")])
    if merged.get("scope_kind") not in ALERT_SCOPES:
        raise ValidationFailed(details=[_problem("scope_kind", f"one of {', '.join(ALERT_SCOPES)}")])
    params = check_params(merged["kind"], merged.get("params"))
    for flag in ("enabled", "email"):
        if not isinstance(merged.get(flag, flag == "enabled"), bool):
            raise ValidationFailed(details=[_problem(flag, "true or false")])
    url = merged.get("webhook_url") or None
    if url is not None and not isinstance(url, str):
        raise ValidationFailed(details=[_problem("webhook_url", "a URL or null")])
    secret = merged.get("webhook_secret") or None
    if secret is not None and (not isinstance(secret, str) or not MIN_SECRET_CHARS <= len(secret) <= 200):
        raise ValidationFailed(details=[_problem("webhook_secret", f"{MIN_SECRET_CHARS} to 200 characters")])
    if url is not None:
        url = check_webhook_url(url, allow_link_local)
        if scope.role == CONSUMER:
            raise Forbidden(
                "Consumers get in-app and e-mail notifications; webhooks are for admins and analysts"
            )
    email = merged.get("email", False)
    if email and not (session.get(User, scope.user_id) or User()).email:
        raise ValidationFailed(
            details=[_problem("email", "your account has no e-mail address: ask an admin to add one")]
        )
    scope_id = check_target(session, scope, merged["scope_kind"], merged.get("scope_id"))
    return {"name": name, "kind": merged["kind"], "scope_kind": merged["scope_kind"], "scope_id": scope_id,
            "params_json": json.dumps(params, sort_keys=True), "enabled": merged.get("enabled", True),
            "email": email, "webhook_url": url,
            "webhook_secret": (secret or secrets.token_urlsafe(32)) if url else None}  # fmt: skip


RULE_KEYS = (
    "name",
    "kind",
    "scope_kind",
    "scope_id",
    "params",
    "enabled",
    "email",
    "webhook_url",
    "webhook_secret",
)


def as_input(rule: AlertRule) -> dict:
    """A stored rule in the shape `rule_fields` takes, for a change that gives only some keys."""
    return {"name": rule.name, "kind": rule.kind, "scope_kind": rule.scope_kind, "scope_id": rule.scope_id,
            "params": json.loads(rule.params_json), "enabled": rule.enabled, "email": rule.email,
            "webhook_url": rule.webhook_url, "webhook_secret": rule.webhook_secret}  # fmt: skip


def own_rule(session: Session, scope: Scope, rule_id: int) -> AlertRule:
    rule = session.get(AlertRule, rule_id)
    if rule is None or rule.owner_id != scope.user_id:
        raise NotFound(f"Alert rule {rule_id} not found")
    return rule


def create_rule(session: Session, scope: Scope, data: dict, allow_link_local: bool) -> AlertRule:
    if scope.user_id is None:
        raise Forbidden("Alert rules belong to a user account")
    fields = rule_fields(session, scope, data, allow_link_local)
    count = session.scalar(select(func.count()).where(AlertRule.owner_id == scope.user_id))
    if count >= MAX_RULES_PER_USER:
        raise ValidationFailed(details=[_problem("name", f"at most {MAX_RULES_PER_USER} rules per user")])
    rule = AlertRule(owner_id=scope.user_id, created_at=utcnow(), **fields)
    session.add(rule)
    session.flush()
    return rule


def change_rule(
    session: Session, scope: Scope, rule_id: int, data: dict, allow_link_local: bool
) -> AlertRule:
    rule = own_rule(session, scope, rule_id)
    current = as_input(rule)
    if (
        "webhook_url" in data
        and data["webhook_url"] != current["webhook_url"]
        and "webhook_secret" not in data
    ):
        current["webhook_secret"] = None  # a new address gets a new secret
    for name, value in rule_fields(session, scope, data, allow_link_local, current).items():
        setattr(rule, name, value)
    rule.last_error = None
    return rule


def open_rule_ids(session: Session, rule_ids: list[int]) -> set[int]:
    if not rule_ids:
        return set()
    e = AlertEvent
    return set(session.scalars(select(e.rule_id).where(e.rule_id.in_(rule_ids), e.resolved_at.is_(None))))


def rule_json(rule: AlertRule, firing: bool, secret_once: bool = False) -> dict:
    """A rule as its owner sees it: the webhook secret only once, in the answer that made it."""
    webhook = None
    if rule.webhook_url:
        webhook = {"url": rule.webhook_url, "signature_header": "X-Aggregator-Signature"}
        if secret_once:
            webhook["secret"] = rule.webhook_secret
    return {"id": rule.id, "name": rule.name, "kind": rule.kind, "scope_kind": rule.scope_kind,
            "scope_id": rule.scope_id, "params": json.loads(rule.params_json), "enabled": rule.enabled,
            "email": rule.email, "webhook": webhook, "firing": firing, "created_at": iso_utc(rule.created_at),
            "evaluated_at": iso_utc(rule.evaluated_at) if rule.evaluated_at else None,
            "last_error": rule.last_error}  # fmt: skip


def list_rules(session: Session, scope: Scope) -> list[dict]:
    rules = list(
        session.scalars(select(AlertRule).where(AlertRule.owner_id == scope.user_id).order_by(AlertRule.id))
    )
    firing = open_rule_ids(session, [r.id for r in rules])
    return [rule_json(r, r.id in firing) for r in rules]


def event_json(event: AlertEvent) -> dict:
    return {"id": event.id, "rule_id": event.rule_id, "fired_at": iso_utc(event.fired_at),
            "resolved_at": iso_utc(event.resolved_at) if event.resolved_at else None,
            "message": event.message, "details": json.loads(event.details_json),
            "deliveries": json.loads(event.deliveries_json)}  # fmt: skip


def rule_events(session: Session, scope: Scope, rule_id: int, limit: int = 50) -> list[dict]:
    own_rule(session, scope, rule_id)
    e = AlertEvent
    rows = session.scalars(
        select(e).where(e.rule_id == rule_id).order_by(e.fired_at.desc(), e.id.desc()).limit(limit)
    )
    return [event_json(row) for row in rows]


# ---- notifications: always the caller's own ----------------------------------------------------------------


def notification_json(n: Notification) -> dict:
    return {"id": n.id, "event_id": n.event_id, "created_at": iso_utc(n.created_at), "title": n.title,
            "body": n.body, "read": n.read_at is not None}  # fmt: skip


def unread_count(session: Session, user_id: int | None) -> int:
    if user_id is None:
        return 0
    n = Notification
    return session.scalar(select(func.count()).where(n.user_id == user_id, n.read_at.is_(None))) or 0


def list_notifications(
    session: Session, scope: Scope, unread_only: bool = False, limit: int = 50
) -> list[dict]:
    n = Notification
    stmt = select(n).where(n.user_id == scope.user_id)
    if unread_only:
        stmt = stmt.where(n.read_at.is_(None))
    return [notification_json(row) for row in session.scalars(stmt.order_by(n.id.desc()).limit(limit))]


def mark_read(
    session: Session, scope: Scope, notification_id: int | None = None, now: datetime | None = None
) -> int:
    """Mark one notification (None: all) of the caller read; another user's is NotFound."""
    n = Notification
    stmt = update(n).where(n.user_id == scope.user_id, n.read_at.is_(None)).values(read_at=now or utcnow())
    if notification_id is not None:
        row = session.get(n, notification_id)
        if row is None or row.user_id != scope.user_id:
            raise NotFound(f"Notification {notification_id} not found")
        stmt = stmt.where(n.id == notification_id)
    return session.execute(stmt).rowcount or 0
