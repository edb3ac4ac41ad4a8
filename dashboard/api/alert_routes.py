"""Alert rules (each user's own, within their scope) and the caller's in-app notifications.

Rules: dashboard/alert_rules.py checks every field and the target against the caller's Scope (a consumer:
their own houses, no webhooks: 403); someone else's rule or notification answers 404 like a missing one.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from dashboard.alert_rules import (
    change_rule,
    create_rule,
    list_notifications,
    list_rules,
    mark_read,
    open_rule_ids,
    own_rule,
    rule_events,
    rule_json,
    unread_count,
)
from dashboard.alerts import close_open_event
from dashboard.api.common import current_scope, json_body, requires
from dashboard.api.openapi import responds
from dashboard.clock import utcnow
from dashboard.context import db, services
from dashboard.errors import ValidationFailed

bp = Blueprint("alerts", __name__, url_prefix="/api/v1")

RULE_BODY = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 120},
        "kind": {"type": "string", "enum": ["anomaly", "voltage_event", "silent_device", "threshold"]},
        "scope_kind": {"type": "string", "enum": ["house", "community", "fleet"]},
        "scope_id": {"type": "integer", "description": "the house or community (none for the fleet)"},
        "params": {
            "type": "object",
            "description": "silent_device: minutes; threshold: metric (consumption|production|net), direction "
            "(above|below), threshold_kw, minutes; voltage_event: nominal_v (230); anomaly: none",
        },
        "enabled": {"type": "boolean"},
        "email": {"type": "boolean", "description": "e-mail the owner's address (SMTP_* settings)"},
        "webhook_url": {"type": "string", "description": "admins and analysts only; http(s)"},
        "webhook_secret": {"type": "string", "description": "16-200 characters; generated when omitted"},
    },
}
EPISODE_KEYS = ("kind", "scope_kind", "scope_id", "params", "enabled")  # a change to these ends an episode


def _allow_link_local() -> bool:
    return services().settings.alert_webhook_allow_link_local


@bp.get("/alert-rules")
@requires("alerts:manage")
def get_alert_rules():
    """Your alert rules, each with whether it is firing now."""
    return jsonify({"rules": list_rules(db(), current_scope())})


@bp.post("/alert-rules")
@responds(201)
@requires("alerts:manage", body=RULE_BODY | {"required": ["name", "kind", "scope_kind"]})
def post_alert_rule():
    """Create an alert rule; the answer shows the webhook's signing secret, once."""
    session = db()
    rule = create_rule(session, current_scope(), json_body(), _allow_link_local())
    body = rule_json(rule, firing=False, secret_once=True)
    session.commit()
    return jsonify(body), 201


@bp.get("/alert-rules/<int:rule_id>")
@requires("alerts:manage")
def get_alert_rule(rule_id: int):
    """One of your alert rules."""
    session = db()
    rule = own_rule(session, current_scope(), rule_id)
    return jsonify(rule_json(rule, rule.id in open_rule_ids(session, [rule.id])))


@bp.patch("/alert-rules/<int:rule_id>")
@requires("alerts:manage", body=RULE_BODY)
def patch_alert_rule(rule_id: int):
    """Change an alert rule (the given fields); a new webhook URL gets a new secret, shown once."""
    session = db()
    data = json_body()
    scope = current_scope()
    old_url = own_rule(session, scope, rule_id).webhook_url
    rule = change_rule(session, scope, rule_id, data, _allow_link_local())
    if any(key in data for key in EPISODE_KEYS):
        close_open_event(session, rule.id, utcnow())
    body = rule_json(rule, rule.id in open_rule_ids(session, [rule.id]), secret_once=rule.webhook_url != old_url
                     or "webhook_secret" in data)  # fmt: skip
    session.commit()
    return jsonify(body)


@bp.delete("/alert-rules/<int:rule_id>")
@requires("alerts:manage")
def delete_alert_rule(rule_id: int):
    """Delete an alert rule with its events and their notifications."""
    session = db()
    session.delete(own_rule(session, current_scope(), rule_id))
    session.commit()
    return "", 204


@bp.get("/alert-rules/<int:rule_id>/events")
@requires("alerts:manage", query={"limit": "optional: at most this many, newest first (1-500, default 50)"})
def get_alert_events(rule_id: int):
    """A rule's episodes, newest first, with each delivery's status, attempts and last error."""
    limit = _limit()
    return jsonify({"events": rule_events(db(), current_scope(), rule_id, limit)})


def _limit() -> int:
    raw = request.args.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= 500:
        raise ValidationFailed(details=[{"field": "limit", "message": "an integer from 1 to 500"}])
    return int(raw)


@bp.get("/notifications")
@requires(
    "notifications:read",
    query={"unread": "optional: true lists unread ones only", "limit": "optional: 1-500, default 50"},
)
def get_notifications():
    """Your in-app notifications, newest first, and how many are unread."""
    unread = request.args.get("unread", "false").lower()
    if unread not in ("true", "false", "1", "0"):
        raise ValidationFailed(details=[{"field": "unread", "message": "true or false"}])
    scope, session = current_scope(), db()
    rows = list_notifications(session, scope, unread in ("true", "1"), _limit())
    return jsonify({"notifications": rows, "unread": unread_count(session, scope.user_id)})


@bp.post("/notifications/<int:notification_id>/read")
@requires("notifications:read")
def post_notification_read(notification_id: int):
    """Mark one of your notifications read."""
    session = db()
    scope = current_scope()
    mark_read(session, scope, notification_id)
    session.commit()
    return jsonify({"unread": unread_count(session, scope.user_id)})


@bp.post("/notifications/read")
@requires("notifications:read")
def post_notifications_read():
    """Mark all your notifications read."""
    session = db()
    scope = current_scope()
    marked = mark_read(session, scope)
    session.commit()
    return jsonify({"marked": marked, "unread": 0})
