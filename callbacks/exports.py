"""Exports page callbacks: summary statistics per day, week or month, previewed and downloaded as CSV.

The numbers come from the export service (`dashboard.exports.summary`) and the CSV from the API's own
writer (`dashboard.exports.csv_lines`), so the page and `GET /api/v1/exports/summary` give the
same columns and units. The page is for people: its table and its CSV are rounded
(`dashboard.exports.PEOPLE_DECIMALS`); the API keeps full precision. The scope always comes from the server-side cookie (`ui_scope()`); a house id
sent by the browser is only ever checked against it.
"""

from __future__ import annotations

from datetime import timedelta

import dash_bootstrap_components as dbc
from dash import Input, Output, State, html, no_update

import pages.exports as exports_page
from callbacks.common import drawn_with_layout, error_text, sync_url
from callbacks.common import parse_date as _date
from callbacks.ranges import checked_days, local_today, register_range_picker
from dashboard.choices import ALL, NO_HOUSE
from dashboard.clock import utcnow
from dashboard.context import db, services
from dashboard.costs import cost_columns
from dashboard.errors import DomainError, NotFound
from dashboard.exports import COLUMNS, HOUSE_COLUMN, Summary, csv_lines, people_cell, summary
from dashboard.schema import House
from dashboard.scope import Scope
from dashboard.ui_auth import ui_scope
from pages.exports import DATES, DOWNLOAD, DOWNLOAD_BUTTON, DOWNLOAD_STATUS, MESSAGE, PERIOD, SCOPE, TABLE


def chosen_house(session, scope: Scope, choice) -> int | None:
    """None for the whole scope; else a house id the scope allows (NotFound otherwise)."""
    if choice in (None, "", ALL):
        return None
    try:
        house_id = int(choice)
    except (TypeError, ValueError):
        raise NotFound(NO_HOUSE) from None
    if not scope.can_see_house(house_id) or session.get(House, house_id) is None:
        raise NotFound(NO_HOUSE)
    return house_id


def run_summary(scope: Scope, period, start_date, end_date, choice) -> tuple[Summary, int | None]:
    """The export service for the page's inputs: local dates [start_date, end_date], both inclusive.
    Returns the summary and the checked house id (None for the whole scope)."""
    settings = services().settings
    _first, _last, start, end = checked_days(start_date, end_date, settings.timezone, local_today())
    session = db()
    house_id = chosen_house(session, scope, choice)
    result = summary(
        session,
        scope,
        str(period or ""),  # check_request refuses anything but daily, weekly, monthly
        start,
        end,  # at most three years: the service refuses more (check_request)
        timezone=settings.timezone,
        secret_key=settings.secret_key,
        house_id=house_id,
    )
    cost_columns(session, scope, result, settings, utcnow(), house_id)  # where a tariff or intensity is set
    return result, house_id


def csv_filename(result: Summary, start_date, end_date, house_id) -> str:
    first = _date(start_date, "start_date")
    last = _date(end_date, "end_date") + timedelta(days=1)  # exclusive, as the API names its files
    suffix = f"_house{house_id}" if house_id is not None else ""
    return f"summary_{result.period}_{first:%Y%m%d}_{last:%Y%m%d}{suffix}.csv"


def cell_text(column: str, value) -> str:
    """A summary value as the preview shows it: the page CSV's text, rounded (empty for no data)."""
    return people_cell(column, value)


def key_columns_first(columns) -> list[str]:
    """The period (and house), then the energy (kWh) columns, then the rest in their order: what a phone
    shows before the table scrolls sideways."""
    columns = list(columns)
    energy = [c for c in columns if c.endswith("_kwh")]
    head = [c for c in columns if c in ("period", HOUSE_COLUMN)] + energy
    return head + [c for c in columns if c not in head]


def summary_table(rows: list[dict]) -> dbc.Table:
    """The preview: the CSV's columns (units in the names) and values, one row per period, the key
    columns first (the CSV keeps the API's order)."""
    columns = key_columns_first(rows[0] if rows else COLUMNS)  # with the cost columns when a tariff is set
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th(column) for column in columns])),
            html.Tbody(
                [html.Tr([html.Td(cell_text(column, row[column])) for column in columns]) for row in rows]
            ),
        ],
        id="exports-rows",
        bordered=True,
        hover=True,
        size="sm",
        striped=True,
    )


def preview(period, start_date, end_date, choice):
    scope = ui_scope()
    if scope is None:  # the request guard already refused anonymous calls; belt and braces
        return [], "Please log in.", "danger", True
    try:
        result, _house_id = run_summary(scope, period, start_date, end_date, choice)
    except DomainError as exc:
        return [], error_text(exc), "danger", True
    if not result.rows:
        return [], "No readings in this range.", "info", True
    return summary_table(result.rows), "", "info", False


def download(n_clicks, period, start_date, end_date, choice):
    if not n_clicks:
        return no_update, no_update
    scope = ui_scope()
    if scope is None:
        return None, "Please log in."
    try:
        result, house_id = run_summary(scope, period, start_date, end_date, choice)
    except DomainError as exc:
        return None, error_text(exc)
    content = "".join(csv_lines(result, for_people=True))
    name = csv_filename(result, start_date, end_date, house_id)
    return {"content": content, "filename": name, "type": "text/csv"}, f"{len(result.rows)} row(s)."


def register_callbacks(app) -> None:
    sync_url(app, exports_page.URL_PREFIX, exports_page.URL_FIELDS)  # the page's state in its URL
    register_range_picker(app, exports_page.URL_PREFIX, fill=True)  # its dates hold the range's days
    controls = (PERIOD, "value"), (DATES, "start_date"), (DATES, "end_date"), (SCOPE, "value")
    outputs = [Output(TABLE, "children"), Output(MESSAGE, "children"), Output(MESSAGE, "color"),
               Output(MESSAGE, "is_open")]  # fmt: skip
    # the preview is drawn with the page (its first call is the server's), then follows the controls
    drawn_with_layout(app, exports_page.PATH, outputs, [Input(*control) for control in controls], preview)
    app.callback(
        Output(DOWNLOAD, "data"),
        Output(DOWNLOAD_STATUS, "children"),
        Input(DOWNLOAD_BUTTON, "n_clicks"),
        *(State(*control) for control in controls),
        prevent_initial_call=True,
    )(download)
