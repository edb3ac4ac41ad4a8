"""Exports: summary statistics per day, week or month for the caller's scope, previewed and downloadable
as CSV (the same columns and units as `GET /api/v1/exports/summary`). Callbacks: callbacks/exports.py."""

from datetime import date, timedelta

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.choices import ALL, scope_options
from dashboard.clock import local_today
from dashboard.context import db, services
from dashboard.ui_auth import page_guard
from pages._components import field, scope_dropdown
from pages._urlstate import (
    UrlField,
    iso_day,
    one_of,
    read_url,
    scope_choice,
    url_location,
    url_notice,
)

PATH, PERMISSION = "/exports", "page:exports"
NAME, ORDER = "Exports", 5

PERIOD_OPTIONS = [
    {"label": "Daily", "value": "daily"},
    {"label": "Weekly (ISO, Monday first)", "value": "weekly"},
    {"label": "Monthly", "value": "monthly"},
]
DEFAULT_PERIOD = "daily"
DEFAULT_DAYS = 30

# component ids the callbacks use
PERIOD, RANGE, SCOPE = "exports-period", "exports-range", "exports-scope"
TABLE, MESSAGE = "exports-table", "exports-message"
DOWNLOAD, DOWNLOAD_BUTTON, DOWNLOAD_STATUS = (
    "exports-download",
    "exports-download-button",
    "exports-download-status",
)


def default_range(timezone: str) -> tuple[date, date]:
    """The last 30 local days, today included (the picker's end date is inclusive)."""
    today = local_today(timezone)
    return today - timedelta(days=DEFAULT_DAYS - 1), today


@page_guard(PATH, PERMISSION)
def layout(scope, **query):
    timezone = services().settings.timezone
    state, notices = read_url(query, URL_FIELDS, scope)
    dates = dcc.DatePickerRange(
        id=RANGE,
        start_date=state["from"],
        end_date=state["to"],
        display_format="YYYY-MM-DD",
        first_day_of_week=1,
        minimum_nights=0,
    )
    controls = dbc.Row(
        [
            field(
                "Period",
                dbc.RadioItems(id=PERIOD, options=PERIOD_OPTIONS, value=state["period"], inline=True),
                md=4,
            ),
            field(f"Local days ({timezone}), both included", dates, md=4),
            field("Scope", scope_dropdown(SCOPE, scope_options(db(), scope), state["scope"]), md=4),
        ],
        className="g-3 mb-3",
    )
    return html.Div(
        [
            html.H2("Exports"),
            url_location(URL_PREFIX, PATH, state, URL_FIELDS),
            url_notice(URL_PREFIX, notices),
            html.P(
                "Summary statistics per period: energy in kWh, average and peak power in kW, voltage event "
                "intervals (15-minute intervals outside 0.9-1.1 Un) and mean power factor. An unfinished "
                "period (today, this week, this month) counts only its hours so far. Values are rounded "
                "here and in the CSV; GET /api/v1/exports/summary gives full precision.",
                className="text-muted",
            ),
            controls,
            dbc.Row(
                [
                    dbc.Col(dbc.Button("Download CSV", id=DOWNLOAD_BUTTON, color="primary"), width="auto"),
                    dbc.Col(html.Span(id=DOWNLOAD_STATUS, className="text-muted"), width="auto"),
                ],
                className="g-2 mb-3 align-items-center",
            ),
            dcc.Download(id=DOWNLOAD),
            dbc.Alert(id=MESSAGE, is_open=False, color="info"),
            dcc.Loading(html.Div(id=TABLE, className="table-responsive")),
        ]
    )


URL_PREFIX = "exports"
URL_FIELDS = (  # /exports?period=weekly&from=...&to=...&scope=4
    UrlField("period", PERIOD, "value", one_of(*(o["value"] for o in PERIOD_OPTIONS)), DEFAULT_PERIOD),
    UrlField(
        "from",
        RANGE,
        "start_date",
        iso_day,
        lambda: default_range(services().settings.timezone)[0].isoformat(),
    ),
    UrlField(
        "to", RANGE, "end_date", iso_day, lambda: default_range(services().settings.timezone)[1].isoformat()
    ),
    UrlField("scope", SCOPE, "value", scope_choice, ALL),
)
