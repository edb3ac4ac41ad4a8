"""Analytics: consumption anomalies, EN 50160 voltage events, power-factor trends and load profiles for one
house or all the caller's houses over a range of local days. Callbacks: callbacks/analytics.py.

The four analyses are tabs (dcc.Tabs mounts only the chosen one): the page draws one chart and one table
at a time, and each tab's callback computes only while its tab is shown (docs/benchmarks.md, "UI").
The all-houses background scan's progress sits above the tabs, as it feeds three of them."""

import dash_bootstrap_components as dbc
from dash import dcc, html

from callbacks.analytics import HIDDEN, MAX_DAYS, POLL_MS, SECTIONS, default_range
from dashboard.choices import ALL, scope_options
from dashboard.context import db, services
from dashboard.ui_auth import page_guard

PATH, PERMISSION = "/analytics", "page:analytics"
NAME, ORDER = "Analytics", 4

GRAPH_CONFIG = {"displaylogo": False}
TAB_STYLE = {"padding": "0.5rem 1rem"}
LOADING_DELAY_MS = 300
TAB_SELECTED_STYLE = TAB_STYLE | {"fontWeight": "600"}


def _section(prefix: str, intro: str, below=None, above=None) -> html.Div:
    """A tab's content: message, optional content above the chart, the chart, optional content below it.
    The chart has no figure until its callback answers (no placeholder drawn first). While its callback
    runs for longer than LOADING_DELAY_MS, the chart stays in place, faded, under a spinner: a changed
    range or house never looks current before it is (no spinner at all for quick answers)."""
    body = [
        html.P(intro, className="text-muted small mb-2"),
        dbc.Alert(id=f"analytics-{prefix}-message", is_open=False, color="info", className="py-2"),
    ]
    if above is not None:
        body.append(above)
    body.append(
        dcc.Loading(
            dcc.Graph(id=f"analytics-{prefix}-graph", config=GRAPH_CONFIG),
            delay_show=LOADING_DELAY_MS,
            show_initially=False,
            overlay_style={"visibility": "visible", "opacity": 0.4},
            type="circle",
        )
    )
    if below is not None:
        body.append(below)
    return html.Div(body, className="pt-3", id=f"analytics-{prefix}-card")


@page_guard(PATH, PERMISSION)
def layout(scope, **_kwargs):
    timezone = services().settings.timezone
    first, last = default_range(timezone)
    options = scope_options(db(), scope, communities=False)
    # the first house by default: per-house analyses are quick, the whole scope costs one pass per house
    choice = options[1]["value"] if len(options) > 1 else ALL
    controls = dbc.Row(
        [
            dbc.Col(
                [
                    dbc.Label("House"),
                    dcc.Dropdown(
                        id="analytics-scope",
                        options=options,
                        value=choice,
                        clearable=False,
                    ),
                ],
                md=4,
            ),
            dbc.Col(
                [
                    dbc.Label(f"Local days ({timezone}), both included, at most {MAX_DAYS}"),
                    html.Div(
                        [
                            dcc.DatePickerRange(
                                id="analytics-range",
                                start_date=first.isoformat(),
                                end_date=last.isoformat(),
                                max_date_allowed=last.isoformat(),
                                display_format="YYYY-MM-DD",
                                first_day_of_week=1,
                                minimum_nights=0,
                            ),
                            dbc.Button(
                                "Last 7 days",
                                id="analytics-last-7",
                                size="sm",
                                color="secondary",
                                outline=True,
                                className="ms-2",
                            ),
                            dbc.Button(
                                "Last 30 days",
                                id="analytics-last-30",
                                size="sm",
                                color="secondary",
                                outline=True,
                                className="ms-2",
                            ),
                        ],  # fmt: skip
                        className="d-flex align-items-center flex-wrap",
                    ),
                ],
                md=8,
            ),
        ],
        className="g-3 mb-4",
    )
    anomalies = _section(
        "anomaly",
        "Consumption spikes, unusual night load and stuck meters, judged against each house's own "
        "history (the four weeks before the range included). One house: its consumption with each "
        "anomaly shaded; all houses: the count per house and kind, scanned in the background together with "
        "the voltage events and power factor.",
        above=html.Div(id="analytics-anomaly-counts", className="mb-2"),
        below=html.Div(id="analytics-anomaly-table"),
    )
    voltage = _section(
        "voltage",
        "Sags below 0.9 Un, swells above 1.1 Un and interruptions at or below 0.05 Un, from the meters' "
        "raw readings: count and total duration per house and kind, and when they happened. All houses: "
        "computed with the anomaly scan in the background.",
        below=html.Div(id="analytics-voltage-table"),
    )
    power_factor = _section(
        "pf",
        "Daily time-weighted mean power factor (line) and the share of time below 0.9 (bars), per local day. "
        "All houses: computed with the anomaly scan in the background.",
        below=html.Div(id="analytics-pf-table"),
    )
    profile = _section(
        "profile",
        "Average daily consumption profile by local 15-minute slot, weekdays and weekends apart; peak "
        "15-minute power and load factor (mean / peak) over the range.",
        above=dbc.Row(id="analytics-profile-stats", className="g-2 mb-2"),
    )
    # all houses: the background scan's progress (callbacks/analytics.py polls it), for whichever tab
    scan = html.Div(
        [
            html.Div(
                [
                    dbc.Progress(
                        id="analytics-anomaly-progress",
                        value=0,
                        label="",
                        striped=True,
                        animated=True,
                        className="mb-1",
                    ),
                    html.Small(id="analytics-anomaly-progress-text", className="text-muted"),
                ],
                id="analytics-anomaly-progress-box",
                style=HIDDEN,
                className="mb-2",
            ),
            dcc.Store(id="analytics-anomaly-job", storage_type="memory"),
            dcc.Interval(id="analytics-anomaly-poll", interval=POLL_MS, disabled=True),
            # what each tab shows (its request), so coming back to a tab does not compute it again
            *(dcc.Store(id=f"analytics-{prefix}-shown", storage_type="memory") for prefix in SECTIONS),
        ]
    )
    content = {"anomaly": anomalies, "voltage": voltage, "pf": power_factor, "profile": profile}
    tabs = dcc.Tabs(
        [
            dcc.Tab(
                content[prefix],
                label=label,
                value=prefix,
                id=f"analytics-tab-{prefix}",
                style=TAB_STYLE,
                selected_style=TAB_SELECTED_STYLE,
            )
            for prefix, label in SECTIONS.items()
        ],
        id="analytics-tabs",
        value="anomaly",
        colors={"border": "#dee2e6", "primary": "#0d6efd", "background": "#f8f9fa"},  # Bootstrap's
    )
    return html.Div(
        [
            html.H2("Analytics"),
            controls,
            scan,
            tabs,
        ]
    )
