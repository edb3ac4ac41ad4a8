"""Admin page callbacks: users, houses and devices, API keys, model versions and jobs.

Every callback first checks, on the server, that the cookie's user may open the Admin page AND holds the
callback's permission (`dashboard.policy.allowed`); anyone else gets a refusal and no data, and nothing is
written. The writes go through the same services as the API: `create_user` (its validation),
`create_api_key`, and the model store's `activate` (the rollback of a slot).

Each tab has an action callback (buttons -> a message and a "changed" counter in a dcc.Store) and a
table callback (the active tab, the counter -> the table). Row buttons use pattern-matching ids whose
index is the row's id; an id sent by the browser is only ever looked up, never trusted.
"""

from __future__ import annotations

import json
import math
from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from callbacks.charts import to_local
from callbacks.common import error_text, resolve_choice
from dashboard.api.common import db, services
from dashboard.api.forecast_routes import model_store
from dashboard.auth import create_api_key, create_user, revoke_api_key
from dashboard.errors import DomainError, NotFound, ValidationFailed
from dashboard.policy import allowed
from dashboard.schema import (
    ApiKey,
    Community,
    Device,
    House,
    Measurement,
    ModelRun,
    ModelVersion,
    PVPark,
    User,
    community_houses,
)
from dashboard.scope import Scope
from dashboard.ui_auth import PAGE_ROLES, ui_scope

PATH = "/admin"
TABS = {
    "users": "Users",
    "houses": "Houses and devices",
    "keys": "API keys",
    "models": "Models",
    "jobs": "Jobs",
}
NOT_ALLOWED = "Not allowed: the Admin page is for admins only."
HOUSE_LIMIT = 1000
DEVICE_LIMIT = 500
KEY_LIMIT = 500
MODEL_LIMIT = 500  # newest versions, as GET /api/v1/models
JOB_LIMIT = 100
ERROR_CHARS = 300
USER_TOGGLE, KEY_REVOKE, MODEL_ACTIVATE = "admin-user-active", "admin-key-revoke", "admin-model-activate"
NONE = "-"


# ---- shared helpers ----------------------------------------------------------------------------------


def admin_scope(permission: str) -> Scope | None:
    """The caller's scope if they may open the Admin page and hold `permission`; else None."""
    scope = ui_scope()
    if scope is None or scope.role not in PAGE_ROLES[PATH] or not allowed(permission, scope.role):
        return None
    return scope


def refusal() -> dbc.Alert:
    return dbc.Alert(NOT_ALLOWED, color="danger", className="admin-refused")


def clicked() -> Any:
    """The id of the button whose click triggered the callback, or None (e.g. a row button that was just
    rendered, which Dash reports with n_clicks None)."""
    for item in ctx.triggered:
        if item.get("value"):
            prop_id = item["prop_id"].rpartition(".")[0]
            return json.loads(prop_id) if prop_id.startswith("{") else prop_id
    return None


def bump(counter) -> int:
    return (counter if isinstance(counter, int) and not isinstance(counter, bool) else 0) + 1


def row_id(target: Any) -> int:
    """The integer index of a pattern-matching button id; NotFound for anything else."""
    index = target.get("index") if isinstance(target, dict) else None
    if isinstance(index, bool) or not isinstance(index, int | str):
        raise NotFound("No such row")
    try:
        return int(index)
    except ValueError:
        raise NotFound("No such row") from None


def local_text(ts, timezone: str) -> str:
    return to_local(ts, timezone).strftime("%Y-%m-%d %H:%M") if ts is not None else NONE


def table(headers: list, rows: list[list], table_id: str, empty: str) -> Any:
    if not rows:
        return dbc.Alert(empty, color="info", id=f"{table_id}-empty")
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in headers])),
            html.Tbody([html.Tr([html.Td(cell) for cell in row]) for row in rows]),
        ],
        id=table_id,
        striped=True,
        hover=True,
        size="sm",
        responsive=True,
        className="align-middle",
    )


def note(shown: int, total: int, limit: int, what: str):
    if total <= shown:
        return None
    return html.P(
        f"Showing the first {shown} of {total} {what} (limit {limit}).", className="text-muted small"
    )


def message(text, color: str = "info"):
    return text, color, True


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


# ---- users -------------------------------------------------------------------------------------------


def create_user_from_form(session, username, password, role, houses) -> str:
    user = create_user(session, _text(username).strip(), _text(password), _text(role), house_ids(houses))
    try:
        session.commit()
    except IntegrityError:  # a concurrent create of the same username
        session.rollback()
        raise ValidationFailed(details=[{"field": "username", "message": "already taken"}]) from None
    return f"User {user.username} ({user.role}) created."


def set_user_active(session, scope: Scope, target: dict) -> str:
    action = target.get("to")
    if action not in ("deactivate", "reactivate"):
        raise ValidationFailed(details=[{"field": "action", "message": "deactivate or reactivate"}])
    user = session.get(User, row_id(target))
    if user is None:
        raise NotFound("No such user")
    if user.id == scope.user_id and action == "deactivate":
        raise ValidationFailed("You cannot deactivate your own account")
    user.is_active = action == "reactivate"
    session.commit()
    return f"User {user.username} {action}d."


def users_rows(session, scope: Scope, timezone: str) -> list[list]:
    users = session.scalars(select(User).options(selectinload(User.houses)).order_by(User.username)).all()
    rows = []
    for user in users:
        houses = ", ".join(f"{h.name} (#{h.id})" for h in sorted(user.houses, key=lambda h: h.id)) or NONE
        to = "deactivate" if user.is_active else "reactivate"
        action = (
            dbc.Button(
                to.capitalize(),
                id={"type": USER_TOGGLE, "index": user.id, "to": to},
                size="sm",
                color="outline-danger" if user.is_active else "outline-success",
            )
            if user.id != scope.user_id
            else html.Span("(you)", className="text-muted")
        )
        active = (
            dbc.Badge("active", color="success")
            if user.is_active
            else dbc.Badge("inactive", color="secondary")
        )
        rows.append([user.username, user.role, active, houses, local_text(user.created_at, timezone), action])
    return rows


# ---- houses and devices ------------------------------------------------------------------------------


def houses_rows(session) -> tuple[list[list], int]:
    total = session.scalar(select(func.count(House.id)))
    counts = (
        select(Device.house_id, func.count(Device.id).label("n"))
        .where(Device.house_id.is_not(None))
        .group_by(Device.house_id)
        .subquery()
    )
    houses = session.execute(
        select(House.id, House.name, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.house_id == House.id)
        .order_by(House.name, House.id)
        .limit(HOUSE_LIMIT)
    ).all()
    communities: dict[int, list[str]] = {}
    ids = [h.id for h in houses]
    for house_id, name in session.execute(
        select(community_houses.c.house_id, Community.name)
        .join(Community, Community.id == community_houses.c.community_id)
        .where(community_houses.c.house_id.in_(ids))
        .order_by(Community.name)
    ):
        communities.setdefault(house_id, []).append(name)
    rows = [
        [house_id, name, n, ", ".join(communities.get(house_id, [])) or NONE] for house_id, name, n in houses
    ]
    return rows, total


def devices_rows(session, scope: Scope, choice, timezone: str) -> tuple[list[list], int]:
    """Devices of the chosen house / community / all, each with its last reading: one index probe per
    device on the (device_id, ts) primary key, never a scan of the readings."""
    picked = resolve_choice(session, scope, choice)
    where = []
    if picked.house_id is not None:
        where.append(Device.house_id == picked.house_id)
    elif picked.community_id is not None:
        members = select(community_houses.c.house_id).where(
            community_houses.c.community_id == picked.community_id
        )
        where.append(Device.house_id.in_(members))
    total = session.scalar(select(func.count(Device.id)).where(*where))
    last = select(func.max(Measurement.ts)).where(Measurement.device_id == Device.id).scalar_subquery()
    result = session.execute(
        select(
            Device.serial, Device.name, Device.kind, Device.direction, House.id, House.name, PVPark.name, last
        )
        .outerjoin(House, House.id == Device.house_id)
        .outerjoin(PVPark, PVPark.id == Device.pv_park_id)
        .where(*where)
        .order_by(House.name.nulls_last(), Device.serial)
        .limit(DEVICE_LIMIT)
    ).all()
    rows = []
    for serial, name, kind, direction, house_id, house, park, last_ts in result:
        where_text = f"{house} (#{house_id})" if house_id is not None else f"PV park: {park}"
        rows.append([serial, name, kind, direction, where_text, local_text(last_ts, timezone)])
    return rows, total


# ---- API keys ----------------------------------------------------------------------------------------


def key_created_message(name: str, key: str):
    return html.Div(
        [
            html.Strong(f"API key '{name}' created. Copy it now: it is shown only this once."),
            html.Div(
                html.Code(key, id="admin-key-secret", className="fs-6 user-select-all"), className="my-2"
            ),
            html.Span("Third-party apps send it in the X-API-Key header."),
        ]
    )


def revoke_key(session, target: dict) -> str:
    row = revoke_api_key(session, row_id(target))  # as DELETE /api/v1/api-keys/<id>
    session.commit()
    return f"API key '{row.name}' ({row.prefix}...) revoked."


def keys_rows(session, timezone: str) -> list[list]:
    rows = []
    for key in session.scalars(select(ApiKey).order_by(ApiKey.id).limit(KEY_LIMIT)):
        action = (
            dbc.Button("Revoke", id={"type": KEY_REVOKE, "index": key.id}, size="sm", color="outline-danger")
            if key.revoked_at is None
            else NONE
        )
        rows.append(
            [
                key.name,
                html.Code(f"{key.prefix}..."),
                local_text(key.created_at, timezone),
                local_text(key.last_used_at, timezone) if key.last_used_at else "never",
                local_text(key.revoked_at, timezone) if key.revoked_at else "no",
                action,
            ]
        )
    return rows


# ---- models ------------------------------------------------------------------------------------------

METRICS = (
    ("mae", "MAE", "{:.3f}"),
    ("mape", "MAPE", "{:.1%}"),
    ("r2", "R²", "{:.2f}"),
    ("coverage", "coverage", "{:.0%}"),
)


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


def scope_names(session, rows) -> dict[tuple[str, int], str]:
    names = {}
    house_ids_ = {r.scope_id for r in rows if r.scope_kind == "house" and r.scope_id is not None}
    community_ids = {r.scope_id for r in rows if r.scope_kind == "community" and r.scope_id is not None}
    if house_ids_:
        for house_id, name in session.execute(select(House.id, House.name).where(House.id.in_(house_ids_))):
            names[("house", house_id)] = name
    if community_ids:
        for cid, name in session.execute(
            select(Community.id, Community.name).where(Community.id.in_(community_ids))
        ):
            names[("community", cid)] = name
    return names


def scope_label(row, names: dict) -> str:
    if row.scope_kind == "all" or row.scope_id is None:
        return "All houses"
    name = names.get((row.scope_kind, row.scope_id), "deleted")
    return f"{row.scope_kind.capitalize()}: {name} (#{row.scope_id})"


def slot_key(row) -> tuple:
    return (row.target, row.product, row.horizon, row.scope_kind, row.scope_id or 0, row.model, row.strategy)


def activate_version(session, target: dict) -> str:
    row = model_store().activate(session, row_id(target))  # NotFound for an unknown id
    session.commit()
    return (
        f"Version {row.version} is now the active {row.model}/{row.strategy} model for {row.target} "
        f"{row.product} (horizon {row.horizon})."
    )


def models_rows(session, timezone: str) -> tuple[list[list], int]:
    total = session.scalar(select(func.count(ModelVersion.id)))
    versions = session.scalars(select(ModelVersion).order_by(ModelVersion.id.desc()).limit(MODEL_LIMIT)).all()
    names = scope_names(session, versions)
    # grouped by slot, newest first within a slot, so a rollback target sits under the active version
    versions = sorted(versions, key=lambda r: (slot_key(r), -r.id))
    rows = []
    for v in versions:
        action = (
            dbc.Badge("active", color="success")
            if v.is_active
            else dbc.Button(
                "Activate", id={"type": MODEL_ACTIVATE, "index": v.id}, size="sm", color="outline-primary"
            )
        )
        rows.append(
            [
                v.target,
                v.product,
                v.horizon,
                scope_label(v, names),
                v.model,
                v.strategy,
                html.Code(v.version),
                local_text(v.trained_at, timezone),
                metrics_text(v.metrics_json),
                action,
            ]
        )
    return rows, total


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


def jobs_rows(session, timezone: str) -> list[list]:
    runs = session.scalars(
        select(ModelRun).order_by(ModelRun.at.desc(), ModelRun.id.desc()).limit(JOB_LIMIT)
    ).all()
    user_ids = {r.user_id for r in runs if r.user_id is not None}
    key_ids = {r.api_key_id for r in runs if r.api_key_id is not None}
    users = (
        dict(session.execute(select(User.id, User.username).where(User.id.in_(user_ids))).all())
        if user_ids
        else {}
    )
    keys = (
        dict(session.execute(select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(key_ids))).all())
        if key_ids
        else {}
    )
    rows = []
    for run in runs:
        if run.user_id is not None:
            who = users.get(run.user_id, f"user #{run.user_id}")
        elif run.api_key_id is not None:
            who = f"API key: {keys.get(run.api_key_id, f'#{run.api_key_id}')}"
        else:
            who = "system"
        outcome = dbc.Badge(run.outcome, color="success" if run.outcome == "ok" else "danger")
        duration = f"{run.duration_ms / 1000:.2f} s" if run.duration_ms is not None else NONE
        error = (run.error or "")[:ERROR_CHARS] or NONE
        version = html.Code(run.model_version) if run.model_version else NONE
        rows.append([run.kind, local_text(run.at, timezone), who, task_text(run.parameters_json), duration, outcome,
                     error, version])  # fmt: skip
    return rows


# ---- callbacks ---------------------------------------------------------------------------------------


def register_callbacks(app) -> None:
    @app.callback(
        Output("admin-users-message", "children"),
        Output("admin-users-message", "color"),
        Output("admin-users-message", "is_open"),
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
    )
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
                text = create_user_from_form(session, username, password, role, houses)
                return *message(text, "success"), bump(changed), "", ""
            if isinstance(target, dict) and target.get("type") == USER_TOGGLE:
                text = set_user_active(session, scope, target)
                return *message(text, "success"), bump(changed), no_update, no_update
        except DomainError as exc:
            session.rollback()  # nothing written on error
            return *message(error_text(exc), "danger"), no_update, no_update, no_update
        raise PreventUpdate

    @app.callback(
        Output("admin-users-table", "children"),
        Input("admin-tabs", "active_tab"),
        Input("admin-users-changed", "data"),
    )
    def users_table(tab, _changed):
        scope = admin_scope("users:read")
        if scope is None:
            return refusal()
        if tab != "users":
            raise PreventUpdate
        timezone = services().settings.timezone
        headers = ["Username", "Role", "Status", "Houses", f"Created ({timezone})", ""]
        return table(headers, users_rows(db(), scope, timezone), "admin-users-rows", "No users.")

    @app.callback(Output("admin-houses-table", "children"), Input("admin-tabs", "active_tab"))
    def houses_table(tab):
        if admin_scope("metadata:read") is None:
            return refusal()
        if tab != "houses":
            raise PreventUpdate
        rows, total = houses_rows(db())
        return [
            table(["ID", "House", "Devices", "Communities"], rows, "admin-houses-rows", "No houses."),
            note(len(rows), total, HOUSE_LIMIT, "houses"),
        ]

    @app.callback(
        Output("admin-devices-table", "children"),
        Input("admin-tabs", "active_tab"),
        Input("admin-devices-house", "value"),
    )
    def devices_table(tab, choice):
        scope = admin_scope("metadata:read")
        if scope is None:
            return refusal()
        if tab != "houses":
            raise PreventUpdate
        timezone = services().settings.timezone
        try:
            rows, total = devices_rows(db(), scope, choice, timezone)
        except DomainError as exc:
            return dbc.Alert(error_text(exc), color="danger")
        headers = ["Serial", "Name", "Kind", "Direction", "House", f"Last reading ({timezone})"]
        return [
            table(headers, rows, "admin-devices-rows", "No devices."),
            note(len(rows), total, DEVICE_LIMIT, "devices"),
        ]

    @app.callback(
        Output("admin-keys-message", "children"),
        Output("admin-keys-message", "color"),
        Output("admin-keys-message", "is_open"),
        Output("admin-keys-changed", "data"),
        Output("admin-key-name", "value"),
        Input("admin-key-create", "n_clicks"),
        Input({"type": KEY_REVOKE, "index": ALL}, "n_clicks"),
        State("admin-key-name", "value"),
        State("admin-keys-changed", "data"),
        prevent_initial_call=True,
    )
    def key_action(_create, _revokes, name, changed):
        target = clicked()
        if target is None:
            raise PreventUpdate
        if admin_scope("api_keys:manage") is None:
            return *message(NOT_ALLOWED, "danger"), no_update, no_update
        session = db()
        try:
            if target == "admin-key-create":
                row, key = create_api_key(session, _text(name).strip())
                session.commit()
                # the key itself exists only in this response: it is never stored nor shown again
                return *message(key_created_message(row.name, key), "warning"), bump(changed), ""
            if isinstance(target, dict) and target.get("type") == KEY_REVOKE:
                return *message(revoke_key(session, target), "success"), bump(changed), no_update
        except DomainError as exc:
            session.rollback()
            return *message(error_text(exc), "danger"), no_update, no_update
        raise PreventUpdate

    @app.callback(
        Output("admin-keys-table", "children"),
        Input("admin-tabs", "active_tab"),
        Input("admin-keys-changed", "data"),
    )
    def keys_table(tab, _changed):
        if admin_scope("api_keys:manage") is None:
            return refusal()
        if tab != "keys":
            raise PreventUpdate
        timezone = services().settings.timezone
        headers = ["Name", "Prefix", f"Created ({timezone})", "Last used", "Revoked", ""]
        return table(headers, keys_rows(db(), timezone), "admin-keys-rows", "No API keys.")

    @app.callback(
        Output("admin-models-message", "children"),
        Output("admin-models-message", "color"),
        Output("admin-models-message", "is_open"),
        Output("admin-models-changed", "data"),
        Input({"type": MODEL_ACTIVATE, "index": ALL}, "n_clicks"),
        State("admin-models-changed", "data"),
        prevent_initial_call=True,
    )
    def model_action(_activates, changed):
        target = clicked()
        if not isinstance(target, dict) or target.get("type") != MODEL_ACTIVATE:
            raise PreventUpdate
        if admin_scope("models:activate") is None:
            return *message(NOT_ALLOWED, "danger"), no_update
        session = db()
        try:
            return *message(activate_version(session, target), "success"), bump(changed)
        except DomainError as exc:
            session.rollback()
            return *message(error_text(exc), "danger"), no_update

    @app.callback(
        Output("admin-models-table", "children"),
        Input("admin-tabs", "active_tab"),
        Input("admin-models-changed", "data"),
        Input("admin-models-refresh", "n_clicks"),
    )
    def models_table(tab, _changed, _refresh):
        if admin_scope("models:read") is None:
            return refusal()
        if tab != "models":
            raise PreventUpdate
        timezone = services().settings.timezone
        rows, total = models_rows(db(), timezone)
        headers = ["Target", "Product", "Horizon", "Scope", "Model", "Strategy", "Version",
                   f"Trained at ({timezone})", "Hold-out metrics", "Active"]  # fmt: skip
        return [
            table(
                headers, rows, "admin-models-rows", "No trained models yet (train one on the Forecasts page)."
            ),
            note(len(rows), total, MODEL_LIMIT, "versions"),
        ]

    @app.callback(
        Output("admin-jobs-table", "children"),
        Input("admin-tabs", "active_tab"),
        Input("admin-jobs-refresh", "n_clicks"),
    )
    def jobs_table(tab, _refresh):
        if admin_scope("jobs:read") is None:
            return refusal()
        if tab != "jobs":
            raise PreventUpdate
        timezone = services().settings.timezone
        headers = [
            "Kind",
            f"When ({timezone})",
            "By",
            "Task",
            "Duration",
            "Outcome",
            "Error",
            "Model version",
        ]
        return table(
            headers, jobs_rows(db(), timezone), "admin-jobs-rows", "No training or forecast runs yet."
        )
