"""The Admin page's tariffs tab: pick a house, add a flat or time-of-use tariff, end or delete one.
Callbacks: callbacks/admin_tariffs.py (each re-checks the caller on the server; the rules of a tariff are
dashboard/tariffs.py's, as for the API).

(The leading underscore keeps Dash's page registry from taking this module for a page.)
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from pages._components import field

TAB_ID, TAB_LABEL = "tariffs", "Tariffs"
HOUSE, TABLE, MESSAGE, CHANGED = (
    "admin-tariff-house",
    "admin-tariffs-table",
    "admin-tariffs-message",
    "admin-tariffs-changed",
)
NAME, KIND, IMPORT, EXPORT = (
    "admin-tariff-name",
    "admin-tariff-kind",
    "admin-tariff-import",
    "admin-tariff-export",
)
STANDING, FROM, TO = "admin-tariff-standing", "admin-tariff-from", "admin-tariff-to"
PERIODS, ADD = "admin-tariff-periods", "admin-tariff-add"
END, DELETE = "admin-tariff-end", "admin-tariff-delete"  # row buttons' pattern-matching id types
PERIODS_HELP = "Time of use: one period a line, `days start-end price`, e.g. `weekday 07:00-23:00 0.30`"


def _number(component_id: str) -> dbc.Input:
    return dbc.Input(id=component_id, type="number", step="any", min=0)


def tariffs_tab(house_options: list[dict]) -> html.Div:
    """`house_options`: the houses (no "All houses")."""
    house = dcc.Dropdown(id=HOUSE, options=house_options, value=house_options[0]["value"] if house_options else None,
                         clearable=False, placeholder="A house")  # fmt: skip
    kind = dbc.RadioItems(id=KIND, options=[{"label": "Flat", "value": "flat"},
                                            {"label": "Time of use", "value": "tou"}], value="flat", inline=True)  # fmt: skip
    form = [
        dbc.Row(
            [
                field("House", house, md=4),
                field("Kind", kind, md=3),
                field("Name", dbc.Input(id=NAME, maxLength=120, placeholder="optional"), md=3),
            ],
            className="g-3 align-items-end",
        ),  # fmt: skip
        dbc.Row(
            [
                field("Import price per kWh (flat)", _number(IMPORT), md=2),
                field("Feed-in price per kWh (optional)", _number(EXPORT), md=2),
                field("Standing charge per day (optional)", _number(STANDING), md=2),
                field("Valid from (YYYY-MM-DD)", dbc.Input(id=FROM, placeholder="2027-01-01"), md=2),
                field("Valid to, included (optional)", dbc.Input(id=TO, placeholder="open-ended"), md=2),
            ],
            className="g-3 align-items-end mt-1",
        ),
        dbc.Row(
            [
                field(
                    PERIODS_HELP,
                    dbc.Textarea(
                        id=PERIODS,
                        rows=3,
                        placeholder="weekday 07:00-23:00 0.30\n"
                        "weekday 23:00-07:00 0.10\nweekend 00:00-24:00 0.15",
                    ),
                    md=8,
                ),  # fmt: skip
                dbc.Col(dbc.Button("Add tariff", id=ADD, color="primary"), md=2),
            ],
            className="g-3 align-items-end mt-1",
        ),
    ]
    return html.Div(
        [
            html.P(
                "Prices in the CURRENCY setting. A house's tariffs may not share a day; end the current one "
                "(its last day) before adding the next.",
                className="text-muted",
            ),  # fmt: skip
            *form,
            dbc.Alert(id=MESSAGE, is_open=False, color="info", dismissable=True, className="mt-3"),
            dcc.Store(id=CHANGED, data=0),
            dcc.Loading(html.Div(id=TABLE, className="mt-3")),
        ],
        className="pt-3",
    )
