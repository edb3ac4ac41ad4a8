"""Real-Time: live consumption and production (kW) of the chosen scope, the latest voltage and power factor,
the last reading's time and a warning when the devices go silent. Callbacks: callbacks/realtime.py."""

from datetime import timedelta

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.choices import ALL, scope_options
from dashboard.context import db
from dashboard.ui_auth import page_guard
from pages._components import GRAPH_CONFIG, field, scope_dropdown, stat_card

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
GRAPH, MESSAGE = "realtime-graph", "realtime-message"
VOLTAGE, PF, LAST_READING = "realtime-voltage", "realtime-pf", "realtime-last-reading"
SILENT, SILENT_DEVICES = "realtime-silent", "realtime-silent-devices"


@page_guard(PATH, PERMISSION)
def layout(scope, **_kwargs):
    controls = dbc.Row(
        [
            field("Scope", scope_dropdown(SCOPE, scope_options(db(), scope, communities=True), ALL), md=5),
            field(
                "Window",
                dbc.RadioItems(id=WINDOW, options=WINDOW_OPTIONS, value=DEFAULT_WINDOW, inline=True),
                md=5,
            ),
        ],
        className="g-3 mb-3",
    )
    return html.Div(
        [
            html.H2("Real-Time"),
            html.P(
                "Mean power per device and bucket from the raw readings, summed per direction: consumption "
                "is the house meters, production the PV inverters and export meters (appliance sub-meters "
                "are not added). Updated every 5 seconds; gaps are missing readings.",
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
            dcc.Interval(id=INTERVAL, interval=POLL_MS),
        ]
    )
