"""Forecasts: consumption and production forecast charts (history blue, forecast red, confidence range
orange), product / horizon / model / strategy / scope controls, the active model version with its metrics,
and, for admins and analysts, a Train button whose job is polled with a progress bar.
Callbacks: callbacks/forecasts.py."""

import dash_bootstrap_components as dbc
from dash import dcc, html

from callbacks.forecasts import (
    DEFAULT_HORIZON,
    DEFAULT_MODEL,
    DEFAULT_PRODUCT,
    DEFAULT_STRATEGY,
    HORIZON_OPTIONS,
    MODEL_OPTIONS,
    POLL_MS,
    PRODUCT_OPTIONS,
    STRATEGY_OPTIONS,
    TARGETS,
    initial_view,
)
from dashboard.choices import ALL, scope_options
from dashboard.context import db, services
from dashboard.policy import allowed
from dashboard.ui_auth import page_guard

PATH, PERMISSION = "/forecasts", "page:forecasts"
NAME, ORDER = "Forecasts", 3

GRAPH_CONFIG = {"displaylogo": False}


def _field(label: str, control, md: int) -> dbc.Col:
    return dbc.Col([dbc.Label(label, className="fw-semibold"), control], md=md)


def _default_choice(options: list[dict], scope) -> str:
    """'all' when it names one forecast scope (every house, or a consumer's only house); else the first
    house, since a forecast is made for one slot and 'all my houses' of several is not one."""
    if scope.all_houses or len(scope.house_ids or ()) <= 1 or len(options) < 2:
        return ALL
    return options[1]["value"]


def _chart_card(target: str, figure=None, panel=None) -> dbc.Card:
    graph = {"figure": figure} if figure is not None else {}  # none: the render callback draws it
    return dbc.Card(
        dbc.CardBody(
            [
                html.H5(target.capitalize(), className="card-title"),
                dcc.Loading(
                    dcc.Graph(
                        id=f"forecasts-{target}-graph",
                        config=GRAPH_CONFIG,
                        style={"height": "380px"},
                        **graph,
                    )
                ),
                html.Div(panel, id=f"forecasts-{target}-model", className="small mt-2"),
            ]
        ),
        className="mb-3",
    )


def _training_panel() -> html.Div:
    return html.Div(
        [
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Button("Train", id="forecasts-train", color="primary", n_clicks=0), width="auto"
                    ),
                    dbc.Col(
                        html.Span(
                            "Trains the consumption and production models for the chosen product, horizon, "
                            "model, strategy and scope (a background job).",
                            className="text-muted small",
                        ),
                        width="auto",
                    ),
                ],
                className="g-2 mb-2 align-items-center",
            ),
            html.Div(
                [
                    dbc.Progress(id="forecasts-progress", value=0, label="", striped=True, animated=True),
                    html.Div(id="forecasts-job-status", className="small mt-1"),
                ],
                id="forecasts-progress-box",
                style={"display": "none"},
                className="mb-2",
            ),
            dbc.Alert(id="forecasts-train-message", is_open=False, color="danger", fade=False),
            dcc.Store(id="forecasts-jobs", storage_type="memory"),  # the training job ids only
            dcc.Interval(id="forecasts-poll", interval=POLL_MS, disabled=True),
        ]
    )


@page_guard(PATH, PERMISSION)
def layout(scope, **_kwargs):
    options = scope_options(db(), scope, communities=True)
    choice = _default_choice(options, scope)
    # The default view comes with the layout when its forecasts are already issued (the usual case): a
    # fresh tab then needs no render round trip and draws each chart once. Otherwise the kick interval
    # fires the render callback once, which waits for the forecast jobs behind dcc.Loading's spinner.
    view = initial_view(scope, choice)
    figures, panels, message = (view[0:2], view[2:4], view[4:7]) if view else ((None,) * 2, ("",) * 2, None)
    controls = dbc.Row(
        [
            _field(
                "Product",
                dbc.RadioItems(
                    id="forecasts-product", options=PRODUCT_OPTIONS, value=DEFAULT_PRODUCT, inline=True
                ),
                md=3,
            ),
            _field(
                "Horizon (short-term only)",
                dcc.Dropdown(
                    id="forecasts-horizon",
                    options=HORIZON_OPTIONS,
                    value=DEFAULT_HORIZON,
                    clearable=False,
                    disabled=DEFAULT_PRODUCT != "short-term",
                ),
                md=2,
            ),
            _field(
                "Model",
                dbc.RadioItems(id="forecasts-model", options=MODEL_OPTIONS, value=DEFAULT_MODEL, inline=True),
                md=2,
            ),
            _field(
                "Strategy",
                dbc.RadioItems(
                    id="forecasts-strategy", options=STRATEGY_OPTIONS, value=DEFAULT_STRATEGY, inline=True
                ),
                md=2,
            ),
            _field(
                "Scope",
                dcc.Dropdown(
                    id="forecasts-scope",
                    options=options,
                    value=choice,
                    clearable=False,
                ),
                md=3,
            ),
        ],
        className="g-3 mb-3",
    )
    return html.Div(
        [
            html.H2("Forecasts"),
            html.P(
                "History in blue, the forecast in red and its confidence range in orange; times are local "
                f"({services().settings.timezone}).",
                className="text-muted",
            ),
            controls,
            _training_panel() if allowed("forecast:train", scope.role) else html.Div(),
            dbc.Alert(
                message[0] if message else "",
                id="forecasts-message",
                color=message[1] if message else "info",
                is_open=bool(message and message[2]),
                fade=False,
            ),
            dcc.Store(id="forecasts-trained", storage_type="memory"),  # bumped when a training ends
            dcc.Interval(id="forecasts-kick", interval=1, max_intervals=1, disabled=view is not None),
            dbc.Row(
                [
                    dbc.Col(_chart_card(target, figure, panel), lg=6)
                    for target, figure, panel in zip(TARGETS, figures, panels, strict=True)
                ]
            ),
        ]
    )
