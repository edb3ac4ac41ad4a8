"""Exports: summary statistics per day, week or month for the caller's scope, previewed and downloadable
as CSV (the same columns and units as `GET /api/v1/exports/summary`). Callbacks: callbacks/exports.py."""

import dash_bootstrap_components as dbc
from dash import dcc, html

from callbacks.exports import default_range
from dashboard.choices import ALL, scope_options
from dashboard.context import db, services
from dashboard.ui_auth import page_guard

PATH, PERMISSION = "/exports", "page:exports"
NAME, ORDER = "Exports", 5

PERIOD_OPTIONS = [
    {"label": "Daily", "value": "daily"},
    {"label": "Weekly (ISO, Monday first)", "value": "weekly"},
    {"label": "Monthly", "value": "monthly"},
]


def _field(label: str, control, md: int) -> dbc.Col:
    return dbc.Col([dbc.Label(label), control], md=md)


@page_guard(PATH, PERMISSION)
def layout(scope, **_kwargs):
    timezone = services().settings.timezone
    first, last = default_range(timezone)
    controls = dbc.Row(
        [
            _field(
                "Period",
                dbc.RadioItems(id="exports-period", options=PERIOD_OPTIONS, value="daily", inline=True),
                md=4,
            ),
            _field(
                f"Local days ({timezone}), both included",
                dcc.DatePickerRange(
                    id="exports-range",
                    start_date=first.isoformat(),
                    end_date=last.isoformat(),
                    display_format="YYYY-MM-DD",
                    first_day_of_week=1,
                    minimum_nights=0,
                ),
                md=4,
            ),
            _field(
                "Scope",
                dcc.Dropdown(
                    id="exports-scope", options=scope_options(db(), scope), value=ALL, clearable=False
                ),
                md=4,
            ),
        ],
        className="g-3 mb-3",
    )
    return html.Div(
        [
            html.H2("Exports"),
            html.P(
                "Summary statistics per period: energy in kWh, average and peak power in kW, voltage event "
                "intervals (15-minute intervals outside 0.9-1.1 Un) and mean power factor.",
                className="text-muted",
            ),
            controls,
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Button("Download CSV", id="exports-download-button", color="primary"),
                        width="auto",
                    ),
                    dbc.Col(html.Span(id="exports-download-status", className="text-muted"), width="auto"),
                ],
                className="g-2 mb-3 align-items-center",
            ),
            dcc.Download(id="exports-download"),
            dbc.Alert(id="exports-message", is_open=False, color="info"),
            dcc.Loading(html.Div(id="exports-table", className="table-responsive")),
        ]
    )
