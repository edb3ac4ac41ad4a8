"""Historical statistics: consumption and production energy (kWh) as bars for the last 24 h, the last
7 days or a custom range of local days, with summary panels (totals, averages, maxima, net balance,
data coverage). Callbacks: callbacks/historical.py."""

from datetime import date, timedelta

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.choices import ALL, scope_options
from dashboard.clock import local_today
from dashboard.context import db, services
from dashboard.ui_auth import page_guard
from pages._charts import empty_figure
from pages._components import GRAPH_CONFIG, chart_card, field, scope_dropdown

PATH, PERMISSION = "/historical", "page:historical"
NAME, ORDER = "Historical", 2

RANGE_24H, RANGE_7D, RANGE_CUSTOM = "24h", "7d", "custom"
RANGE_OPTIONS = [
    {"label": "24 h", "value": RANGE_24H},
    {"label": "7 d", "value": RANGE_7D},
    {"label": "Custom", "value": RANGE_CUSTOM},
]
BARS_AUTO = "auto"
BARS_LABELS = {BARS_AUTO: "Auto", "15min": "15 min", "hour": "Hourly", "day": "Daily"}
DEFAULT_CUSTOM_DAYS = 30

# component ids the callbacks use
RANGE, DATES, BARS, SCOPE = "historical-range", "historical-dates", "historical-bars", "historical-scope"
CAPTION, MESSAGE, SUMMARY = "historical-caption", "historical-message", "historical-summary"
CONSUMPTION_GRAPH, PRODUCTION_GRAPH = "historical-consumption", "historical-production"


def bars_options(enabled: bool) -> list[dict]:
    """The bar sizes, chosen only for a custom range."""
    return [{"label": text, "value": value, "disabled": not enabled} for value, text in BARS_LABELS.items()]


def default_custom_range(timezone: str) -> tuple[date, date]:
    """The last 30 local days, today included."""
    today = local_today(timezone)
    return today - timedelta(days=DEFAULT_CUSTOM_DAYS - 1), today


def _graph(graph_id: str) -> dbc.Col:
    graph = dcc.Graph(id=graph_id, figure=empty_figure("Loading..."), config=GRAPH_CONFIG)
    return dbc.Col(chart_card(graph), lg=6)


@page_guard(PATH, PERMISSION)
def layout(scope, **_kwargs):
    timezone = services().settings.timezone
    first, last = default_custom_range(timezone)
    dates = dcc.DatePickerRange(
        id=DATES,
        start_date=first.isoformat(),
        end_date=last.isoformat(),
        max_date_allowed=last.isoformat(),  # today: no readings exist after it (the server refuses them too)
        display_format="YYYY-MM-DD",
        first_day_of_week=1,
        minimum_nights=0,
        disabled=True,
    )
    controls = [
        dbc.Row(
            [
                field(
                    "Range",
                    dbc.RadioItems(id=RANGE, options=RANGE_OPTIONS, value=RANGE_24H, inline=True),
                    md=4,
                ),
                field(
                    "Scope", scope_dropdown(SCOPE, scope_options(db(), scope, communities=True), ALL), md=4
                ),
            ],
            className="g-3 mb-2",
        ),
        dbc.Row(
            [
                field(f"Custom range: local days ({timezone}), both included", dates, md=4),
                field(
                    "Custom range: bar size",
                    dbc.RadioItems(id=BARS, options=bars_options(False), value=BARS_AUTO, inline=True),
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
            html.P(id=CAPTION, className="small text-muted mb-2"),
            dbc.Alert(id=MESSAGE, is_open=False, color="info"),
            html.Div(id=SUMMARY, className="mb-3"),
            dbc.Row([_graph(CONSUMPTION_GRAPH), _graph(PRODUCTION_GRAPH)], className="g-3"),
        ]
    )
