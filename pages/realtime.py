"""Real-Time: live consumption and production (kW) of the chosen scope, the latest voltage and power factor,
the last reading's time and a warning when the devices go silent. Callbacks: callbacks/realtime.py."""

from datetime import timedelta

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.choices import ALL, scope_options
from dashboard.context import db
from dashboard.ui_auth import page_guard
from pages._components import GRAPH_CONFIG, REFRESH_CHOICES, field, refresh_picker, scope_dropdown, stat_card
from pages._urlstate import UrlField, one_of, read_url, scope_choice, url_location, url_notice

PATH, PERMISSION = "/real-time", "page:real-time"
NAME, ORDER = "Real-Time", 1

# window key -> (window length, bucket width)
WINDOWS = {
    "60m": (timedelta(minutes=60), timedelta(minutes=1)),
    "15m": (timedelta(minutes=15), timedelta(seconds=15)),
}
WINDOW_OPTIONS = [
    {"label": "Last 15 min, per 15 s", "value": "15m"},
    {"label": "Last 60 min, per minute", "value": "60m"},
]
DEFAULT_WINDOW = (
    "15m"  # its first draw reads a quarter of the 60-minute window's readings (docs/benchmarks.md)
)
POLL_MS = 5_000

# component ids the callbacks use
SCOPE, WINDOW, INTERVAL, STATE = "realtime-scope", "realtime-window", "realtime-interval", "realtime-state"
REFRESH_EVERY, UPDATED, URL_PREFIX = "realtime-refresh-every", "realtime-updated", "realtime"
URL_FIELDS = (
    UrlField("scope", SCOPE, "value", scope_choice, ALL),
    UrlField("window", WINDOW, "value", one_of(*WINDOWS), DEFAULT_WINDOW),
    UrlField("refresh", REFRESH_EVERY, "value", one_of(*REFRESH_CHOICES), "5s"),
)
GRAPH, MESSAGE = "realtime-graph", "realtime-message"
VOLTAGE, PF, LAST_READING = "realtime-voltage", "realtime-pf", "realtime-last-reading"
SILENT, SILENT_DEVICES = "realtime-silent", "realtime-silent-devices"


@page_guard(PATH, PERMISSION)
def layout(scope, **query):
    state, notices = read_url(query, URL_FIELDS, scope)
    every = REFRESH_CHOICES[state["refresh"]]
    controls = dbc.Row(
        [
            field(
                "Scope",
                scope_dropdown(SCOPE, scope_options(db(), scope, communities=True), state["scope"]),
                md=4,
            ),
            field(
                "Window",
                dbc.RadioItems(id=WINDOW, options=WINDOW_OPTIONS, value=state["window"], inline=True),
                md=4,
            ),
            field(
                "Auto-refresh",
                html.Div(
                    [
                        refresh_picker(REFRESH_EVERY, state["refresh"]),
                        html.Small(id=UPDATED, className="text-muted"),
                    ]
                ),
                md=4,
            ),
        ],  # fmt: skip
        className="g-3 mb-3",
    )
    return html.Div(
        [
            html.H2("Real-Time"),
            url_location(URL_PREFIX, PATH, state, URL_FIELDS),
            url_notice(URL_PREFIX, notices),
            html.P(
                "Mean power per device and bucket from the raw readings, summed per direction: consumption "
                "is the house meters, production the PV inverters and export meters (appliance sub-meters "
                "are not added). Updated every 5 seconds unless you choose otherwise; gaps are missing readings.",
                className="text-muted",
            ),
            controls,
            dbc.Alert(id=MESSAGE, is_open=False, color="danger"),
            dbc.Alert(id=SILENT, is_open=False, color="warning"),
            dbc.Row(
                [
                    stat_card("Voltage (meters' latest, mean)", VOLTAGE, unit="V"),
                    stat_card("Power factor (meters' latest, mean)", PF, unit=""),
                    dbc.Col(
                        dbc.Card(
                            dbc.CardBody(
                                [
                                    html.H6("Live", className="text-muted mb-1"),
                                    html.H5("Last reading: -", id=LAST_READING),
                                ]
                            )
                        ),
                        md=6,
                    ),
                ],
                className="g-3 mb-3",
            ),
            dcc.Graph(id=GRAPH, config=GRAPH_CONFIG),
            html.H5("Silent devices", className="mt-3"),
            html.Div(id=SILENT_DEVICES),
            dcc.Store(id=STATE),
            dcc.Interval(id=INTERVAL, interval=every or POLL_MS, disabled=every is None),
        ]
    )
