"""What the pages' callbacks share: error text for alerts, the date pickers' parsing, the button that was
clicked, and plain tables. (The scope dropdown and the checked choice: dashboard/choices.py.)"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, ctx, html, no_update
from dash.exceptions import MissingCallbackContextException, PreventUpdate

import pages._first_draw as first_draw
from dashboard.clock import local_days_bounds, to_local, utcnow
from dashboard.context import services
from dashboard.errors import DomainError, NotFound, ValidationFailed
from dashboard.policy import allowed
from dashboard.scope import Scope
from dashboard.ui_auth import ui_scope
from pages._components import REFRESH_CHOICES
from pages._urlstate import location_id, url_search, url_values


def scope_with(*permissions: str) -> Scope | None:
    """The caller's scope if they are logged in and hold every one of `permissions` (a page's and an
    action's, say); else None."""
    scope = ui_scope()
    if scope is None or not all(allowed(p, scope.role) for p in permissions):
        return None
    return scope


def error_text(exc: DomainError) -> str:
    """A domain error as one line for an alert: the message, then each field's problem."""
    return exc.one_line()


def parse_date(raw, field: str) -> date:
    try:
        return date.fromisoformat(str(raw)[:10])
    except (TypeError, ValueError):
        raise ValidationFailed(details=[{"field": field, "message": "a date, YYYY-MM-DD"}]) from None


def local_days_range(first: date, last: date, timezone: str) -> tuple[datetime, datetime]:
    """[first 00:00, last+1 00:00) local, as naive-UTC bounds (both days included)."""
    if last < first:
        raise ValidationFailed(
            details=[{"field": "end_date", "message": "must not be before the start date"}]
        )
    return local_days_bounds(first, last, timezone)


# ---- buttons and tables ------------------------------------------------------------------------------


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


def table(
    headers: list, rows: list[list], table_id: str, empty: str | None, className: str = "align-middle"
) -> Any:
    """A plain table; `empty`: the alert shown instead when there are no rows (None: an empty table)."""
    if not rows and empty is not None:
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
        className=className,
    )


def note(shown: int, total: int, limit: int, what: str):
    if total <= shown:
        return None
    return html.P(
        f"Showing the first {shown} of {total} {what} (limit {limit}).", className="text-muted small"
    )


def message(text, color: str = "info"):
    return text, color, True


# ---- callbacks the server calls first while drawing the page (pages/_first_draw.py) -------------------


def drawn_with_layout(app, path: str, outputs: list[Output], inputs: list, function) -> None:
    """Register `function` as the callback of these outputs and inputs (Inputs, then States); its first call
    is the server's, as it draws the page (with the inputs' values in the layout, the outputs written into
    it), so the browser calls it only when an input changes: no round trip and no second draw after a page
    loads. In that first call there is no callback context: `triggered_id()` is None, as on Dash's own."""
    app.callback(*outputs, *inputs, prevent_initial_call=True)(function)
    pairs = lambda deps: tuple((d.component_id, d.component_property) for d in deps)  # noqa: E731
    first_draw.register(path, first_draw.Drawer(pairs(outputs), pairs(inputs), function))


def triggered_id():
    """`dash.ctx.triggered_id` in a callback the browser called; None in the first call the server makes
    while drawing the page (drawn_with_layout), like Dash's own first call."""
    try:
        return ctx.triggered_id
    except (MissingCallbackContextException, LookupError):  # LookupError: a thread no callback ran in yet
        return None


# ---- the page's state in its URL (pages/_urlstate.py) -----------------------------------------------


def sync_url(app, prefix: str, fields) -> None:
    """Register the callback that writes a page's controls into its URL (`?key=value`, defaults left out)
    and, when the browser goes back or forward within the page, sets the controls from the URL it shows.

    The values come from the browser, so they are checked like the URL's own (a refused one is left out
    of the URL, a foreign scope included); an anonymous caller gets no change. One callback both ways
    (Dash allows a callback's own outputs among its inputs, never a cycle of two callbacks)."""
    fields = tuple(fields)
    location = location_id(prefix)

    def sync(*args):
        scope = ui_scope()
        if scope is None:
            raise PreventUpdate
        raw, search = args[: len(fields)], args[len(fields)]
        triggered = {t["prop_id"] for t in ctx.triggered}
        if f"{location}.pathname" in triggered:
            raise PreventUpdate  # back to another page: the page router draws it
        if f"{location}.search" not in triggered:  # a control changed: the URL follows
            return url_search(checked(raw, scope), fields), *[no_update] * len(fields)
        wanted = url_values(search, fields, scope)  # Back / Forward: the controls follow the URL
        changes = [
            wanted[f.key] if f.key in wanted and wanted[f.key] != value else no_update
            for f, value in zip(fields, raw, strict=True)
        ]
        if all(c is no_update for c in changes):
            raise PreventUpdate
        return no_update, *changes

    def checked(raw, scope) -> dict:
        values = {}
        for f, value in zip(fields, raw, strict=True):
            text = None if value is None else str(value)
            try:
                values[f.key] = None if text is None else f.parse(text, scope)
            except ValueError:
                values[f.key] = None
        return values

    app.callback(
        Output(location, "search"),
        *[Output(f.component, f.prop, allow_duplicate=True) for f in fields],
        *[Input(f.component, f.prop) for f in fields],
        Input(location, "search"),
        Input(location, "pathname"),
        prevent_initial_call=True,
    )(sync)


def sync_refresh(
    app, picker_id: str, interval_id: str, updated_id: str | None = None, path: str | None = None
) -> None:
    """The auto-refresh choice drives the page's dcc.Interval: its period, or disabled when paused (no
    request at all while paused). With `updated_id`, each tick also writes "last updated" local time (the
    first one drawn with the page at `path`, when given).
    The layout sets the Interval from the same choice (the URL's), so only a change of it calls back."""

    def follow(choice):
        if ui_scope() is None:
            return no_update, no_update
        every = REFRESH_CHOICES.get(choice) if isinstance(choice, str) else None
        return (every or 60_000), every is None

    app.callback(
        Output(interval_id, "interval"),
        Output(interval_id, "disabled"),
        Input(picker_id, "value"),
        prevent_initial_call=True,
    )(follow)
    if updated_id is not None:

        def updated(_n, choice):
            if ui_scope() is None:
                return no_update
            zone = services().settings.timezone
            paused = " (auto-refresh paused)" if REFRESH_CHOICES.get(choice) is None else ""
            return f"Last updated {to_local(utcnow(), zone):%H:%M:%S} ({zone}){paused}"

        outputs, inputs = (
            [Output(updated_id, "children")],
            [Input(interval_id, "n_intervals"), Input(picker_id, "value")],
        )
        if path is None:
            app.callback(*outputs, *inputs)(updated)
        else:  # drawn with the page, like the page's own callbacks
            drawn_with_layout(app, path, outputs, inputs, updated)
