"""Household: one house's (or a consumer's houses') energy flow over a period: consumption, production,
self-consumption and self-sufficiency, grid import and export, where the energy came from and went, the
appliances, the comparison with earlier periods and the totals of the user's energy communities. The
landing page of consumers. Callbacks: callbacks/home.py; numbers: dashboard/household.py."""

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.choices import ALL, scope_options
from dashboard.context import db
from dashboard.household_periods import PERIODS, TODAY
from dashboard.ui_auth import page_guard
from pages._charts import empty_figure
from pages._components import GRAPH_CONFIG, chart_card, field, page_header, scope_dropdown, stat_card
from pages._urlstate import (
    UrlField,
    caller_default,
    one_of,
    read_url,
    scope_choice,
)

PATH, PERMISSION = "/home", "page:home"
NAME, ORDER = "Household", 0.5

# component ids the callbacks use
HOUSE, PERIOD = "home-house", "home-period"
CAPTION, MESSAGE = "home-caption", "home-message"
FLOW_GRAPH, APPLIANCES_GRAPH, APPLIANCES_NOTE = "home-flow", "home-appliances", "home-appliances-note"
COMPARISON, COMMUNITIES = "home-comparison", "home-communities"
KPIS = {
    "consumption": "home-consumption",
    "production": "home-production",
    "self_consumption": "home-self-consumption",
    "self_sufficiency": "home-self-sufficiency",
    "import": "home-import",
    "export": "home-export",
}
PERIOD_OPTIONS = [{"label": text, "value": value} for value, text in PERIODS.items()]


def house_options(scope) -> list[dict]:
    """Built on the server from the caller's scope: a consumer's own houses ("All my houses" first when
    there are several), every house for staff (who pick one: no fleet view here), no community."""
    options = scope_options(db(), scope)
    houses = [o for o in options if o["value"] != ALL]
    if scope.all_houses or len(houses) <= 1:
        return houses
    return options


def _kpi_row():
    cards = [
        ("Consumption", "consumption", "kWh", "the house's whole load"),
        ("Production", "production", "kWh", "PV"),
        ("Self-consumption", "self_consumption", "%", "PV used on site / PV produced"),
        ("Self-sufficiency", "self_sufficiency", "%", "PV used on site / consumption"),
        ("Grid import", "import", "kWh", "bought from the grid"),
        ("Grid export", "export", "kWh", "fed into the grid"),
    ]
    return dbc.Row(
        [stat_card(title, KPIS[key], unit, hint, md=2) for title, key, unit, hint in cards],
        className="g-3 mb-3",
    )


@page_guard(PATH, PERMISSION)
def layout(scope, **query):
    options = house_options(scope)
    default = options[0]["value"] if options else None
    state, notices = read_url(
        query,
        URL_FIELDS,
        scope,
        defaults={"scope": default},
        choices={"scope": [o["value"] for o in options]},
    )
    controls = dbc.Row(
        [
            field("House", scope_dropdown(HOUSE, options, state["scope"]), md=4),
            field(
                "Period",
                dbc.RadioItems(id=PERIOD, options=PERIOD_OPTIONS, value=state["period"], inline=True),
                md=8,
            ),
        ],
        className="g-3 mb-2",
    )
    loading = empty_figure("Loading...", height=300)
    return html.Div(
        [
            *page_header("Household", None, URL_PREFIX, PATH, state, URL_FIELDS, notices),
            controls,
            html.P(id=CAPTION, className="small text-muted mb-2"),
            dbc.Alert(id=MESSAGE, is_open=False, color="info"),
            _kpi_row(),
            dbc.Row(
                [
                    dbc.Col(
                        chart_card(
                            dcc.Graph(id=FLOW_GRAPH, figure=loading, config=GRAPH_CONFIG),
                            "Where the energy came from and went",
                        ),
                        lg=6,
                    ),
                    dbc.Col(
                        chart_card(
                            dcc.Graph(id=APPLIANCES_GRAPH, figure=loading, config=GRAPH_CONFIG),
                            "Appliances",
                            below=html.P(id=APPLIANCES_NOTE, className="small text-muted"),
                        ),
                        lg=6,
                    ),
                ],
                className="g-3 mb-3",
            ),  # fmt: skip
            html.H5("Compared with earlier periods"),
            html.Div(id=COMPARISON, className="mb-3"),
            html.H5("Your energy communities"),
            html.Div(id=COMMUNITIES, className="mb-3"),
        ]
    )


URL_PREFIX = "home"
URL_FIELDS = (  # /home?scope=4&period=week
    UrlField("scope", HOUSE, "value", scope_choice, caller_default),
    UrlField("period", PERIOD, "value", one_of(*PERIODS), TODAY),
)
