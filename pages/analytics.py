"""Analytics: consumption anomalies, EN 50160 voltage events, power-factor trends and load profiles for one
house or all the caller's houses over a range of local days.

The four analyses are tabs (dcc.Tabs mounts only the chosen one), so the page draws one chart at a time;
the all-houses background scan's progress sits above them, as it feeds three. This module owns the
page's ids, ranges and options; callbacks/analytics.py imports them.
"""

from datetime import date

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.choices import ALL, scope_options
from dashboard.context import db
from dashboard.ui_auth import page_guard
from pages._components import field, page_header, scope_dropdown
from pages._ranges import (
    RANGE_7D,
    ZOOM_GRAPH_CONFIG,
    default_days,
    range_fields,
    range_ids,
    range_url_fields,
    read_range_url,
)
from pages._urlstate import UrlField, caller_default, one_of, scope_choice

PATH, PERMISSION = "/analytics", "page:analytics"
NAME, ORDER = "Analytics", 4

MAX_DAYS = 365  # local days per request: the service's 366-day limit, with room for a DST hour
POLL_MS = 800  # how often the page asks about a running all-houses anomaly scan

# component ids the callbacks share
URL_PREFIX = "analytics"
IDS = range_ids(URL_PREFIX)  # the range picker's (pages/_ranges.py): its dates hold the range's days
RANGE, DATES = IDS.range, IDS.dates
SCOPE, TABS = "analytics-scope", "analytics-tabs"
DEFAULT_RANGE = RANGE_7D
ANOMALY, VOLTAGE, PF, PROFILE = "anomaly", "voltage", "pf", "profile"  # the tabs' values
SECTIONS = {  # tab value (the prefix of its components' ids) -> tab label
    ANOMALY: "Anomalies",
    VOLTAGE: "Voltage events (EN 50160)",
    PF: "Power factor",
    PROFILE: "Load profile",
}
ANOMALY_COUNTS, ANOMALY_TABLE = "analytics-anomaly-counts", "analytics-anomaly-table"
VOLTAGE_TABLE, PF_TABLE = "analytics-voltage-table", "analytics-pf-table"
PROFILE_STATS = "analytics-profile-stats"
# the all-houses scan: its job store, the poll timer and the progress bar
SCAN_JOB, SCAN_POLL = "analytics-anomaly-job", "analytics-anomaly-poll"
PROGRESS, PROGRESS_TEXT = "analytics-anomaly-progress", "analytics-anomaly-progress-text"
PROGRESS_BOX = "analytics-anomaly-progress-box"
HIDDEN, SHOWN = {"display": "none"}, {"display": "block"}

TAB_STYLE = {"padding": "0.5rem 1rem"}
TAB_SELECTED_STYLE = TAB_STYLE | {"fontWeight": "600"}
LOADING_DELAY_MS = 300
INTROS = {
    ANOMALY: "Consumption spikes, unusual night load and stuck meters, judged against each house's own "
    "history (the four weeks before the range included). One house: its consumption with each anomaly "
    "shaded; all houses: the count per house and kind, scanned in the background together with the "
    "voltage events and power factor.",
    VOLTAGE: "Sags below 0.9 Un, swells above 1.1 Un and interruptions at or below 0.05 Un, from the meters' "
    "raw readings: count and total duration per house and kind, and when they happened. All houses: "
    "computed with the anomaly scan in the background.",
    PF: "Daily time-weighted mean power factor (line) and the share of time below 0.9 (bars), per local day. "
    "All houses: computed with the anomaly scan in the background.",
    PROFILE: "Average daily consumption profile by local 15-minute slot, weekdays and weekends apart; peak "
    "15-minute power and load factor (mean / peak) over the range.",
}


def section_id(tab: str, part: str) -> str:
    """A section's own components: message, graph, card, shown (the request the tab shows)."""
    return f"analytics-{tab}-{part}"


def default_range(timezone: str) -> tuple[date, date]:
    """The default range's local days (the last 7, today included; the picker's end date is inclusive)."""
    return default_days(DEFAULT_RANGE, timezone)


def _section(tab: str, below=None, above=None) -> html.Div:
    """A tab's content: message, optional content above the chart, the chart, optional content below it.
    The chart has no figure until its callback answers (no placeholder drawn first). While its callback
    runs for longer than LOADING_DELAY_MS, the chart stays in place, faded, under a spinner: a changed
    range or house never looks current before it is (no spinner at all for quick answers)."""
    body = [
        html.P(INTROS[tab], className="text-muted small mb-2"),
        dbc.Alert(id=section_id(tab, "message"), is_open=False, color="info", className="py-2"),
    ]
    if above is not None:
        body.append(above)
    body.append(
        dcc.Loading(
            dcc.Graph(id=section_id(tab, "graph"), config=ZOOM_GRAPH_CONFIG),
            delay_show=LOADING_DELAY_MS,
            show_initially=False,
            overlay_style={"visibility": "visible", "opacity": 0.4},
            type="circle",
        )
    )
    if below is not None:
        body.append(below)
    return html.Div(body, className="pt-3", id=section_id(tab, "card"))


def controls(options: list[dict], state: dict) -> dbc.Row:
    """The house and the range (pages/_ranges.py)."""
    range_choice, dates = range_fields(URL_PREFIX, state, note=f", at most {MAX_DAYS}", md=(5, 3))
    return dbc.Row(
        [field("House", scope_dropdown(SCOPE, options, state["scope"]), md=4), range_choice, dates],
        className="g-3 mb-4",
    )


def scan_progress() -> html.Div:
    """All houses: the background scan's progress (callbacks/analytics.py polls it), for whichever tab;
    and each tab's "shown" store, so coming back to a tab does not compute it again."""
    bar = dbc.Progress(id=PROGRESS, value=0, label="", striped=True, animated=True, className="mb-1")
    return html.Div(
        [
            html.Div(
                [bar, html.Small(id=PROGRESS_TEXT, className="text-muted")],
                id=PROGRESS_BOX,
                style=HIDDEN,
                className="mb-2",
            ),
            dcc.Store(id=SCAN_JOB, storage_type="memory"),
            dcc.Interval(id=SCAN_POLL, interval=POLL_MS, disabled=True),
            *(dcc.Store(id=section_id(tab, "shown"), storage_type="memory") for tab in SECTIONS),
        ]
    )


def tabs(value: str = ANOMALY) -> dcc.Tabs:
    content = {
        ANOMALY: _section(
            ANOMALY, above=html.Div(id=ANOMALY_COUNTS, className="mb-2"), below=html.Div(id=ANOMALY_TABLE)
        ),
        VOLTAGE: _section(VOLTAGE, below=html.Div(id=VOLTAGE_TABLE)),
        PF: _section(PF, below=html.Div(id=PF_TABLE)),
        PROFILE: _section(PROFILE, above=dbc.Row(id=PROFILE_STATS, className="g-2 mb-2")),
    }
    return dcc.Tabs(
        [
            dcc.Tab(
                content[tab],
                label=label,
                value=tab,
                id=f"analytics-tab-{tab}",
                style=TAB_STYLE,
                selected_style=TAB_SELECTED_STYLE,
            )
            for tab, label in SECTIONS.items()
        ],
        id=TABS,
        value=value,
        colors={"border": "#dee2e6", "primary": "#0d6efd", "background": "#f8f9fa"},  # Bootstrap's
    )


@page_guard(PATH, PERMISSION)
def layout(scope, **query):
    options = scope_options(db(), scope, communities=False)
    # the first house by default: per-house analyses are quick, the whole scope costs one pass per house
    choice = options[1]["value"] if len(options) > 1 else ALL
    limits = {"defaults": {"scope": choice}, "choices": {"scope": [o["value"] for o in options]}}
    state, notices = read_range_url(query, URL_FIELDS, scope, **limits)
    return html.Div(
        [
            *page_header("Analytics", None, URL_PREFIX, PATH, state, URL_FIELDS, notices),
            controls(options, state),
            scan_progress(),
            tabs(state["tab"]),
        ]
    )


URL_FIELDS = (  # /analytics?scope=4&range=custom&from=...&to=...&tab=voltage
    UrlField("scope", SCOPE, "value", scope_choice, caller_default),
    *range_url_fields(URL_PREFIX, DEFAULT_RANGE),
    UrlField("tab", TABS, "value", one_of(*SECTIONS), ANOMALY),
)
