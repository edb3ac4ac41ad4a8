"""Admin page callbacks: users, API keys, model versions and jobs (houses and devices: admin_houses.py).

Every callback first checks, on the server, that the cookie's user may open the Admin page AND holds the
callback's permission (`dashboard.policy.allowed`); anyone else gets a refusal and no data, and nothing is
written. Reads and writes are in dashboard/admin_queries.py; row buttons carry the row's id, which is only
ever parsed and looked up, never trusted.
"""

from __future__ import annotations

import json
import math

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, html, no_update
from dash.exceptions import PreventUpdate

from callbacks.common import bump, clicked, error_text, message, note, row_id, scope_with, table
from dashboard import admin_queries as queries
from dashboard.clock import local_text
from dashboard.context import db, services
from dashboard.errors import DomainError, ValidationFailed
from dashboard.scope import Scope
from pages.admin import KEY_REVOKE, MODEL_ACTIVATE, PERMISSION, TABS, USER_TOGGLE, tab_store

NOT_ALLOWED = "Not allowed: the Admin page is for admins only."
KEY_LIMIT = 500
MODEL_LIMIT = 500  # newest versions, as GET /api/v1/models
JOB_LIMIT = 100
ERROR_CHARS = 300
NONE = "-"
# In the browser, no request: the shown tab's id into that tab's store only (pages/admin.py tab_store)
SHOW_TAB_JS = f"""function (tab) {{
    return {json.dumps(list(TABS))}.map((id) => (id === tab ? id : window.dash_clientside.no_update));
}}"""
METRICS = (
    ("mae", "MAE", "{:.3f}"),
    ("mape", "MAPE", "{:.1%}"),
    ("r2", "R²", "{:.2f}"),
    ("coverage", "coverage", "{:.0%}"),
)


# ---- shared helpers ----------------------------------------------------------------------------------


def admin_scope(permission: str) -> Scope | None:
    """The caller's scope if they may open the Admin page and hold `permission`; else None."""
    return scope_with(PERMISSION, permission)


def refusal() -> dbc.Alert:
    return dbc.Alert(NOT_ALLOWED, color="danger", className="admin-refused")


def when(ts, timezone: str) -> str:
    return local_text(ts, timezone, missing=NONE)


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def house_ids(values) -> list[int]:
    """The multi-select's house ids as integers (create_user checks that each exists)."""
    if values in (None, ""):
        return []
    if not isinstance(values, list):
        values = [values]
    ids = []
    for value in values:
        try:
            if isinstance(value, bool):
                raise ValueError
            ids.append(int(value))
        except (TypeError, ValueError):
            raise ValidationFailed(
                details=[{"field": "house_ids", "message": "a list of house ids"}]
            ) from None
    return ids


def timezone() -> str:
    return services().settings.timezone


# ---- users -------------------------------------------------------------------------------------------


def users_rows(session, scope: Scope, tz: str) -> list[list]:
    rows = []
    for user in queries.users(session):
        houses = ", ".join(f"{h.name} (#{h.id})" for h in sorted(user.houses, key=lambda h: h.id)) or NONE
        to = "deactivate" if user.is_active else "reactivate"
        action = (
            dbc.Button(
                to.capitalize(),
                id={"type": USER_TOGGLE, "index": user.id, "to": to},
                size="sm",
                color="outline-danger" if user.is_active else "outline-success",
            )  # fmt: skip
            if user.id != scope.user_id
            else html.Span("(you)", className="text-muted")
        )
        active = (
            dbc.Badge("active", color="success")
            if user.is_active
            else dbc.Badge("inactive", color="secondary")
        )
        rows.append([user.username, user.role, active, houses, when(user.created_at, tz), action])
    return rows


def user_action(_create, _toggles, username, password, role, houses, changed):
    target = clicked()
    if target is None:
        raise PreventUpdate
    scope = admin_scope("users:write")
    if scope is None:
        return *message(NOT_ALLOWED, "danger"), no_update, no_update, no_update
    session = db()
    try:
        if target == "admin-user-create":
            user = queries.add_user(
                session, _text(username).strip(), _text(password), _text(role), house_ids(houses)
            )
            return *message(f"User {user.username} ({user.role}) created.", "success"), bump(changed), "", ""
        if isinstance(target, dict) and target.get("type") == USER_TOGGLE:
            action = target.get("to")
            if action not in ("deactivate", "reactivate"):
                raise ValidationFailed(details=[{"field": "action", "message": "deactivate or reactivate"}])
            user = queries.set_user_active(session, scope.user_id, row_id(target), action == "reactivate")
            return (
                *message(f"User {user.username} {action}d.", "success"),
                bump(changed),
                no_update,
                no_update,
            )
    except DomainError as exc:
        session.rollback()  # nothing written on error
        return *message(error_text(exc), "danger"), no_update, no_update, no_update
    raise PreventUpdate


def users_table(tab, _changed):
    scope = admin_scope("users:read")
    if scope is None:
        return refusal()
    if tab != "users":
        raise PreventUpdate
    tz = timezone()
    headers = ["Username", "Role", "Status", "Houses", f"Created ({tz})", ""]
    return table(headers, users_rows(db(), scope, tz), "admin-users-rows", "No users.")


# ---- API keys ----------------------------------------------------------------------------------------


def key_created_message(name: str, key: str):
    return html.Div(
        [
            html.Strong(f"API key '{name}' created. Copy it now: it is shown only this once."),
            html.Div(
                html.Code(key, id="admin-key-secret", className="fs-6 user-select-all"), className="my-2"
            ),
            html.Span("Third-party apps and gateways send it in the X-API-Key header."),
        ]
    )


def key_action(_create, _revokes, name, role, houses, changed):
    target = clicked()
    if target is None:
        raise PreventUpdate
    if admin_scope("api_keys:manage") is None:
        return *message(NOT_ALLOWED, "danger"), no_update, no_update
    session = db()
    try:
        if target == "admin-key-create":
            row, key = queries.add_api_key(session, _text(name).strip(), _text(role), house_ids(houses))
            # the key itself exists only in this response: it is never stored nor shown again
            return *message(key_created_message(row.name, key), "warning"), bump(changed), ""
        if isinstance(target, dict) and target.get("type") == KEY_REVOKE:
            row = queries.revoke_key(session, row_id(target))
            return (
                *message(f"API key '{row.name}' ({row.prefix}...) revoked.", "success"),
                bump(changed),
                no_update,
            )
    except DomainError as exc:
        session.rollback()
        return *message(error_text(exc), "danger"), no_update, no_update
    raise PreventUpdate


def keys_table(tab, _changed):
    if admin_scope("api_keys:manage") is None:
        return refusal()
    if tab != "keys":
        raise PreventUpdate
    tz, keys = timezone(), queries.api_keys(db(), KEY_LIMIT)
    houses, rows = queries.key_house_labels(db(), keys), []
    for key in keys:
        action = (
            dbc.Button("Revoke", id={"type": KEY_REVOKE, "index": key.id}, size="sm", color="outline-danger")
            if key.revoked_at is None
            else NONE
        )
        rows.append([key.name, key.role, houses.get(key.id, NONE), html.Code(f"{key.prefix}..."), when(key.created_at, tz),
                     when(key.last_used_at, tz) if key.last_used_at else "never",
                     when(key.revoked_at, tz) if key.revoked_at else "no", action])  # fmt: skip
    headers = ["Name", "Role", "Houses", "Prefix", f"Created ({tz})", "Last used", "Revoked", ""]
    return table(headers, rows, "admin-keys-rows", "No API keys.")


# ---- models ------------------------------------------------------------------------------------------


def metrics_text(raw: str | None) -> str:
    try:
        metrics = json.loads(raw or "{}")
    except ValueError:
        return NONE
    if not isinstance(metrics, dict):
        return NONE
    parts = []
    for key, label, fmt in METRICS:
        value = metrics.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            parts.append(f"{label} {fmt.format(value)}")
    return " · ".join(parts) or NONE


def scope_label(row, names: dict) -> str:
    if row.scope_kind == "all" or row.scope_id is None:
        return "All houses"
    name = names.get((row.scope_kind, row.scope_id), "deleted")
    return f"{row.scope_kind.capitalize()}: {name} (#{row.scope_id})"


def model_action(_activates, changed):
    target = clicked()
    if not isinstance(target, dict) or target.get("type") != MODEL_ACTIVATE:
        raise PreventUpdate
    if admin_scope("models:activate") is None:
        return *message(NOT_ALLOWED, "danger"), no_update
    session = db()
    try:
        row = queries.activate_version(session, services().model_store, row_id(target))
    except DomainError as exc:
        session.rollback()
        return *message(error_text(exc), "danger"), no_update
    text = (f"Version {row.version} is now the active {row.model}/{row.strategy} model for {row.target} "
            f"{row.product} (horizon {row.horizon}).")  # fmt: skip
    return *message(text, "success"), bump(changed)


def models_table(tab, _changed, _refresh):
    if admin_scope("models:read") is None:
        return refusal()
    if tab != "models":
        raise PreventUpdate
    tz, session = timezone(), db()
    versions, total = queries.model_versions(session, MODEL_LIMIT)
    names = queries.scope_names(session, versions)
    rows = []
    for v in versions:
        action = (
            dbc.Badge("active", color="success")
            if v.is_active
            else dbc.Button(
                "Activate", id={"type": MODEL_ACTIVATE, "index": v.id}, size="sm", color="outline-primary"
            )
        )
        rows.append([v.target, v.product, v.horizon, scope_label(v, names), v.model, v.strategy,
                     html.Code(v.version), when(v.trained_at, tz), metrics_text(v.metrics_json), action])  # fmt: skip
    headers = ["Target", "Product", "Horizon", "Scope", "Model", "Strategy", "Version",
               f"Trained at ({tz})", "Hold-out metrics", "Active"]  # fmt: skip
    return [
        table(headers, rows, "admin-models-rows", "No trained models yet (train one on the Forecasts page)."),
        note(len(rows), total, MODEL_LIMIT, "versions"),
    ]


# ---- jobs --------------------------------------------------------------------------------------------


def task_text(raw: str | None) -> str:
    try:
        params = json.loads(raw or "{}")
    except ValueError:
        return NONE
    if not isinstance(params, dict):
        return NONE
    head = " ".join(str(params[k]) for k in ("target", "product") if params.get(k))
    rest = ", ".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in ("target", "product"))
    return " · ".join(p for p in (head, rest) if p)[:120] or NONE


def jobs_table(tab, _refresh):
    if admin_scope("jobs:read") is None:
        return refusal()
    if tab != "jobs":
        raise PreventUpdate
    tz = timezone()
    found = queries.recent_runs(db(), JOB_LIMIT)
    rows = []
    for run in found.runs:
        if run.user_id is not None:
            who = found.usernames.get(run.user_id, f"user #{run.user_id}")
        elif run.api_key_id is not None:
            who = f"API key: {found.key_names.get(run.api_key_id, f'#{run.api_key_id}')}"
        else:
            who = "system"
        outcome = dbc.Badge(run.outcome, color="success" if run.outcome == "ok" else "danger")
        duration = f"{run.duration_ms / 1000:.2f} s" if run.duration_ms is not None else NONE
        error = (run.error or "")[:ERROR_CHARS] or NONE
        version = html.Code(run.model_version) if run.model_version else NONE
        rows.append([run.kind, when(run.at, tz), who, task_text(run.parameters_json), duration, outcome, error,
                     version])  # fmt: skip
    headers = ["Kind", f"When ({tz})", "By", "Task", "Duration", "Outcome", "Error", "Model version"]
    return table(headers, rows, "admin-jobs-rows", "No training or forecast runs yet.")


# ---- registration ------------------------------------------------------------------------------------


def shown(tab_id: str) -> Input:
    return Input(tab_store(tab_id), "data")


def register_callbacks(app) -> None:
    app.clientside_callback(
        SHOW_TAB_JS, *(Output(tab_store(t), "data") for t in TABS), Input("admin-tabs", "active_tab")
    )
    message_of = lambda name: [Output(f"admin-{name}-message", p) for p in ("children", "color", "is_open")]  # noqa: E731
    app.callback(
        *message_of("users"),
        Output("admin-users-changed", "data"),
        Output("admin-user-username", "value"),
        Output("admin-user-password", "value"),
        Input("admin-user-create", "n_clicks"),
        Input({"type": USER_TOGGLE, "index": ALL, "to": ALL}, "n_clicks"),
        State("admin-user-username", "value"),
        State("admin-user-password", "value"),
        State("admin-user-role", "value"),
        State("admin-user-houses", "value"),
        State("admin-users-changed", "data"),
        prevent_initial_call=True,
    )(user_action)
    app.callback(
        Output("admin-users-table", "children"),
        shown("users"),
        Input("admin-users-changed", "data"),
        prevent_initial_call=True,
    )(users_table)
    app.callback(
        *message_of("keys"),
        Output("admin-keys-changed", "data"),
        Output("admin-key-name", "value"),
        Input("admin-key-create", "n_clicks"),
        Input({"type": KEY_REVOKE, "index": ALL}, "n_clicks"),
        State("admin-key-name", "value"),
        State("admin-key-role", "value"),
        State("admin-key-houses", "value"),
        State("admin-keys-changed", "data"),
        prevent_initial_call=True,
    )(key_action)
    app.callback(
        Output("admin-keys-table", "children"),
        shown("keys"),
        Input("admin-keys-changed", "data"),
        prevent_initial_call=True,
    )(keys_table)
    app.callback(
        *message_of("models"),
        Output("admin-models-changed", "data"),
        Input({"type": MODEL_ACTIVATE, "index": ALL}, "n_clicks"),
        State("admin-models-changed", "data"),
        prevent_initial_call=True,
    )(model_action)
    app.callback(
        Output("admin-models-table", "children"),
        shown("models"),
        Input("admin-models-changed", "data"),
        Input("admin-models-refresh", "n_clicks"),
        prevent_initial_call=True,
    )(models_table)
    app.callback(
        Output("admin-jobs-table", "children"),
        shown("jobs"),
        Input("admin-jobs-refresh", "n_clicks"),
        prevent_initial_call=True,
    )(jobs_table)
