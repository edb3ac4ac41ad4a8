"""Overview callbacks: totals, user distribution and the last 24 hours of the caller's whole scope.

The scope always comes from the server-side cookie (`ui_scope()`); the page sends nothing but the refresh
tick. Energy comes from the rollups, never from raw readings over long ranges; only "now" reads readings.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, no_update
from sqlalchemy import exists, func, or_, select

from callbacks.common import sync_refresh, sync_url
from dashboard.choices import Choice
from dashboard.clock import floor_to, iso_utc, local_midnight_utc, local_today, to_local, utcnow
from dashboard.context import db, services
from dashboard.costs import compute, scope_houses
from dashboard.live import mean_power, scope_devices
from dashboard.policy import CONSUMER, allowed
from dashboard.queries import energy_series
from dashboard.readings import FUTURE_TOLERANCE
from dashboard.schema import PV, Device, House, User, user_communities, user_houses
from dashboard.scope import Scope
from dashboard.ui_auth import ui_scope
from pages._charts import (
    CONSUMPTION,
    PRODUCTION,
    empty_figure,
    layout_props,
    mark_partial_bar,
    plain_figure,
)
from pages._cost import cost_card
from pages.overview import (
    CHART,
    COST,
    COUNTS,
    ENERGY,
    LAST_24H,
    NOW,
    NOW_NOTE,
    REFRESH,
    REFRESH_EVERY,
    TODAY,
    UPDATED,
    URL_FIELDS,
    URL_PREFIX,
)

HOUR = timedelta(hours=1)
QUARTER = timedelta(minutes=15)
NOW_WINDOW = timedelta(minutes=5)


def _next_hour(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0) + HOUR


def last_24h_series(scope: Scope, now: datetime | None = None) -> list[dict]:
    """Hourly kWh of the 24 hourly buckets ending with the current one (missing hours absent)."""
    end = _next_hour(now or utcnow())
    return energy_series(db(), scope, "hour", end - timedelta(hours=24), end)


def totals(series: list[dict]) -> tuple[float, float, float]:
    consumption = sum(p["consumption_kwh"] for p in series)
    production = sum(p["production_kwh"] for p in series)
    return consumption, production, consumption - production


def last_24h_totals(scope: Scope) -> tuple[float, float, float]:
    return totals(last_24h_series(scope))


def today_totals(scope: Scope, timezone: str, now: datetime) -> tuple[float, float, float]:
    """kWh since local midnight (a local day may last 23 or 25 hours; the bounds are exact)."""
    start = local_midnight_utc(local_today(timezone), timezone)
    end = floor_to(now, QUARTER) + QUARTER
    return totals(energy_series(db(), scope, "15min", start, end))


def power_now(scope: Scope, now: datetime, timezone: str) -> tuple[float | None, float | None, str]:
    """(demand kW, production kW, where the numbers come from): each device's mean power over the last
    5 minutes of readings, summed per direction with the rollups' rule; when nothing reported in those
    5 minutes, the latest complete 15-minute rollup bucket of the last hour (its energy x 4)."""
    session = db()
    devices = scope_devices(session, scope, Choice())
    consumption, production, reporting = mean_power(
        session, devices, now - NOW_WINDOW, now + FUTURE_TOLERANCE
    )
    if reporting:
        note = f"Now: mean power of the last 5 minutes ({reporting} device(s) reporting)."
        return (consumption or 0.0) / 1000.0, (production or 0.0) / 1000.0, note
    end = floor_to(now, QUARTER)  # the current quarter is still filling
    series = energy_series(session, scope, "15min", end - HOUR, end)
    if series:
        last = series[-1]
        bucket = datetime.fromisoformat(last["timestamp"].replace("Z", ""))
        note = (
            "Now: no reading in the last 5 minutes; the 15-minute interval "
            f"{to_local(bucket, timezone):%H:%M}-{to_local(bucket + QUARTER, timezone):%H:%M} (energy x 4)."
        )
        return last["consumption_kwh"] * 4, last["production_kwh"] * 4, note
    return None, None, "Now: no reading in the last hour."


def distribution(scope: Scope) -> dict[str, int]:
    """Houses in the scope, and its users as the spec's Overview counts them: consumers (consumer accounts
    none of whose houses produces), prosumers (one of them has a production device or a PV) and community
    members (linked to at least one community). Staff count every active consumer account, a consumer
    themselves."""
    h = House
    stmt = select(func.count()).select_from(h)
    if not scope.all_houses:
        stmt = stmt.where(h.id.in_(sorted(scope.house_ids or ())))
    houses = db().execute(stmt).scalar_one()
    linked = user_houses.c.house_id
    producing = or_(
        exists().where(
            Device.house_id == linked, Device.direction == "production", Device.kind != "appliance"
        ),
        exists().where(PV.house_id == linked),
    )
    prosumer = exists().where(user_houses.c.user_id == User.id, producing)
    member = exists().where(user_communities.c.user_id == User.id)
    users = select(func.count(), func.count().filter(prosumer), func.count().filter(member)).where(
        User.role == CONSUMER, User.is_active.is_(True)
    )
    if not scope.all_houses:
        users = users.where(User.id == scope.user_id)
    count, prosumers, members = db().execute(users).one()
    return {"houses": houses, "consumers": count - prosumers, "prosumers": prosumers, "members": members}


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def day_chart(series: list[dict], timezone: str, now: datetime) -> go.Figure | dict:
    """Hourly consumption and production of the last 24 h as bars: a missing hour is a missing bar. Built
    as a plain figure (pages/_charts.py plain_figure): plotly.py's validation took most of the callback."""
    if not series:
        return empty_figure("No readings in the last 24 hours.", height=280)
    xs = [to_local(p["timestamp"], timezone) for p in series]
    labels = [f"{x:%Y-%m-%d %H:%M}" for x in xs]
    # the current hour is still filling: hatched and faded, its hover saying "so far" (never read as a drop)
    current = _next_hour(now) - HOUR
    partial = len(series) - 1 if series[-1]["timestamp"] == iso_utc(current) else None
    traces = []
    for name, key, colour in (("Consumption", "consumption_kwh", CONSUMPTION), ("Production", "production_kwh",
                                                                                 PRODUCTION)):  # fmt: skip
        trace = {"x": labels, "y": [p[key] for p in series], "name": name, "marker": {"color": colour},
                 "customdata": list(labels), "hovertemplate": "%{customdata}<br>%{y:.2f} kWh"}  # fmt: skip
        mark_partial_bar(trace, partial)
        traces.append(trace | {"type": "bar"})
    end = _next_hour(now)
    layout = layout_props(y_title="kWh per hour", height=280)
    # A bar is centred on its hour's start and one hour wide: the range runs from half an hour before the
    # first to half an hour after the last, so neither end bar is cut. The legend sits above the plot,
    # where it cannot cover the tick labels' date line or the axis title below it.
    half = timedelta(minutes=30)
    layout["barmode"] = "group"
    layout["xaxis"] |= {
        "range": [
            f"{to_local(end - timedelta(hours=24) - half, timezone):%Y-%m-%d %H:%M}",
            f"{to_local(end - half, timezone):%Y-%m-%d %H:%M}",
        ],
        "title": {"text": f"Local time ({timezone}), hour starts"},
    }
    layout["legend"] |= {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"}
    layout["margin"] |= {"t": 36, "b": 60}
    return plain_figure(traces, layout)


def _children(*ids: str) -> list[Output]:
    return [Output(component_id, "children") for component_id in ids]


def update_totals(_n):
    """The last 24 hours' demand, production and net (kWh)."""
    scope = ui_scope()
    if scope is None:  # the request guard already refused anonymous calls; belt and braces
        return no_update, no_update, no_update
    return tuple(f"{value:,.1f}" for value in last_24h_totals(scope))


def update_now_today_chart(_n):
    """Now (kW) with its note, today (kWh), the chart and when it was updated."""
    scope = ui_scope()
    if scope is None:
        return ("-",) * 7 + (empty_figure("Please log in."), "")
    timezone = services().settings.timezone
    now = utcnow()
    demand_now, production_now, note = power_now(scope, now, timezone)
    net_now = None if demand_now is None else demand_now - (production_now or 0.0)
    today = today_totals(scope, timezone, now)
    chart = day_chart(last_24h_series(scope, now), timezone, now)
    return (
        fmt(demand_now, 2),
        fmt(production_now, 2),
        fmt(net_now, 2),
        note,
        *(fmt(v) for v in today),
        chart,
        f"Updated {to_local(now, timezone):%H:%M:%S} ({timezone}).",  # how often: the auto-refresh choice
    )


def update_distribution(_n):
    scope = ui_scope()
    if scope is None:
        return "-", "-", "-", "-"
    counts = distribution(scope)
    return tuple(str(counts[k]) for k in COUNTS)


def last_24h_cost(scope: Scope, now: datetime):
    """Cost and CO2 of the last 24 hourly buckets (as the 24-h totals), or None without tariff or intensity."""
    settings, session = services().settings, db()
    end = _next_hour(now)
    houses = scope_houses(session, scope)
    return compute(session, houses, end - timedelta(hours=24), end, settings.timezone, settings.currency,
                   settings.grid_co2_g_per_kwh, now)  # fmt: skip


def update_cost(_n):
    """The cost card: only where a house of the scope has a tariff or a carbon intensity is known."""
    scope = ui_scope()
    if scope is None or not allowed("cost:read", scope.role):
        return None
    result = last_24h_cost(scope, utcnow())
    return (
        None if result is None else dbc.Row(cost_card(result, "Cost last 24 h", "overview"), className="g-3")
    )


def register_callbacks(app) -> None:
    sync_url(app, URL_PREFIX, URL_FIELDS)
    sync_refresh(app, REFRESH_EVERY, REFRESH)
    tick = Input(REFRESH, "n_intervals")
    app.callback(*_children(*(LAST_24H[key] for key in ENERGY)), tick)(update_totals)
    app.callback(
        *_children(*(NOW[key] for key in ENERGY), NOW_NOTE, *(TODAY[key] for key in ENERGY)),
        Output(CHART, "figure"),
        Output(UPDATED, "children"),
        tick,
    )(update_now_today_chart)
    app.callback(*_children(*COUNTS.values()), tick)(update_distribution)
    app.callback(Output(COST, "children"), tick)(update_cost)
