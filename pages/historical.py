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
from pages._components import chart_card, field, page_header, scope_dropdown
from pages._ranges import (
    CUSTOM,
    RANGE_24H,
    RANGE_CUSTOM,
    ZOOM_GRAPH_CONFIG,
    range_fields,
    range_ids,
    range_url_fields,
)
from pages._urlstate import UrlField, one_of, read_url, scope_choice

PATH, PERMISSION = "/historical", "page:historical"
NAME, ORDER = "Historical", 2

BARS_AUTO = "auto"
BARS_LABELS = {BARS_AUTO: "Auto", "15min": "15 min", "hour": "Hourly", "day": "Daily"}
DEFAULT_CUSTOM_DAYS = 30

# component ids the callbacks use
URL_PREFIX = "historical"
IDS = range_ids(URL_PREFIX)  # the range picker's (pages/_ranges.py)
RANGE, DATES, PREVIOUS, NEXT = IDS.range, IDS.dates, IDS.previous, IDS.next
BARS, SCOPE = "historical-bars", "historical-scope"
CAPTION, MESSAGE, SUMMARY = "historical-caption", "historical-message", "historical-summary"
CONSUMPTION_GRAPH, PRODUCTION_GRAPH = "historical-consumption", "historical-production"


# the page's state in its URL (pages/_urlstate.py): /historical?range=custom&from=...&to=...&bars=day&scope=4
URL_FIELDS = (
    *range_url_fields(URL_PREFIX, RANGE_24H, lambda: default_custom_range(services().settings.timezone)),
    UrlField("bars", BARS, "value", one_of(*BARS_LABELS), BARS_AUTO, only_if=("range", CUSTOM)),
    UrlField("scope", SCOPE, "value", scope_choice, ALL),
)


def bars_options(enabled: bool) -> list[dict]:
    """The bar sizes, chosen only for a custom range."""
    return [{"label": text, "value": value, "disabled": not enabled} for value, text in BARS_LABELS.items()]


def default_custom_range(timezone: str) -> tuple[date, date]:
    """The last 30 local days, today included."""
    today = local_today(timezone)
    return today - timedelta(days=DEFAULT_CUSTOM_DAYS - 1), today


def _graph(graph_id: str) -> dbc.Col:
    graph = dcc.Graph(id=graph_id, figure=empty_figure("Loading..."), config=ZOOM_GRAPH_CONFIG)
    return dbc.Col(chart_card(graph), lg=6)


INTRO = (
    "Energy per bucket in kWh, local wall-clock time. A bucket without readings has no bar (a gap, never a "
    "zero); daily bars are local days, 23 or 25 hours long on DST change days. 24 h and 7 d are hourly bars "
    "ending now. Click a bar to see it in finer bars; zoom a chart to make its span the range."
)


@page_guard(PATH, PERMISSION)
def layout(scope, **query):
    state, notices = read_url(query, URL_FIELDS, scope)
    custom = state["range"] == RANGE_CUSTOM
    range_choice, dates = range_fields(URL_PREFIX, state)
    controls = [
        dbc.Row(
            [
                range_choice,
                field(
                    "Scope",
                    scope_dropdown(SCOPE, scope_options(db(), scope, communities=True), state["scope"]),
                    md=4,
                ),
            ],
            className="g-3 mb-2",
        ),
        dbc.Row(
            [
                dates,
                field(
                    "Custom range: bar size",
                    dbc.RadioItems(id=BARS, options=bars_options(custom), value=state["bars"], inline=True),
                    md=4,
                ),
            ],
            className="g-3 mb-3",
        ),
    ]
    return html.Div(
        [
            *page_header("Historical statistics", INTRO, URL_PREFIX, PATH, state, URL_FIELDS, notices),
            *controls,
            html.P(id=CAPTION, className="small text-muted mb-2"),
            dbc.Alert(id=MESSAGE, is_open=False, color="info"),
            html.Div(id=SUMMARY, className="mb-3"),
            dbc.Row([_graph(CONSUMPTION_GRAPH), _graph(PRODUCTION_GRAPH)], className="g-3"),
        ]
    )
