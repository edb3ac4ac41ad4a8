"""Exports: summary statistics per day, week or month for the caller's scope, previewed and downloadable
as CSV (the same columns and units as `GET /api/v1/exports/summary`). Callbacks: callbacks/exports.py."""

from datetime import date

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.choices import ALL, scope_options
from dashboard.context import db
from dashboard.ui_auth import page_guard
from pages._components import field, page_header, scope_dropdown
from pages._ranges import RANGE_30D, default_days, range_fields, range_ids, range_url_fields, read_range_url
from pages._urlstate import UrlField, one_of, scope_choice

PATH, PERMISSION = "/exports", "page:exports"
NAME, ORDER = "Exports", 5

PERIOD_OPTIONS = [
    {"label": "Daily", "value": "daily"},
    {"label": "Weekly (ISO, Monday first)", "value": "weekly"},
    {"label": "Monthly", "value": "monthly"},
]
DEFAULT_PERIOD = "daily"
DEFAULT_RANGE = RANGE_30D
INTRO = (
    "Summary statistics per period: energy in kWh, average and peak power in kW, voltage event intervals "
    "(15-minute intervals outside 0.9-1.1 Un) and mean power factor. An unfinished period (today, this week, "
    "this month) counts only its hours so far. Values are rounded here and in the CSV; "
    "GET /api/v1/exports/summary gives full precision."
)

# component ids the callbacks use
URL_PREFIX = "exports"
IDS = range_ids(URL_PREFIX)  # the range picker's (pages/_ranges.py): its dates hold the range's days
RANGE, DATES = IDS.range, IDS.dates
PERIOD, SCOPE = "exports-period", "exports-scope"
TABLE, MESSAGE = "exports-table", "exports-message"
DOWNLOAD, DOWNLOAD_BUTTON, DOWNLOAD_STATUS = (
    "exports-download",
    "exports-download-button",
    "exports-download-status",
)


def default_range(timezone: str) -> tuple[date, date]:
    """The default range's local days (the last 30, today included; the picker's end date is inclusive)."""
    return default_days(DEFAULT_RANGE, timezone)


@page_guard(PATH, PERMISSION)
def layout(scope, **query):
    state, notices = read_range_url(query, URL_FIELDS, scope)
    range_choice, dates = range_fields(URL_PREFIX, state, md=(5, 3))
    controls = dbc.Row(
        [
            range_choice,
            dates,
            field("Scope", scope_dropdown(SCOPE, scope_options(db(), scope), state["scope"]), md=4),
            field(
                "Period",
                dbc.RadioItems(id=PERIOD, options=PERIOD_OPTIONS, value=state["period"], inline=True),
                md=5,
            ),
        ],
        className="g-3 mb-3",
    )
    return html.Div(
        [
            *page_header("Exports", INTRO, URL_PREFIX, PATH, state, URL_FIELDS, notices),
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


URL_FIELDS = (  # /exports?period=weekly&range=custom&from=...&to=...&scope=4
    UrlField("period", PERIOD, "value", one_of(*(o["value"] for o in PERIOD_OPTIONS)), DEFAULT_PERIOD),
    *range_url_fields(URL_PREFIX, DEFAULT_RANGE),
    UrlField("scope", SCOPE, "value", scope_choice, ALL),
)
