"""Admin page, tariffs tab: list a house's tariffs, add one, end one (its last day: today) or delete one.

Every callback checks on the server that the cookie's user may open the Admin page and hold the
callback's permission; the house id from the browser is only looked up through dashboard/tariffs.py,
which checks it against the scope. Writes go through the same validation as the API, in one transaction.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, html, no_update
from dash.exceptions import PreventUpdate

from callbacks.common import bump, clicked, error_text, message, row_id, table
from dashboard.clock import local_today
from dashboard.context import db, services
from dashboard.errors import DomainError, NotFound, ValidationFailed
from dashboard.policy import allowed
from dashboard.scope import Scope
from dashboard.tariffs import create_tariff, delete_tariff, list_tariffs, update_tariff
from dashboard.ui_auth import ui_scope
from pages._admin_tariffs import (
    ADD,
    CHANGED,
    DELETE,
    END,
    EXPORT,
    FROM,
    HOUSE,
    IMPORT,
    KIND,
    MESSAGE,
    NAME,
    PERIODS,
    STANDING,
    TAB_ID,
    TABLE,
    TO,
)
from pages.admin import PERMISSION, tab_store

NOT_ALLOWED = "Not allowed: tariffs are set by admins."


def admin_scope(permission: str) -> Scope | None:
    scope = ui_scope()
    if scope is None or not allowed(PERMISSION, scope.role) or not allowed(permission, scope.role):
        return None
    return scope


def house_of(value) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise NotFound("Choose a house") from None


def parse_periods(text) -> list[dict]:
    """'weekday 07:00-23:00 0.30' a line -> the API's periods (checked further by dashboard/tariffs.py)."""
    periods = []
    for number, line in enumerate(str(text or "").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            days, span, price = parts if len(parts) == 3 else ("all", *parts)
            start, end = span.split("-")
            periods.append({"days": days, "start": start, "end": end, "import_price": float(price)})
        except ValueError:
            raise ValidationFailed(details=[{"field": f"periods line {number}",
                                             "message": "days start-end price, e.g. weekday 07:00-23:00 0.30"}]) from None  # fmt: skip
    return periods


def form_body(name, kind, import_price, export_price, standing, valid_from, valid_to, periods) -> dict:
    body = {
        "kind": kind,
        "valid_from": (valid_from or "").strip() or None,
        "valid_to": (valid_to or "").strip() or None,
    }
    if name and str(name).strip():
        body["name"] = str(name).strip()
    for key, value in (("import_price", import_price), ("export_price", export_price),
                       ("standing_charge_per_day", standing)):  # fmt: skip
        if value not in (None, ""):
            body[key] = value
    if kind == "tou":
        body["periods"] = parse_periods(periods)
        body.pop("import_price", None)
    return body


def tariff_action(_add, _ends, _deletes, house, name, kind, import_price, export_price, standing, valid_from,
                  valid_to, periods, changed):  # fmt: skip
    target = clicked()
    if target is None:
        raise PreventUpdate
    scope = admin_scope("tariffs:write")
    if scope is None:
        return *message(NOT_ALLOWED, "danger"), no_update
    session = db()
    try:
        house_id = house_of(house)
        if target == ADD:
            body = form_body(name, kind, import_price, export_price, standing, valid_from, valid_to, periods)
            tariff = create_tariff(session, scope, house_id, body)
            text = f"Tariff {tariff.id} ({tariff.name}) added to house {house_id}."
        elif isinstance(target, dict) and target.get("type") == END:
            today = local_today(services().settings.timezone).isoformat()
            tariff = update_tariff(session, scope, house_id, row_id(target), {"valid_to": today})
            text = f"Tariff {tariff.id} ends today ({today}, included)."
        elif isinstance(target, dict) and target.get("type") == DELETE:
            delete_tariff(session, scope, house_id, row_id(target))
            text = f"Tariff {row_id(target)} deleted."
        else:
            raise PreventUpdate
        session.commit()
    except DomainError as exc:
        session.rollback()
        return *message(error_text(exc), "danger"), no_update
    return *message(text, "success"), bump(changed)


def price_text(tariff) -> str:
    if tariff.kind == "flat":
        return f"{tariff.import_price:g} per kWh"
    return "; ".join(
        f"{p.days} {p.start_hour:02d}:00-{p.end_hour:02d}:00 {p.import_price:g}" for p in tariff.periods
    )


def tariffs_table(tab, house, _changed):
    if tab != TAB_ID:
        raise PreventUpdate
    scope = admin_scope("tariffs:read")
    if scope is None:
        return dbc.Alert(NOT_ALLOWED, color="danger")
    try:
        tariffs = list_tariffs(db(), scope, house_of(house))
    except DomainError as exc:
        return dbc.Alert(error_text(exc), color="warning")
    currency = services().settings.currency
    rows = []
    for t in tariffs:
        actions = html.Div([
            dbc.Button("End today", id={"type": END, "index": t.id}, size="sm", color="outline-secondary",
                       className="me-1"),
            dbc.Button("Delete", id={"type": DELETE, "index": t.id}, size="sm", color="outline-danger"),
        ])  # fmt: skip
        rows.append([t.id, t.name, t.kind, price_text(t), "-" if t.export_price is None else f"{t.export_price:g}",
                     "-" if t.standing_charge_per_day is None else f"{t.standing_charge_per_day:g}",
                     t.valid_from.isoformat(), t.valid_to.isoformat() if t.valid_to else "open", actions])  # fmt: skip
    headers = [
        "ID",
        "Name",
        "Kind",
        f"Import price ({currency})",
        "Feed-in",
        "Standing/day",
        "From",
        "To",
        "",
    ]
    return table(headers, rows, "admin-tariffs-rows", "This house has no tariff: its cost is not computed.")


def register_callbacks(app) -> None:
    app.callback(
        Output(MESSAGE, "children"),
        Output(MESSAGE, "color"),
        Output(MESSAGE, "is_open"),
        Output(CHANGED, "data"),
        Input(ADD, "n_clicks"),
        Input({"type": END, "index": ALL}, "n_clicks"),
        Input({"type": DELETE, "index": ALL}, "n_clicks"),
        State(HOUSE, "value"),
        *(State(c, "value") for c in (NAME, KIND, IMPORT, EXPORT, STANDING, FROM, TO, PERIODS)),  # fmt: skip
        State(CHANGED, "data"),
        prevent_initial_call=True,
    )(tariff_action)
    app.callback(
        Output(TABLE, "children"),
        Input(tab_store(TAB_ID), "data"),
        Input(HOUSE, "value"),
        Input(CHANGED, "data"),
        prevent_initial_call=True,
    )(tariffs_table)
