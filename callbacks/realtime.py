"""Real-Time page callbacks: live consumption and production (kW) of the chosen scope, from raw readings.

Data. The scope's devices are chosen on the server: the browser only sends a choice ("all", "c<id>",
"<house id>") that `resolve_choice` checks against the cookie's scope. Readings of a bounded rolling
window (the last 15 minutes per 15 seconds by default, or the last 60 minutes per minute) are bucketed in
SQL: the mean power of each device per bucket, summed per direction with the rollups' rule
(`dashboard.rollups.DeviceInfo.house_role`: consumption = house meters, production = production devices
that are not appliances; appliances are sub-meters and never added on top). A bucket in which no device
of a direction reported is absent for that direction: a gap, never a zero.

Updates. The first draw and every scope or window change send a full figure. Each 5-second tick sends a
`dash.Patch` with only what changed since the last bucket the browser has (kept in `realtime-state`):
that bucket again if it was still filling when drawn, the buckets after it, and deletions of the points
that left the window; the x range rolls with the clock.

Status. The latest voltage and power factor (mean over the scope's meters' latest readings of the last
15 minutes), the time of the scope's last reading, a warning when nothing arrived for 60 s, and the
devices whose latest reading is older than 15 minutes. "Latest reading" is one index probe per device
(max(ts) on the (device_id, ts) primary key), so it is bounded by the scope's device count, not by the
number of stored readings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, Patch, State, ctx, html
from sqlalchemy import Integer, case, cast, false, func, literal_column, or_, select, true, tuple_
from sqlalchemy.orm import Session

from callbacks.charts import CONSUMPTION, PRODUCTION, base_layout, empty_figure, to_local
from callbacks.common import Choice, error_text, resolve_choice
from dashboard.api.common import db, services
from dashboard.errors import DomainError
from dashboard.readings import FUTURE_TOLERANCE
from dashboard.rollups import DeviceInfo
from dashboard.schema import Device, House, Measurement, PVPark, community_houses
from dashboard.scope import Scope
from dashboard.ui_auth import ui_scope

# window key -> (window length, bucket width)
WINDOWS = {
    "60m": (timedelta(minutes=60), timedelta(minutes=1)),
    "15m": (timedelta(minutes=15), timedelta(seconds=15)),
}
WINDOW_OPTIONS = [
    {"label": "Last 15 min, per 15 s", "value": "15m"},
    {"label": "Last 60 min, per minute", "value": "60m"},
]
# 15 minutes by default: its first draw reads a quarter of the 60-minute window's readings (at a 5-second
# cadence on 200 houses: about 70 ms against 260 ms in PostgreSQL); both windows tick in about 15 ms.
DEFAULT_WINDOW = "15m"
POLL_MS = 5_000
SETTLE = timedelta(seconds=15)  # a bucket is final this long after its end (readings ingested late)
SILENT_ALERT = timedelta(seconds=60)  # no reading of the scope for this long: the warning opens
SILENT_DEVICE = timedelta(minutes=15)  # a device whose latest reading is older is listed as silent
MAX_SILENT_ROWS = 10  # the longest silent first; a fleet-wide outage lists its count, not 700 rows
MAX_STATE_POINTS = 2_000  # a state longer than any window can hold is not ours: redraw
X_FORMAT = "%Y-%m-%d %H:%M:%S"
TRACES = (("Consumption", CONSUMPTION), ("Production", PRODUCTION))


@dataclass(frozen=True)
class ScopeDevice:
    info: DeviceInfo
    name: str

    @property
    def id(self) -> int:
        return self.info.id


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def floor_to(ts: datetime, step: timedelta) -> datetime:
    """Floor a naive-UTC time to a multiple of `step` since the Unix epoch (as the SQL buckets do)."""
    seconds = int(step.total_seconds())
    epoch = int(ts.replace(tzinfo=UTC).timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC).replace(tzinfo=None)


# ---- queries -----------------------------------------------------------------------------------------


def _device_filter(scope: Scope, choice: Choice):
    d = Device
    if choice.house_id is not None:
        scope.require_house(choice.house_id)  # resolve_choice checked it already; belt and braces
        return d.house_id == choice.house_id
    if choice.community_id is not None:
        houses = select(community_houses.c.house_id).where(
            community_houses.c.community_id == choice.community_id
        )
        in_houses = d.house_id.in_(houses)
        if not scope.all_houses:
            in_houses = in_houses & d.house_id.in_(sorted(scope.house_ids))
        parks = select(PVPark.id).where(PVPark.community_id == choice.community_id)
        return or_(in_houses, d.pv_park_id.in_(parks))
    if scope.all_houses:
        return true()  # every house and every PV park, as the rollups' "all" does
    return d.house_id.in_(sorted(scope.house_ids)) if scope.house_ids else false()


def scope_devices(session: Session, scope: Scope, choice: Choice) -> list[ScopeDevice]:
    """The devices of the chosen scope (a house, a community with its PV parks, or the whole scope)."""
    d = Device
    rows = session.execute(
        select(d.id, d.serial, d.name, d.house_id, d.pv_park_id, d.kind, d.direction)
        .where(_device_filter(scope, choice))
        .order_by(d.id)
    ).all()
    return [ScopeDevice(DeviceInfo(i, serial, h, p, kind, direction), name) for i, serial, name, h, p, kind,
            direction in rows]  # fmt: skip


def _bucket(session: Session, column, step: timedelta):
    seconds = int(step.total_seconds())
    if session.get_bind().dialect.name == "postgresql":
        return func.date_bin(
            literal_column(f"interval '{seconds} seconds'"), column, literal_column("TIMESTAMP '2000-01-01'")
        )
    n = literal_column(str(seconds), Integer)  # SQLite: integer division floors to the bucket
    return func.datetime((cast(func.strftime("%s", column), Integer) // n) * n, "unixepoch")


def _as_datetime(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def power_buckets(
    session: Session, devices: list[ScopeDevice], start: datetime, end: datetime, step: timedelta
) -> list[tuple[datetime, float | None, float | None]]:
    """(bucket start, consumption W, production W) per bucket in [start, end) with at least one reading:
    each device's mean power in the bucket, summed per direction (None: no device of it reported)."""
    roles = {dev.id: dev.info.house_role() for dev in devices if dev.info.house_role()}
    if not roles:
        return []
    m = Measurement
    per_device = (
        select(m.device_id, _bucket(session, m.ts, step).label("bucket"), func.avg(m.power_w).label("mean_w"))
        .where(m.device_id.in_(sorted(roles)), m.ts >= start, m.ts < end)
        .group_by(m.device_id, literal_column("bucket"))
        .subquery()
    )
    producing = per_device.c.device_id.in_(sorted(i for i, role in roles.items() if role == "production"))
    rows = session.execute(
        select(
            per_device.c.bucket,
            func.sum(case((producing, None), else_=per_device.c.mean_w)),
            func.sum(case((producing, per_device.c.mean_w), else_=None)),
        )
        .group_by(per_device.c.bucket)
        .order_by(per_device.c.bucket)
    ).all()
    return [(_as_datetime(bucket), cons, prod) for bucket, cons, prod in rows]


def mean_power(
    session: Session, devices: list[ScopeDevice], start: datetime, end: datetime
) -> tuple[float | None, float | None, int]:
    """(consumption W, production W, devices that reported) over [start, end): each device's mean power,
    summed per direction with the rollups' rule. None for a direction no device of which reported."""
    roles = {dev.id: dev.info.house_role() for dev in devices if dev.info.house_role()}
    if not roles:
        return None, None, 0
    m = Measurement
    rows = session.execute(
        select(m.device_id, func.avg(m.power_w))
        .where(m.device_id.in_(sorted(roles)), m.ts >= start, m.ts < end)
        .group_by(m.device_id)
    ).all()
    sums: dict[str, float] = {}
    for device_id, mean_w in rows:
        sums[roles[device_id]] = sums.get(roles[device_id], 0.0) + mean_w
    return sums.get("consumption"), sums.get("production"), len(rows)


def latest_readings(session: Session, devices: list[ScopeDevice]) -> dict[int, datetime | None]:
    """Each device's latest reading time: one backward index probe per device on (device_id, ts)."""
    if not devices:
        return {}
    m = Measurement
    latest = select(func.max(m.ts)).where(m.device_id == Device.id).correlate(Device).scalar_subquery()
    rows = session.execute(select(Device.id, latest).where(Device.id.in_([dev.id for dev in devices])))
    return {device_id: (_as_datetime(ts) if ts is not None else None) for device_id, ts in rows}


def meter_quality(
    session: Session, devices: list[ScopeDevice], latest: dict[int, datetime | None], now: datetime
) -> tuple[float | None, float | None, int]:
    """Mean voltage and power factor over the meters' latest readings of the last 15 minutes, and how
    many meters that covers."""
    pairs = [
        (dev.id, latest[dev.id])
        for dev in devices
        if dev.info.kind == "meter"
        and latest.get(dev.id) is not None
        and latest[dev.id] >= now - SILENT_DEVICE
    ]
    if not pairs:
        return None, None, 0
    m = Measurement
    voltage, pf = session.execute(
        select(func.avg(m.voltage_v), func.avg(m.power_factor)).where(tuple_(m.device_id, m.ts).in_(pairs))
    ).one()
    return voltage, pf, len(pairs)


def device_places(session: Session, devices: list[ScopeDevice]) -> dict[int, str]:
    """Where each device is: its house's or PV park's name."""
    houses = {dev.info.house_id for dev in devices if dev.info.house_id is not None}
    parks = {dev.info.pv_park_id for dev in devices if dev.info.pv_park_id is not None}
    names = {}
    if houses:
        names |= {
            ("h", i): n for i, n in session.execute(select(House.id, House.name).where(House.id.in_(houses)))
        }
    if parks:
        names |= {
            ("p", i): n
            for i, n in session.execute(select(PVPark.id, PVPark.name).where(PVPark.id.in_(parks)))
        }
    out = {}
    for dev in devices:
        key = ("h", dev.info.house_id) if dev.info.house_id is not None else ("p", dev.info.pv_park_id)
        out[dev.id] = names.get(key, "")
    return out


# ---- figure and patches --------------------------------------------------------------------------------


def kw(watts: float | None) -> float | None:
    return None if watts is None else round(watts / 1000.0, 3)


def entries(rows, step: timedelta, previous: datetime | None = None) -> list[tuple]:
    """Points to draw: (bucket or None for a gap marker, x time, consumption kW, production kW); a gap
    marker (None values) goes wherever consecutive buckets are more than one bucket apart."""
    out = []
    for bucket, cons, prod in rows:
        if previous is not None and bucket - previous > step * 1.5:
            out.append((None, previous + (bucket - previous) / 2, None, None))
        out.append((bucket, bucket, kw(cons), kw(prod)))
        previous = bucket
    return out


def x_label(ts: datetime, timezone: str) -> str:
    return to_local(ts, timezone).strftime(X_FORMAT)


def window_bounds(now: datetime, window_key: str) -> tuple[datetime, datetime, timedelta]:
    """[start, query end) of the rolling window and its bucket width."""
    window, step = WINDOWS[window_key]
    return floor_to(now - window, step), now + FUTURE_TOLERANCE, step


def x_range(start: datetime, now: datetime, step: timedelta, timezone: str) -> list[str]:
    """The rolling x range, half a bucket of margin before the first one so its point is not cut."""
    return [x_label(start - step / 2, timezone), x_label(now + step, timezone)]


def full_figure(points: list[tuple], title: str, x_span: list[str], timezone: str) -> go.Figure:
    xs = [x_label(p[1], timezone) for p in points]
    fig = go.Figure()
    for index, (name, colour) in enumerate(TRACES):
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[p[2 + index] for p in points],
                name=name,
                mode="lines+markers",
                line={"color": colour, "width": 2},
                marker={"size": 5, "color": colour},
                connectgaps=False,
                hovertemplate="%{y:.3f} kW",
            )
        )
    base_layout(fig, title=title, y_title="Power (kW)", height=380)
    fig.update_layout(
        xaxis={"range": x_span, "title": f"Local time ({timezone})"}, yaxis={"rangemode": "tozero"}
    )
    if not points:
        fig.update_layout(
            annotations=[
                {
                    "text": "No readings in this window yet",
                    "showarrow": False,
                    "xref": "paper",
                    "yref": "paper",
                    "x": 0.5,
                    "y": 0.5,
                }  # fmt: skip
            ]
        )
    return fig


def new_state(choice, window_key: str, times: list[datetime | None], now: datetime, step: timedelta) -> dict:
    last = times[-1] if times else None
    return {
        "choice": choice,
        "window": window_key,
        "times": [t.isoformat() if t is not None else None for t in times],
        "partial": last is not None and last + step + SETTLE > now,
    }


def read_state(state, choice, window_key: str, start: datetime) -> list[datetime | None] | None:
    """The buckets the browser holds, or None when it must redraw (other scope or window, a state that
    is not ours, or a browser that slept longer than the window)."""
    if not isinstance(state, dict) or state.get("choice") != choice or state.get("window") != window_key:
        return None
    raw = state.get("times")
    if not isinstance(raw, list) or len(raw) > MAX_STATE_POINTS:
        return None
    try:
        times = [None if t is None else datetime.fromisoformat(str(t)) for t in raw]
    except ValueError:
        return None
    real = [t for t in times if t is not None]
    if real and real[-1] < start:
        return None
    return times


def tick_patch(
    session: Session,
    devices: list[ScopeDevice],
    times: list[datetime | None],
    partial: bool,
    now: datetime,
    window_key: str,
    timezone: str,
) -> tuple[Patch, list[datetime | None]]:
    """Only the change since what the browser has: re-send its last bucket if it was still filling,
    drop points older than the window, append the new buckets."""
    start, end, step = window_bounds(now, window_key)
    times = list(times)
    last_drawn = next((t for t in reversed(times) if t is not None), None)
    patch = Patch()

    def delete(index: int) -> None:
        for trace in range(len(TRACES)):
            del patch["data"][trace]["x"][index]
            del patch["data"][trace]["y"][index]

    if partial and times:  # the browser's last bucket was still filling: it is sent again
        delete(-1)
        times.pop()
    while times and (times[0] is None or times[0] < start):
        delete(0)
        times.pop(0)
    previous = next((t for t in reversed(times) if t is not None), None)
    since = max(start, last_drawn) if last_drawn is not None else start
    rows = [
        r for r in power_buckets(session, devices, since, end, step) if previous is None or r[0] > previous
    ]
    ends_with_gap = bool(times) and times[-1] is None  # the gap marker before a re-sent bucket stays
    points = entries(rows, step, None if ends_with_gap else previous)
    if points:
        xs = [x_label(p[1], timezone) for p in points]
        for index in range(len(TRACES)):
            patch["data"][index]["x"].extend(xs)
            patch["data"][index]["y"].extend([p[2 + index] for p in points])
        patch["layout"]["annotations"] = []
    patch["layout"]["xaxis"]["range"] = x_range(start, now, step, timezone)
    return patch, times + [p[0] for p in points]


# ---- status ----------------------------------------------------------------------------------------------


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172_800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86_400} days ago"


def local_time(ts: datetime, timezone: str, now: datetime) -> str:
    local = to_local(ts, timezone)
    return local.strftime("%H:%M:%S" if local.date() == to_local(now, timezone).date() else X_FORMAT)


def silent_table(silent: list[tuple[ScopeDevice, datetime | None]], places: dict[int, str], timezone: str,
                 now: datetime):  # fmt: skip
    if not silent:
        return html.P(
            "Every device of this scope reported in the last 15 minutes.",
            className="text-success",
            id="realtime-silent-none",
        )
    shown = silent[:MAX_SILENT_ROWS]
    body = [
        html.Tr(
            [
                html.Td(dev.info.serial),
                html.Td(dev.name),
                html.Td(places.get(dev.id, "")),
                html.Td(dev.info.kind),
                html.Td(
                    "never"
                    if ts is None
                    else f"{local_time(ts, timezone, now)} ({ago((now - ts).total_seconds())})"
                ),
            ]
        )
        for dev, ts in shown
    ]
    header = html.Thead(html.Tr([html.Th(h) for h in ("Device", "Name", "Where", "Kind", "Last reading")]))
    more = (
        [html.P(f"... and {len(silent) - len(shown)} more.", className="text-muted")]
        if len(silent) > len(shown)
        else []
    )
    return html.Div(
        [
            html.H6(f"{len(silent)} silent device(s): no reading for 15 minutes", className="text-warning"),
            dbc.Table(
                [header, html.Tbody(body)],
                size="sm",
                striped=True,
                bordered=False,
                id="realtime-silent-table",
            ),
            *more,
        ]
    )


def scope_status(session: Session, scope: Scope, choice: Choice, now: datetime, timezone: str) -> dict:
    devices = scope_devices(session, scope, choice)
    latest = latest_readings(session, devices)
    voltage, pf, meters = meter_quality(session, devices, latest, now)
    last = max((ts for ts in latest.values() if ts is not None), default=None)
    silent = [
        (dev, latest.get(dev.id))
        for dev in devices
        if latest.get(dev.id) is None or latest[dev.id] < now - SILENT_DEVICE
    ]
    silent.sort(key=lambda item: (item[1] is not None, item[1] or now, item[0].info.serial))
    places = device_places(session, [dev for dev, _ts in silent[:MAX_SILENT_ROWS]])
    return {"devices": devices, "latest": latest, "voltage": voltage, "pf": pf, "meters": meters, "last": last,
            "silent": silent, "places": places}  # fmt: skip


# ---- callbacks -------------------------------------------------------------------------------------------


def register_callbacks(app) -> None:
    @app.callback(
        Output("realtime-graph", "figure"),
        Output("realtime-state", "data"),
        Output("realtime-message", "children"),
        Output("realtime-message", "is_open"),
        Input("realtime-scope", "value"),
        Input("realtime-window", "value"),
        Input("realtime-interval", "n_intervals"),
        State("realtime-state", "data"),
    )
    def update_chart(choice, window_key, _n, state):
        """Full figure on the first call and on a scope or window change; a Patch on every tick."""
        scope = ui_scope()
        if scope is None:  # the request guard already refused anonymous calls; belt and braces
            return empty_figure("Please log in."), None, "Please log in.", True
        window_key = window_key if window_key in WINDOWS else DEFAULT_WINDOW
        session = db()
        try:
            picked = resolve_choice(session, scope, choice)
            devices = scope_devices(session, scope, picked)
        except DomainError as exc:
            return empty_figure("No data."), None, error_text(exc), True
        timezone = services().settings.timezone
        now = utcnow()
        start, end, step = window_bounds(now, window_key)
        if ctx.triggered_id == "realtime-interval":
            times = read_state(state, choice, window_key, start)
            if times is not None:
                patch, times = tick_patch(
                    session, devices, times, bool(state.get("partial")), now, window_key, timezone
                )
                return patch, new_state(choice, window_key, times, now, step), "", False
        points = entries(power_buckets(session, devices, start, end, step), step)
        title = f"{picked.label}: power, {WINDOWS[window_key][0].seconds // 60} min"
        fig = full_figure(points, title, x_range(start, now, step, timezone), timezone)
        return fig, new_state(choice, window_key, [p[0] for p in points], now, step), "", False

    @app.callback(
        Output("realtime-voltage", "children"),
        Output("realtime-pf", "children"),
        Output("realtime-last-reading", "children"),
        Output("realtime-silent", "children"),
        Output("realtime-silent", "is_open"),
        Output("realtime-silent-devices", "children"),
        Input("realtime-scope", "value"),
        Input("realtime-interval", "n_intervals"),
    )
    def update_status(choice, _n):
        scope = ui_scope()
        if scope is None:
            return "-", "-", "Please log in.", "", False, ""
        session = db()
        try:
            picked = resolve_choice(session, scope, choice)
        except DomainError as exc:
            return "-", "-", error_text(exc), "", False, ""
        timezone = services().settings.timezone
        now = utcnow()
        status = scope_status(session, scope, picked, now, timezone)
        voltage = "-" if status["voltage"] is None else f"{status['voltage']:.1f}"
        pf = "-" if status["pf"] is None else f"{status['pf']:.3f}"
        last = status["last"]
        if last is None:
            last_text = "Last reading: none yet"
            alert, open_ = "No reading from this scope's devices yet.", True
        else:
            age = (now - last).total_seconds()
            last_text = f"Last reading: {local_time(last, timezone, now)} ({ago(age)})"
            if age > SILENT_ALERT.total_seconds():
                alert = (
                    f"No reading for {ago(age).removesuffix(' ago')}: the last one arrived at "
                    f"{local_time(last, timezone, now)}. The devices of this scope (or their gateway) "
                    "may have gone silent."
                )
                open_ = True
            else:
                alert, open_ = "", False
        table = silent_table(status["silent"], status["places"], timezone, now)
        return voltage, pf, last_text, alert, open_, table
