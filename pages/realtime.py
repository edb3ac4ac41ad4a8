"""Real-Time: live consumption and production (kW) of the chosen scope, the latest voltage and power factor,
the last reading's time and a warning when the devices go silent. Callbacks: callbacks/realtime.py."""

import dash_bootstrap_components as dbc
from dash import dcc, html

from callbacks.realtime import DEFAULT_WINDOW, POLL_MS, WINDOW_OPTIONS
from dashboard.choices import ALL, scope_options
from dashboard.context import db
from dashboard.ui_auth import page_guard

PATH, PERMISSION = "/real-time", "page:real-time"
NAME, ORDER = "Real-Time", 1


def _stat(title: str, value_id: str, unit: str, md: int = 3) -> dbc.Col:
    return dbc.Col(
        dbc.Card(
            dbc.CardBody(
                [
                    html.H6(title, className="text-muted mb-1"),
                    html.H4([html.Span("-", id=value_id), html.Small(f" {unit}", className="text-muted")]),
                ]
            )
        ),
        md=md,
    )


@page_guard(PATH, PERMISSION)
def layout(scope, **_kwargs):
    controls = dbc.Row(
        [
            dbc.Col(
                [
                    dbc.Label("Scope"),
                    dcc.Dropdown(
                        id="realtime-scope",
                        options=scope_options(db(), scope, communities=True),
                        value=ALL,
                        clearable=False,
                    ),
                ],
                md=5,
            ),
            dbc.Col(
                [
                    dbc.Label("Window"),
                    dbc.RadioItems(
                        id="realtime-window", options=WINDOW_OPTIONS, value=DEFAULT_WINDOW, inline=True
                    ),
                ],
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
            dbc.Alert(id="realtime-message", is_open=False, color="danger"),
            dbc.Alert(id="realtime-silent", is_open=False, color="warning"),
            dbc.Row(
                [
                    _stat("Voltage (meters' latest, mean)", "realtime-voltage", "V"),
                    _stat("Power factor (meters' latest, mean)", "realtime-pf", ""),
                    dbc.Col(
                        dbc.Card(
                            dbc.CardBody(
                                [
                                    html.H6("Live", className="text-muted mb-1"),
                                    html.H5("Last reading: -", id="realtime-last-reading"),
                                ]
                            )
                        ),
                        md=6,
                    ),
                ],
                className="g-3 mb-3",
            ),
            dcc.Graph(id="realtime-graph", config={"displaylogo": False}),
            html.H5("Silent devices", className="mt-3"),
            html.Div(id="realtime-silent-devices"),
            dcc.Store(id="realtime-state"),
            dcc.Interval(id="realtime-interval", interval=POLL_MS),
        ]
    )
