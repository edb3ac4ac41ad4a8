"""Forecasts: consumption and production forecast charts with their model versions, the product / horizon
/ model / strategy / scope controls and, for admins and analysts, a Train button polled as a job.

The page owns its ids, options and defaults; the view (pages/forecasts_view.py) draws the charts, here
for the default view and in callbacks/forecasts.py for every other."""

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.choices import ALL, scope_options
from dashboard.context import db, services
from dashboard.policy import allowed
from dashboard.scope import Scope
from dashboard.ui_auth import page_guard
from pages._components import GRAPH_CONFIG, chart_card, field, page_header, scope_dropdown
from pages._urlstate import (
    UrlField,
    caller_default,
    one_of,
    read_url,
    scope_choice,
)
from pages.forecasts_view import HEIGHT, TARGETS, render_view

PATH, PERMISSION = "/forecasts", "page:forecasts"
NAME, ORDER = "Forecasts", 3

# component ids the callbacks use too
PRODUCT_ID = "forecasts-product"
HORIZON_ID = "forecasts-horizon"
MODEL_ID = "forecasts-model"
STRATEGY_ID = "forecasts-strategy"
SCOPE_ID = "forecasts-scope"
CONTROL_IDS = (PRODUCT_ID, HORIZON_ID, MODEL_ID, STRATEGY_ID, SCOPE_ID)  # render_view's argument order
GRAPH_IDS = {target: f"forecasts-{target}-graph" for target in TARGETS}
PANEL_IDS = {target: f"forecasts-{target}-model" for target in TARGETS}
MESSAGE_ID = "forecasts-message"
TRAINED_ID = "forecasts-trained"  # bumped when a training ends: the charts are drawn again
KICK_ID = "forecasts-kick"  # fires the render once when the layout could not draw the default view
TRAIN_ID = "forecasts-train"
TRAIN_MESSAGE_ID = "forecasts-train-message"
JOBS_ID = "forecasts-jobs"
POLL_ID = "forecasts-poll"
PROGRESS_ID = "forecasts-progress"
PROGRESS_BOX_ID = "forecasts-progress-box"
JOB_STATUS_ID = "forecasts-job-status"
# "being prepared": the scope's first training, queued by the view itself, polled for every role
PREPARE_BOX_ID = "forecasts-prepare-box"
PREPARE_PROGRESS_ID = "forecasts-prepare-progress"
PREPARE_STATUS_ID = "forecasts-prepare-status"
PREPARE_POLL_ID = "forecasts-prepare-poll"

# options (the services check every value: jobs.requests.validate) and defaults
PRODUCTS = {"next-24-hours": "Next 24 hours", "short-term": "Short-term"}
PAGE_MODELS = {"auto": "Auto (best on hold-out)", "xgboost": "XGBoost", "ridge": "Ridge", "sarima": "SARIMA",
               "mstl": "MSTL"}  # fmt: skip
STRATEGIES = {"direct": "Direct", "recursive": "Recursive"}
PRODUCT_OPTIONS = [{"label": label, "value": value} for value, label in PRODUCTS.items()]
MODEL_OPTIONS = [{"label": label, "value": value} for value, label in PAGE_MODELS.items()]
STRATEGY_OPTIONS = [{"label": label, "value": value} for value, label in STRATEGIES.items()]
HORIZON_OPTIONS = [
    {"label": f"{n} step{'s' if n > 1 else ''} ({n * 15 // 60} h {n * 15 % 60:02d} min)", "value": n}
    for n in range(1, 21)
]
DEFAULT_PRODUCT, DEFAULT_HORIZON, DEFAULT_MODEL, DEFAULT_STRATEGY = "next-24-hours", 8, "auto", "direct"
POLL_MS = 1000


def default_choice(options: list[dict], scope: Scope) -> str:
    """'all' when it names one forecast scope (every house, or a consumer's only house); else the first
    house, since a forecast is made for one slot and 'all my houses' of several is not one."""
    if scope.all_houses or len(scope.house_ids or ()) <= 1 or len(options) < 2:
        return ALL
    return options[1]["value"]


def initial_view(scope: Scope, choice) -> tuple | None:
    """The default view if every forecast it needs is already issued, else None (the kick interval then
    asks the render callback, which waits for the forecast jobs behind a spinner). Drawn in the layout,
    a fresh tab needs no render round trip and draws each chart once."""
    defaults = (DEFAULT_PRODUCT, DEFAULT_HORIZON, DEFAULT_MODEL, DEFAULT_STRATEGY)
    return render_view(scope, *defaults, choice, cached_only=True)


def _chart_card(target: str, figure=None, panel=None) -> dbc.Card:
    graph = {"figure": figure} if figure is not None else {}  # none: the render callback draws it
    graph = dcc.Graph(id=GRAPH_IDS[target], config=GRAPH_CONFIG, style={"height": f"{HEIGHT}px"}, **graph)
    below = html.Div(panel, id=PANEL_IDS[target], className="small mt-2")
    return chart_card(dcc.Loading(graph), title=target.capitalize(), below=below, className="mb-3")


def _training_panel() -> html.Div:
    hint = (
        "Trains the consumption and production models for the chosen product, horizon, model, strategy "
        "and scope (a background job)."
    )
    return html.Div(
        [
            dbc.Row(
                [
                    dbc.Col(dbc.Button("Train", id=TRAIN_ID, color="primary", n_clicks=0), width="auto"),
                    dbc.Col(html.Span(hint, className="text-muted small"), width="auto"),
                ],
                className="g-2 mb-2 align-items-center",
            ),
            html.Div(
                [
                    dbc.Progress(id=PROGRESS_ID, value=0, label="", striped=True, animated=True),
                    html.Div(id=JOB_STATUS_ID, className="small mt-1"),
                ],
                id=PROGRESS_BOX_ID,
                style={"display": "none"},
                className="mb-2",
            ),
            dbc.Alert(id=TRAIN_MESSAGE_ID, is_open=False, color="danger", fade=False),
            dcc.Store(id=JOBS_ID, storage_type="memory"),  # the training job ids only
            dcc.Interval(id=POLL_ID, interval=POLL_MS, disabled=True),
        ]
    )


def _prepare_panel() -> html.Div:
    """Progress of the trainings a view without a model queued; shown while they run."""
    return html.Div(
        [
            dbc.Progress(id=PREPARE_PROGRESS_ID, value=0, label="", striped=True, animated=True),
            html.Div(id=PREPARE_STATUS_ID, className="small mt-1"),
            dcc.Interval(id=PREPARE_POLL_ID, interval=POLL_MS, disabled=True),
        ],
        id=PREPARE_BOX_ID,
        style={"display": "none"},
        className="mb-2",
    )


def _radio(component_id: str, options: list[dict], value: str) -> dbc.RadioItems:
    return dbc.RadioItems(id=component_id, options=options, value=value, inline=True)


def _controls(options: list[dict], choice: str, state: dict) -> dbc.Row:
    horizon = dcc.Dropdown(
        id=HORIZON_ID,
        options=HORIZON_OPTIONS,
        value=state["horizon"],
        clearable=False,
        disabled=state["product"] != "short-term",
    )
    return dbc.Row(
        [
            field("Product", _radio(PRODUCT_ID, PRODUCT_OPTIONS, state["product"]), md=3, strong=True),
            field("Horizon (short-term only)", horizon, md=2, strong=True),
            field("Model", _radio(MODEL_ID, MODEL_OPTIONS, state["model"]), md=2, strong=True),
            field("Strategy", _radio(STRATEGY_ID, STRATEGY_OPTIONS, state["strategy"]), md=2, strong=True),
            field("Scope", scope_dropdown(SCOPE_ID, options, choice), md=3, strong=True),
        ],
        className="g-3 mb-3",
    )


@page_guard(PATH, PERMISSION)
def layout(scope, **query):
    options = scope_options(db(), scope, communities=True)
    state, notices = read_url(query, URL_FIELDS, scope, defaults={"scope": default_choice(options, scope)})
    choice = state["scope"]
    # the layout draws the default view only; any other (from a link) is drawn by the kick's render
    defaults = {"product": DEFAULT_PRODUCT, "horizon": DEFAULT_HORIZON, "model": DEFAULT_MODEL,
                "strategy": DEFAULT_STRATEGY}  # fmt: skip
    view = initial_view(scope, choice) if all(state[k] == v for k, v in defaults.items()) else None
    figures, panels, message = (view[0:2], view[2:4], view[4:7]) if view else ((None,) * 2, ("",) * 2, None)
    intro = (
        "History in blue, the forecast in red and its confidence range in orange; times are local "
        f"({services().settings.timezone})."
    )
    return html.Div(
        [
            *page_header("Forecasts", intro, URL_PREFIX, PATH, state, URL_FIELDS, notices),
            _controls(options, choice, state),
            _training_panel() if allowed("forecast:train", scope.role) else html.Div(),
            dbc.Alert(
                message[0] if message else "",
                id=MESSAGE_ID,
                color=message[1] if message else "info",
                is_open=bool(message and message[2]),
                fade=False,
            ),
            _prepare_panel(),
            dcc.Store(id=TRAINED_ID, storage_type="memory"),  # bumped when a training ends
            dcc.Interval(id=KICK_ID, interval=1, max_intervals=1, disabled=view is not None),
            dbc.Row(
                [
                    dbc.Col(_chart_card(target, figure, panel), lg=6)
                    for target, figure, panel in zip(TARGETS, figures, panels, strict=True)
                ]
            ),
        ]
    )


URL_PREFIX = "forecasts"
URL_FIELDS = (  # /forecasts?product=short-term&horizon=4&model=ridge&strategy=recursive&scope=4
    UrlField("product", PRODUCT_ID, "value", one_of(*PRODUCTS), DEFAULT_PRODUCT),
    UrlField("horizon", HORIZON_ID, "value", one_of(*(o["value"] for o in HORIZON_OPTIONS)), DEFAULT_HORIZON,
             only_if=("product", frozenset({"short-term"}))),
    UrlField("model", MODEL_ID, "value", one_of(*PAGE_MODELS), DEFAULT_MODEL),
    UrlField("strategy", STRATEGY_ID, "value", one_of(*STRATEGIES), DEFAULT_STRATEGY),
    UrlField("scope", SCOPE_ID, "value", scope_choice, caller_default),
)  # fmt: skip
