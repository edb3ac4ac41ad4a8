"""Alerts page callbacks and the navbar's bell.

Every callback resolves the caller from the cookie (`ui_scope()`) and checks the page's and the data's
permissions on the server; rules and notifications are always the caller's own (a forged rule id in a
delete button, or another user's, is NotFound). What a rule may watch is checked by the same service as
the API (dashboard/alert_rules.py): a house id from the browser is only checked against the scope.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, html, no_update
from dash.exceptions import PreventUpdate

from callbacks.common import bump, clicked, error_text, row_id, table
from dashboard.alert_rules import (
    create_rule,
    list_notifications,
    list_rules,
    mark_read,
    own_rule,
    unread_count,
)
from dashboard.choices import COMMUNITY_PREFIX
from dashboard.clock import local_text
from dashboard.context import db, services
from dashboard.errors import DomainError, ValidationFailed
from dashboard.policy import allowed
from dashboard.scope import Scope
from dashboard.ui_auth import ui_scope
from pages.alerts import (
    BELL_COUNT,
    BELL_TICK,
    CREATE,
    DELETE,
    DIRECTION,
    EMAIL,
    FLEET,
    KIND,
    MESSAGE,
    METRIC,
    MINUTES,
    NAME_INPUT,
    NOMINAL,
    NOTIFICATIONS,
    PERMISSION,
    READ_ALL,
    REFRESH,
    RULES,
    TARGET,
    THRESHOLD,
    VERSION,
    WEBHOOK_SECRET,
    WEBHOOK_URL,
    badge_text,
)

NOT_ALLOWED = "Not allowed: log in with an account that may use alerts."
NOTIFICATION_ROWS = 50


def alerts_scope(permission: str = "alerts:manage") -> Scope | None:
    """The caller's scope if they may open the Alerts page and hold `permission`; else None."""
    scope = ui_scope()
    if scope is None or not allowed(PERMISSION, scope.role) or not allowed(permission, scope.role):
        return None
    return scope


def target_fields(value) -> dict:
    """The form's choice as scope_kind and scope_id (checked against the scope by the service)."""
    text = str(value or "")
    if text == FLEET:
        return {"scope_kind": "fleet"}
    kind = "community" if text.startswith(COMMUNITY_PREFIX) else "house"
    number = text.removeprefix(COMMUNITY_PREFIX)
    if not number.isdigit():
        raise ValidationFailed(details=[{"field": "scope_id", "message": "choose a house or community"}])
    return {"scope_kind": kind, "scope_id": int(number)}


def number(value):
    """A number input's value as int or float (the service refuses what is out of range)."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        return value  # refused with the field's name by the service
    return int(parsed) if parsed.is_integer() else parsed


def rule_input(
    name, kind, target, minutes, metric, direction, threshold, nominal, email, url, secret
) -> dict:
    params = {
        "silent_device": {"minutes": number(minutes)},
        "threshold": {"metric": metric, "direction": direction, "threshold_kw": number(threshold),
                      "minutes": number(minutes)},
        "voltage_event": {"nominal_v": number(nominal)},
    }.get(kind, {})  # fmt: skip
    data = {"name": name or "", "kind": kind, "params": params, "email": bool(email)} | target_fields(target)
    if url:
        data["webhook_url"] = url
        if secret:
            data["webhook_secret"] = secret
    return data


def act(create_clicks, delete_clicks, read_clicks, version, *form):
    """Create a rule, delete one, or mark every notification read; bumps the version the lists follow."""
    target = clicked()
    if target is None:
        raise PreventUpdate
    scope = alerts_scope("notifications:read" if target == READ_ALL else "alerts:manage")
    if scope is None:
        return NOT_ALLOWED, "danger", True, no_update
    session = db()
    try:
        if target == CREATE:
            rule = create_rule(
                session, scope, rule_input(*form), services().settings.alert_webhook_allow_link_local
            )
            text = f"Rule {rule.name!r} created."
            if rule.webhook_secret:
                text += f" Webhook signing secret (shown once): {rule.webhook_secret}"
        elif target == READ_ALL:
            text = f"{mark_read(session, scope)} notification(s) marked read."
        else:
            rule = own_rule(session, scope, row_id(target))
            session.delete(rule)
            text = f"Rule {rule.name!r} deleted."
        session.commit()
    except DomainError as exc:
        session.rollback()
        return error_text(exc), "danger", True, no_update
    return text, "success", True, bump(version)


def params_text(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "-"


def rules_table(rows: list[dict]):
    body = [
        [r["name"], r["kind"].replace("_", " "), f"{r['scope_kind']} {r['scope_id'] or ''}".strip(),
         params_text(r["params"]), ", ".join(["in-app"] + ["e-mail"] * r["email"] + ["webhook"] * bool(r["webhook"])),
         dbc.Badge("firing", color="danger") if r["firing"] else "ok", r["last_error"] or "",
         dbc.Button("Delete", id={"type": DELETE, "index": r["id"]}, size="sm", color="outline-danger")]
        for r in rows
    ]  # fmt: skip
    headers = ["Name", "Kind", "Where", "Parameters", "Channels", "State", "Last error", ""]
    return table(headers, body, "alerts-rules-table", "No rules yet: create one above.")


def notifications_list(rows: list[dict], timezone: str):
    if not rows:
        return dbc.Alert("No notifications.", color="info", id="alerts-notifications-empty")
    items = [
        dbc.ListGroupItem(
            [html.Div([html.Strong(n["title"]) if not n["read"] else html.Span(n["title"]),
                       html.Small(local_text(n["created_at"], timezone), className="text-muted ms-2")]),
             html.Div(n["body"], className="small")],
            className="notification-unread" if not n["read"] else "notification-read",
        )
        for n in rows
    ]  # fmt: skip
    return dbc.ListGroup(items, id="alerts-notification-items")


def refresh(version, _tick):
    """The caller's own rules and notifications."""
    scope = alerts_scope()
    if scope is None:
        refused = dbc.Alert(NOT_ALLOWED, color="danger")
        return refused, refused
    session = db()
    notes = list_notifications(session, scope, limit=NOTIFICATION_ROWS)
    return rules_table(list_rules(session, scope)), notifications_list(notes, services().settings.timezone)


def bell_count(_tick, _pathname):
    """The bell's unread count: on every page change and every minute."""
    scope = alerts_scope("notifications:read")
    if scope is None:
        return ""
    count = unread_count(db(), scope.user_id)
    return badge_text(count) if count else ""


def register_callbacks(app) -> None:
    form = (NAME_INPUT, KIND, TARGET, MINUTES, METRIC, DIRECTION, THRESHOLD, NOMINAL)
    app.callback(
        Output(MESSAGE, "children"),
        Output(MESSAGE, "color"),
        Output(MESSAGE, "is_open"),
        Output(VERSION, "data"),
        Input(CREATE, "n_clicks"),
        Input({"type": DELETE, "index": ALL}, "n_clicks"),
        Input(READ_ALL, "n_clicks"),
        State(VERSION, "data"),
        *(State(i, "value") for i in form),
        State(EMAIL, "value"),
        State(WEBHOOK_URL, "value"),
        State(WEBHOOK_SECRET, "value"),
        prevent_initial_call=True,
    )(act)
    app.callback(
        Output(RULES, "children"),
        Output(NOTIFICATIONS, "children"),
        Input(VERSION, "data"),
        Input(REFRESH, "n_intervals"),
    )(refresh)
    app.callback(  # the navbar is drawn with the count (pages/alerts.py bell): no call on load
        Output(BELL_COUNT, "children"),
        Input(BELL_TICK, "n_intervals"),
        Input("_pages_location", "pathname"),
        prevent_initial_call=True,
    )(bell_count)
