"""Admin page, "Houses and devices" tab: the houses with their device counts and communities, and the
devices of a chosen house, community or all, each with its last reading; both a page of PAGE_ROWS rows at
a time. A row is a few Dash components: 500 device rows took ~300 ms to build and 290 kB to send, and the
browser's renderer blocked for seconds on 100 + 100 rows (the tab settled 5-6 s after its click at 200
houses; 1-2 s with 25 rows a page, `make bench-ui --houses 200 --days 40`).

Every callback checks on the server that the caller may open the Admin page and holds metadata:read; the
house or community choice from the browser is checked against the scope (dashboard/choices.py), the page
number is only a number.
"""

from __future__ import annotations

import math

import dash_bootstrap_components as dbc
from dash import Input, Output, ctx, html
from dash.exceptions import PreventUpdate

from callbacks.common import error_text, scope_with, table
from dashboard import admin_queries as queries
from dashboard.choices import resolve_choice
from dashboard.clock import local_text
from dashboard.context import db, services
from dashboard.errors import DomainError
from dashboard.scope import Scope
from pages.admin import DEVICES_FILTER, PERMISSION, pager, tab_store

NOT_ALLOWED = "Not allowed: the Admin page is for admins only."
PAGE_ROWS = 25  # rows a page (houses, devices)
NONE = "-"


def admin_scope() -> Scope | None:
    return scope_with(PERMISSION, "metadata:read")


def page_number(value) -> int:
    """The pager's page (1 for anything that is not a positive whole number)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return 1
    return value


def pages(total: int) -> tuple[int, str]:
    """The pager's page count and class (hidden while everything fits on one page)."""
    count = max(1, math.ceil(total / PAGE_ROWS))
    return count, "mt-2" if count > 1 else "d-none"


def rows_note(page: int, shown: int, total: int, what: str):
    """Which rows the page shows, when there is more than one page."""
    if total <= PAGE_ROWS:
        return None
    first = (page - 1) * PAGE_ROWS
    text = (
        f"{what} {first + 1:,}-{first + shown:,} of {total:,}"
        if shown
        else f"No {what.lower()} on page {page}"
    )
    return html.P(text, className="text-muted small")


def houses_table(tab, page):
    if admin_scope() is None:
        return dbc.Alert(NOT_ALLOWED, color="danger", className="admin-refused"), 1, "d-none"
    if tab != "houses":
        raise PreventUpdate
    page = page_number(page)
    houses, total = queries.houses(db(), PAGE_ROWS, (page - 1) * PAGE_ROWS)
    rows = [[h.id, h.name, h.devices, ", ".join(h.communities) or NONE] for h in houses]
    return [
        table(["ID", "House", "Devices", "Communities"], rows, "admin-houses-rows", "No houses."),
        rows_note(page, len(rows), total, "Houses"),
    ], *pages(total)


def devices_table(tab, choice, page):
    scope = admin_scope()
    if scope is None:
        return dbc.Alert(NOT_ALLOWED, color="danger", className="admin-refused"), 1, "d-none", 1
    if tab != "houses":
        raise PreventUpdate
    page = 1 if ctx.triggered_id == DEVICES_FILTER else page_number(page)  # another choice: its first page
    tz, session = services().settings.timezone, db()
    try:
        devices, total = queries.devices(
            session, resolve_choice(session, scope, choice), PAGE_ROWS, (page - 1) * PAGE_ROWS
        )
    except DomainError as exc:
        return dbc.Alert(error_text(exc), color="danger"), 1, "d-none", 1
    rows = [
        [d.serial, d.name, d.kind, d.direction,
         f"{d.house} (#{d.house_id})" if d.house_id is not None else f"PV park: {d.park}",
         local_text(d.last_reading, tz, missing=NONE)]
        for d in devices
    ]  # fmt: skip
    headers = ["Serial", "Name", "Kind", "Direction", "House", f"Last reading ({tz})"]
    return (
        [
            table(headers, rows, "admin-devices-rows", "No devices."),
            rows_note(page, len(rows), total, "Devices"),
        ],
        *pages(total),
        page,
    )


def register_callbacks(app) -> None:
    houses, devices = pager("houses"), pager("devices")
    app.callback(
        Output("admin-houses-table", "children"),
        Output(houses, "max_value"),
        Output(houses, "class_name"),
        Input(tab_store("houses"), "data"),
        Input(houses, "active_page"),
        prevent_initial_call=True,
    )(houses_table)
    app.callback(
        Output("admin-devices-table", "children"),
        Output(devices, "max_value"),
        Output(devices, "class_name"),
        Output(devices, "active_page"),
        Input(tab_store("houses"), "data"),
        Input(DEVICES_FILTER, "value"),
        Input(devices, "active_page"),
        prevent_initial_call=True,
    )(devices_table)
