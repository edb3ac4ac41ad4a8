"""The relative range picker's layout, one for every page with a range of local days (Historical,
Analytics, Exports): the range choice (24 h, 7 d, 30 d, this month, custom) with previous / next, the
local days' date picker (never past today), and the range's fields in the page's URL.

Everything is named by the page's id prefix ("analytics" -> "analytics-range", "analytics-dates",
"analytics-previous", "analytics-next"); callbacks/ranges.py registers the picker's callbacks for that
prefix. A page either keeps its own meaning for the presets (Historical: 24 h and 7 d are hourly bars
ending now) or lets the date picker hold the range's days (Analytics, Exports: `read_range_url` here, and
the callbacks fill the picker when a preset is chosen), so its callbacks read the days only.

(The leading underscore keeps Dash's page registry from taking this module for a page.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.clock import local_today
from dashboard.context import services
from pages._components import GRAPH_CONFIG, field
from pages._urlstate import Refused, UrlField, iso_day, one_of, read_url

RANGE_24H, RANGE_7D, RANGE_30D, RANGE_MONTH, RANGE_CUSTOM = "24h", "7d", "30d", "month", "custom"
PRESET_DAYS = {RANGE_24H: 1, RANGE_7D: 7, RANGE_30D: 30}
RANGE_OPTIONS = [
    {"label": "24 h", "value": RANGE_24H},
    {"label": "7 d", "value": RANGE_7D},
    {"label": "30 d", "value": RANGE_30D},
    {"label": "This month", "value": RANGE_MONTH},
    {"label": "Custom", "value": RANGE_CUSTOM},
]
CUSTOM = frozenset({RANGE_CUSTOM})
# The charts of a range page: a double-click always autoranges, which the picker turns into a zoom out
# (callbacks/ranges.py). Plotly's default would first reset the axes to the figure's initial range, which
# after a zoom can be the range before it: what a double-click did would depend on the chart's history.
ZOOM_GRAPH_CONFIG = GRAPH_CONFIG | {"doubleClick": "autosize"}


@dataclass(frozen=True)
class RangeIds:
    """The picker's component ids for one page."""

    range: str
    dates: str
    previous: str
    next: str
    event: str  # a store: the browser's picker events the server must answer (callbacks/ranges.py)


def range_ids(prefix: str) -> RangeIds:
    return RangeIds(
        f"{prefix}-range", f"{prefix}-dates", f"{prefix}-previous", f"{prefix}-next", f"{prefix}-range-event"
    )


def today() -> date:
    """The server's local day (the app's TIMEZONE): no range reaches past it."""
    return local_today(services().settings.timezone)


def preset_days(range_choice: str, day: date) -> tuple[date, date]:
    """The local days [first, last] a preset covers, `day` (today) included ("24 h": today; "this month":
    the 1st to today)."""
    if range_choice == RANGE_MONTH:
        return day.replace(day=1), day
    days = PRESET_DAYS.get(range_choice)
    if days is None:
        raise ValueError(f"not a preset range: {range_choice!r}")
    return day - timedelta(days=days - 1), day


def past_day(text: str, scope) -> str:
    """A local day up to today, YYYY-MM-DD: a link to the future is refused (the picker stops at today)."""
    value = iso_day(text, scope)
    if date.fromisoformat(value) > today():
        raise Refused(f"a day up to today, {today().isoformat()}")
    return value


def default_days(range_choice: str, timezone: str) -> tuple[date, date]:
    """A preset's local days today in this zone."""
    return preset_days(range_choice, local_today(timezone))


def range_url_fields(prefix: str, default: str, custom_days: Callable[[], tuple[date, date]] | None = None):
    """The range's URL fields: `range` (a preset or custom; `default` is left out of the URL), and for a
    custom range `from` / `to` (the date picker's days; when a link has none, `custom_days()`, by
    default the default preset's days)."""
    ids = range_ids(prefix)
    if custom_days is None:
        custom_days = lambda: preset_days(default, today())  # noqa: E731
    return (
        UrlField("range", ids.range, "value", one_of(*(o["value"] for o in RANGE_OPTIONS)), default),
        UrlField("from", ids.dates, "start_date", past_day, lambda: custom_days()[0].isoformat(),
                 only_if=("range", CUSTOM)),
        UrlField("to", ids.dates, "end_date", past_day, lambda: custom_days()[1].isoformat(),
                 only_if=("range", CUSTOM)),
    )  # fmt: skip


def read_range_url(query: dict, fields, scope, **options) -> tuple[dict, list[str]]:
    """`read_url` for a page whose date picker holds the range's days: a preset's days in `from` / `to`.
    A link from before the range picker (`?from=...&to=...`, no `range`) is a custom range."""
    if "range" not in query and ("from" in query or "to" in query):
        query = {**query, "range": RANGE_CUSTOM}
    state, notices = read_url(query, fields, scope, **options)
    if state["range"] != RANGE_CUSTOM:
        first, last = preset_days(state["range"], today())
        state = {**state, "from": first.isoformat(), "to": last.isoformat()}
    return state, notices


def next_disabled(range_choice, end_date) -> bool:
    """Next is disabled for a preset (it ends now) and for a custom range that already reaches today; the
    layout draws it so and callbacks/ranges.py keeps it so."""
    if range_choice != RANGE_CUSTOM:
        return True
    try:
        return date.fromisoformat(str(end_date)[:10]) >= today()
    except ValueError:
        return True


def range_fields(prefix: str, state: dict, note: str = "", md: tuple[int, int] = (5, 4)) -> tuple:
    """(the range column, the local days column) for the page's rows: the presets with previous / next,
    and the date picker, enabled for a custom range (callbacks/ranges.py keeps both current)."""
    ids, custom = range_ids(prefix), state["range"] == RANGE_CUSTOM
    shift = html.Div(
        [
            dbc.Button("\u2039 Previous", id=ids.previous, color="secondary", outline=True, size="sm",
                       className="me-2", title="The range before this one, as long as it"),
            dbc.Button("Next \u203a", id=ids.next, color="secondary", outline=True, size="sm",
                       disabled=next_disabled(state["range"], state["to"]), title="The range after this one (up to now)"),
        ],
        className="mt-1",
    )  # fmt: skip
    choice = html.Div(
        [
            dbc.RadioItems(id=ids.range, options=RANGE_OPTIONS, value=state["range"], inline=True),
            shift,
            dcc.Store(id=ids.event, storage_type="memory"),
        ]
    )
    dates = dcc.DatePickerRange(
        id=ids.dates,
        start_date=state["from"],
        end_date=state["to"],
        max_date_allowed=today().isoformat(),  # no readings exist after today (the server refuses them too)
        display_format="YYYY-MM-DD",
        first_day_of_week=1,
        minimum_nights=0,
        disabled=not custom,
    )
    timezone = services().settings.timezone
    label = f"Local days ({timezone}), both included{note}"
    return field("Range", choice, md=md[0]), field(label, dates, md=md[1])
