"""Admin (admins only): users, houses and devices, API keys, model versions (list, activate) and jobs.

The layout holds the forms and empty table containers; the tables are built by callbacks/admin.py, each
of which re-checks the caller's role on the server.
"""

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.choices import ALL, COMMUNITY_PREFIX, scope_options
from dashboard.context import db
from dashboard.policy import KEY_ROLES, ROLES, THIRD_PARTY
from dashboard.ui_auth import page_guard
from pages._admin_resources import ACCOUNTS_TAB, RECORDS_TAB, accounts_tab, records_tab
from pages._admin_tariffs import TAB_ID as TARIFFS_TAB
from pages._admin_tariffs import tariffs_tab
from pages._components import field as _field

PATH, PERMISSION = "/admin", "page:admin"
NAME, ORDER = "Admin", 6

TABS = {
    "users": "Users",
    "houses": "Houses and devices",
    "keys": "API keys",
    "models": "Models",
    "jobs": "Jobs",
    TARIFFS_TAB: "Tariffs",
    RECORDS_TAB: "Create and edit",
    ACCOUNTS_TAB: "Links, resets and sessions",
}
# the row buttons' pattern-matching id types (the callbacks build the rows; the index is the row's id)
USER_TOGGLE, KEY_REVOKE, MODEL_ACTIVATE = "admin-user-active", "admin-key-revoke", "admin-model-activate"


DEVICES_FILTER = "admin-devices-house"  # the devices table's house / community / all choice


def pager(table: str) -> str:
    """The id of a table's dbc.Pagination (callbacks/admin_houses.py sets its pages; hidden while one)."""
    return f"admin-{table}-page"


def _pager(table: str) -> dbc.Pagination:
    return dbc.Pagination(id=pager(table), max_value=1, active_page=1, fully_expanded=False,
                          previous_next=True, size="sm", class_name="d-none")  # fmt: skip


def tab_store(tab_id: str) -> str:
    """The store that receives `tab_id` each time its tab is shown (callbacks/admin.py copies admin-tabs'
    active_tab into the shown tab's store only, in the browser): a tab's callbacks listen to it, so showing
    a tab runs that tab's callbacks alone, not every tab's (each refusing in a request of its own)."""
    return f"admin-tab-{tab_id}"


def _message(name: str) -> dbc.Alert:
    return dbc.Alert(
        id=f"admin-{name}-message", is_open=False, color="info", dismissable=True, className="mt-3"
    )


def _table(name: str) -> dcc.Loading:
    return dcc.Loading(html.Div(id=f"admin-{name}-table", className="mt-3"))


def users_tab(options: list[dict]) -> html.Div:
    form = dbc.Row(
        [
            _field("Username", dbc.Input(id="admin-user-username", maxLength=80, autoComplete="off"), md=2),
            _field(
                "Password (8+ characters)",
                dbc.Input(id="admin-user-password", type="password", autoComplete="new-password"),
                md=2,
            ),
            _field(
                "Role",
                dcc.Dropdown(
                    id="admin-user-role",
                    options=[{"label": role, "value": role} for role in ROLES],
                    value="consumer",
                    clearable=False,
                ),
                md=2,
            ),
            _field(
                "Houses (consumers)",
                dcc.Dropdown(id="admin-user-houses", options=options, multi=True, placeholder="None"),
                md=4,
            ),
            dbc.Col(dbc.Button("Create user", id="admin-user-create", color="primary"), md=2),
        ],
        className="g-3 align-items-end",
    )
    return html.Div(
        [form, _message("users"), dcc.Store(id="admin-users-changed", data=0), _table("users")],
        className="pt-3",
    )


def houses_tab(options: list[dict]) -> html.Div:
    """`options`: all houses, the communities, then each house (the device table's filter)."""
    device_filter = dbc.Row(
        [
            dbc.Col(html.H5("Devices", className="mb-0"), width="auto"),
            dbc.Col(
                dcc.Dropdown(
                    id=DEVICES_FILTER,
                    options=options,
                    value=ALL,
                    clearable=False,
                ),
                md=4,
            ),
        ],
        className="g-3 align-items-center mt-4",
    )
    return html.Div(
        [
            html.H5("Houses"),
            _table("houses"),
            _pager("houses"),
            device_filter,
            _table("devices"),
            _pager("devices"),
        ],
        className="pt-3",
    )


def keys_tab(options: list[dict]) -> html.Div:
    """`options`: the houses a gateway key may be given (a third-party key takes none)."""
    role = dcc.Dropdown(id="admin-key-role", options=[{"label": r, "value": r} for r in KEY_ROLES],
                        value=THIRD_PARTY, clearable=False)  # fmt: skip
    houses = dcc.Dropdown(id="admin-key-houses", options=options, multi=True, placeholder="None")
    form = dbc.Row(
        [
            _field("Name of the app or gateway", dbc.Input(id="admin-key-name", maxLength=120), md=3),
            _field("Role (gateway: writes its houses' readings, reads nothing)", role, md=3),
            _field("Houses (gateways)", houses, md=4),
            dbc.Col(dbc.Button("Create API key", id="admin-key-create", color="primary"), md=2),
        ],
        className="g-3 align-items-end",
    )
    return html.Div(
        [form, _message("keys"), dcc.Store(id="admin-keys-changed", data=0), _table("keys")], className="pt-3"
    )


def models_tab() -> html.Div:
    return html.Div(
        [
            html.P(
                "Each slot (target, product, horizon, scope, model, strategy) has at most one active version; "
                "activating an older version rolls the slot back to it.",
                className="text-muted",
            ),
            dbc.Button("Refresh", id="admin-models-refresh", color="secondary", size="sm"),
            _message("models"),
            dcc.Store(id="admin-models-changed", data=0),
            _table("models"),
        ],
        className="pt-3",
    )


def jobs_tab() -> html.Div:
    return html.Div(
        [
            html.P("Recent training and forecast runs, newest first.", className="text-muted"),
            dbc.Button("Refresh", id="admin-jobs-refresh", color="secondary", size="sm"),
            _table("jobs"),
        ],
        className="pt-3",
    )


@page_guard(PATH, PERMISSION)
def layout(scope, **_kwargs):
    every = scope_options(db(), scope, communities=True)  # all houses, the communities, each house
    houses = [o for o in every[1:] if not o["value"].startswith(COMMUNITY_PREFIX)]
    content = {
        "users": users_tab(houses),
        "houses": houses_tab(every),
        "keys": keys_tab(houses),
        "models": models_tab(),
        "jobs": jobs_tab(),
        TARIFFS_TAB: tariffs_tab(houses),
        RECORDS_TAB: records_tab(),
        ACCOUNTS_TAB: accounts_tab(),
    }
    return html.Div(
        [
            html.H2("Admin"),
            dbc.Tabs(
                [dbc.Tab(content[tab_id], label=label, tab_id=tab_id) for tab_id, label in TABS.items()],
                id="admin-tabs",
                active_tab="users",
            ),
            *(dcc.Store(id=tab_store(tab_id)) for tab_id in TABS),
        ]
    )
