"""Historical statistics: consumption and production energy (kWh) as bars for the last 24 h, the last
7 days or a custom range of local days, with summary panels (totals, averages, maxima, net balance,
data coverage). Callbacks: callbacks/historical.py."""

import dash_bootstrap_components as dbc
from dash import dcc, html

from callbacks.charts import empty_figure
from callbacks.historical import BARS_AUTO, RANGE_24H, RANGE_OPTIONS, bars_options, default_custom_range
from dashboard.choices import ALL, scope_options
from dashboard.context import db, services
from dashboard.ui_auth import page_guard

PATH, PERMISSION = "/historical", "page:historical"
NAME, ORDER = "Historical", 2

GRAPH_CONFIG = {"displaylogo": False}


def _field(label: str, control, md: int) -> dbc.Col:
    return dbc.Col([dbc.Label(label), control], md=md)


def _graph(graph_id: str) -> dbc.Col:
    return dbc.Col(
        dbc.Card(
            dbc.CardBody(dcc.Graph(id=graph_id, figure=empty_figure("Loading..."), config=GRAPH_CONFIG))
        ),
        lg=6,
    )


@page_guard(PATH, PERMISSION)
def layout(scope, **_kwargs):
    timezone = services().settings.timezone
    first, last = default_custom_range(timezone)
    controls = [
        dbc.Row(
            [
                _field(
                    "Range",
                    dbc.RadioItems(
                        id="historical-range", options=RANGE_OPTIONS, value=RANGE_24H, inline=True
                    ),
                    md=4,
                ),
                _field(
                    "Scope",
                    dcc.Dropdown(
                        id="historical-scope",
                        options=scope_options(db(), scope, communities=True),
                        value=ALL,
                        clearable=False,
                    ),
                    md=4,
                ),
            ],
            className="g-3 mb-2",
        ),
        dbc.Row(
            [
                _field(
                    f"Custom range: local days ({timezone}), both included",
                    dcc.DatePickerRange(
                        id="historical-dates",
                        start_date=first.isoformat(),
                        end_date=last.isoformat(),
                        display_format="YYYY-MM-DD",
                        first_day_of_week=1,
                        minimum_nights=0,
                        disabled=True,
                    ),
                    md=4,
                ),
                _field(
                    "Custom range: bar size",
                    dbc.RadioItems(
                        id="historical-bars", options=bars_options(False), value=BARS_AUTO, inline=True
                    ),
                    md=4,
                ),
            ],
            className="g-3 mb-3",
        ),
    ]
    return html.Div(
        [
            html.H2("Historical statistics"),
            html.P(
                "Energy per bucket in kWh, local wall-clock time. A bucket without readings has no bar "
                "(a gap, never a zero); daily bars are local days, 23 or 25 hours long on DST change days.",
                className="text-muted",
            ),
            *controls,
            html.P(id="historical-caption", className="small text-muted mb-2"),
            dbc.Alert(id="historical-message", is_open=False, color="info"),
            html.Div(id="historical-summary", className="mb-3"),
            dbc.Row(
                [_graph("historical-consumption"), _graph("historical-production")],
                className="g-3",
            ),
        ]
    )
