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
from pages._urlstate import UrlField, iso_day, one_of, read_url, scope_choice, url_location, url_notice

PATH, PERMISSION = "/historical", "page:historical"
NAME, ORDER = "Historical", 2

RANGE_24H, RANGE_7D, RANGE_30D, RANGE_MONTH, RANGE_CUSTOM = "24h", "7d", "30d", "month", "custom"
RANGE_OPTIONS = [
    {"label": "24 h", "value": RANGE_24H},
    {"label": "7 d", "value": RANGE_7D},
    {"label": "30 d", "value": RANGE_30D},
    {"label": "This month", "value": RANGE_MONTH},
    {"label": "Custom", "value": RANGE_CUSTOM},
]
BARS_AUTO = "auto"
BARS_LABELS = {BARS_AUTO: "Auto", "15min": "15 min", "hour": "Hourly", "day": "Daily"}
DEFAULT_CUSTOM_DAYS = 30

# component ids the callbacks use
RANGE, DATES, BARS, SCOPE = "historical-range", "historical-dates", "historical-bars", "historical-scope"
CAPTION, MESSAGE, SUMMARY = "historical-caption", "historical-message", "historical-summary"
CONSUMPTION_GRAPH, PRODUCTION_GRAPH = "historical-consumption", "historical-production"
PREVIOUS, NEXT = "historical-previous", "historical-next"
URL_PREFIX = "historical"
CUSTOM = frozenset({RANGE_CUSTOM})


def _default_first() -> str:
    return default_custom_range(services().settings.timezone)[0].isoformat()


def _default_last() -> str:
    return default_custom_range(services().settings.timezone)[1].isoformat()


# the page's state in its URL (pages/_urlstate.py): /historical?range=custom&from=...&to=...&bars=day&scope=4
URL_FIELDS = (
    UrlField("range", RANGE, "value", one_of(*(o["value"] for o in RANGE_OPTIONS)), RANGE_24H),
    UrlField("from", DATES, "start_date", iso_day, _default_first, only_if=("range", CUSTOM)),
    UrlField("to", DATES, "end_date", iso_day, _default_last, only_if=("range", CUSTOM)),
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
    graph = dcc.Graph(id=graph_id, figure=empty_figure("Loading..."), config=GRAPH_CONFIG)
    return dbc.Col(chart_card(graph), lg=6)


@page_guard(PATH, PERMISSION)
def layout(scope, **query):
    timezone = services().settings.timezone
    today = default_custom_range(timezone)[1]
    state, notices = read_url(query, URL_FIELDS, scope)
    custom = state["range"] == RANGE_CUSTOM
    dates = dcc.DatePickerRange(
        id=DATES,
        start_date=state["from"],
        end_date=state["to"],
        max_date_allowed=today.isoformat(),  # today: no readings exist after it (the server refuses them too)
        display_format="YYYY-MM-DD",
        first_day_of_week=1,
        minimum_nights=0,
        disabled=not custom,
    )
    shift = html.Div(
        [
            dbc.Button("\u2039 Previous", id=PREVIOUS, color="secondary", outline=True, size="sm",
                       className="me-2", title="The range before this one, as long as it"),
            dbc.Button("Next \u203a", id=NEXT, color="secondary", outline=True, size="sm",
                       disabled=not custom, title="The range after this one (up to now)"),
        ],
        className="mt-1",
    )  # fmt: skip
    controls = [
        dbc.Row(
            [
                field(
                    "Range",
                    html.Div(
                        [
                            dbc.RadioItems(
                                id=RANGE, options=RANGE_OPTIONS, value=state["range"], inline=True
                            ),
                            shift,
                        ]
                    ),
                    md=5,
                ),
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
                field(f"Custom range: local days ({timezone}), both included", dates, md=4),
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
            html.H2("Historical statistics"),
            html.P(
                "Energy per bucket in kWh, local wall-clock time. A bucket without readings has no bar "
                "(a gap, never a zero); daily bars are local days, 23 or 25 hours long on DST change days. "
                "Click a bar to see it in finer bars; zoom a chart to make its span the range.",
                className="text-muted",
            ),
            url_location(URL_PREFIX, PATH, state, URL_FIELDS),
            url_notice(URL_PREFIX, notices),
            *controls,
            html.P(id=CAPTION, className="small text-muted mb-2"),
            dbc.Alert(id=MESSAGE, is_open=False, color="info"),
            html.Div(id=SUMMARY, className="mb-3"),
            dbc.Row([_graph(CONSUMPTION_GRAPH), _graph(PRODUCTION_GRAPH)], className="g-3"),
        ]
    )
