"""The Analytics page's figures and tables, from what the analytics service answered.

Pure presentation: each function takes the service's rows (and the house names) and returns Plotly
figures, tables or a card's outputs; the callbacks (callbacks/analytics.py) fetch and check.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta
from typing import Protocol

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import html

from callbacks.common import message
from callbacks.common import table as common_table
from dashboard.choices import natural_key
from dashboard.clock import local_text, to_local, utcnow
from pages._charts import (
    CONSUMPTION,
    STEPS,
    base_layout,
    chart,
    empty_figure,
    mark_partial_line,
    vrect,
    with_gaps,
)

MAX_TABLE_ROWS = 500  # rows shown in a table (the count above it is always the full one)
MAX_TIMELINE_EVENTS = 1_500  # 3 points per event: no timeline trace beyond 5,000 points
LOW_PF = 0.9
ANOMALY_KINDS = {
    "consumption_spike": ("Consumption spike", "#d62728"),
    "night_load": ("Night load", "#9467bd"),
    "stuck_meter": ("Stuck meter", "#8c564b"),
}
VOLTAGE_KINDS = {
    "sag": ("Sag", "#ff7f0e"),
    "swell": ("Swell", "#d62728"),
    "interruption": ("Interruption", "#343a40"),
}
PF_LINE, PF_BARS = "#1f77b4", "rgba(214, 39, 40, 0.45)"
WEEKDAY, WEEKEND = "#1f77b4", "#ff7f0e"
NO_MESSAGE = ("", "info", False)


class Window(Protocol):
    """What a card shows: the choice's label, naive-UTC bounds [start, end) and the local days' zone."""

    label: str
    start: datetime
    end: datetime
    timezone: str


def table(header: list[str], rows: list[list], table_id: str) -> dbc.Table:
    """The first MAX_TABLE_ROWS rows."""
    return common_table(header, rows[:MAX_TABLE_ROWS], table_id, empty=None, className="mt-2")


def shown_note(total: int) -> str:
    return f" Showing the first {MAX_TABLE_ROWS}." if total > MAX_TABLE_ROWS else ""


def local_window(req: Window) -> list[datetime]:
    """The chosen local days as an x-axis range (local wall-clock time)."""
    return [to_local(req.start, req.timezone), to_local(req.end, req.timezone)]


# ---- anomalies ------------------------------------------------------------------------------------------


def anomaly_score_text(event: dict) -> str:
    score = event["score"]
    if event["kind"] == "stuck_meter":
        return f"{score:.2f} h stuck"
    return "no usual load" if score == float("inf") else f"{score:.2f} x usual"


def anomaly_detail_text(event: dict) -> str:
    d = event["detail"] or {}
    if event["kind"] == "stuck_meter":
        return f"meter repeated {d.get('value_kw', 0):.3f} kW for {d.get('hours', 0):g} h"
    return (
        f"unexplained {d.get('mean_unexplained_kw', 0):.2f} kW on average (usual "
        f"{d.get('usual_kw', 0):.2f} kW), meter peak {d.get('peak_meter_kw', 0):.2f} kW"
    )


def anomaly_rows(events: list[dict], names: dict[int, str], timezone: str) -> list[list[str]]:
    return [
        [
            names.get(e["house_id"], f"#{e['house_id']}"),
            ANOMALY_KINDS.get(e["kind"], (e["kind"], ""))[0],
            local_text(e["start"], timezone),
            local_text(e["end"], timezone),
            anomaly_score_text(e),
            anomaly_detail_text(e),
        ]
        for e in events
    ]


def anomaly_counts(events: list[dict]) -> list:
    counts = Counter(e["kind"] for e in events)
    badges = [
        dbc.Badge(
            f"{label}: {counts.get(kind, 0)}", color="light", text_color="dark", className="me-2 border"
        )
        for kind, (label, _colour) in ANOMALY_KINDS.items()
    ]
    return [
        html.Strong(f"{len(events)} anomal{'y' if len(events) == 1 else 'ies'}: ", className="me-2")
    ] + badges


def consumption_figure(
    req: Window, resolution: str, series: list[dict], events: list[dict], now: datetime | None = None
) -> dict:
    """One house's consumption (kW, from its `resolution` rollups) with each anomaly shaded and marked at
    its peak; the unfinished last bucket is a dashed segment, "so far"."""
    if not series:
        return empty_figure("No consumption readings in this range.")
    hours = STEPS[resolution] / timedelta(hours=1)
    utc_times = [datetime.fromisoformat(p["timestamp"][:-1]) for p in series]
    kw = [round(p["consumption_kwh"] / hours, 4) for p in series]
    now, last = now or utcnow(), utc_times[-1]
    partial = last <= now < last + STEPS[resolution]  # the last bucket is still filling: its mean kW so far
    if partial:
        kw[-1] = round(series[-1]["consumption_kwh"] / max((now - last) / timedelta(hours=1), 1 / 60), 4)
    times, values = with_gaps(utc_times, kw, STEPS[resolution])
    # ISO text, not datetimes: plotly validates and encodes a datetime per point (docs/benchmarks.md)
    local = [to_local(t, req.timezone).isoformat() if t is not None else None for t in times]
    line = {"type": "scatter", "x": local, "y": values, "mode": "lines", "name": "Consumption (kW)",
            "line": {"color": CONSUMPTION}}  # fmt: skip
    so_far = mark_partial_line(line, len(values) - 1 if partial else None)
    data, shapes = [line, so_far] if so_far else [line], []
    marks: dict[str, tuple[list, list, list]] = {}
    for e in events:
        label, colour = ANOMALY_KINDS.get(e["kind"], (e["kind"], "#d62728"))
        lo = datetime.fromisoformat(e["start"][:-1])
        hi = datetime.fromisoformat(e["end"][:-1])
        shapes.append(vrect(to_local(lo, req.timezone), to_local(hi, req.timezone), colour))
        inside = [(t, v) for t, v in zip(utc_times, kw, strict=True) if lo <= t < hi]
        at, peak = max(inside, key=lambda p: p[1]) if inside else (lo, None)
        xs, ys, texts = marks.setdefault(e["kind"], ([], [], []))
        xs.append(to_local(at, req.timezone))
        ys.append(peak if peak is not None else max(kw))
        texts.append(
            f"{label}: {local_text(e['start'], req.timezone)} - {local_text(e['end'], req.timezone)}"
        )
    for kind, (xs, ys, texts) in marks.items():
        label, colour = ANOMALY_KINDS.get(kind, (kind, "#d62728"))
        data.append({"type": "scatter", "x": xs, "y": ys, "mode": "markers", "name": f"Anomaly: {label}",
                     "text": texts, "hoverinfo": "text",
                     "marker": {"color": colour, "size": 11, "symbol": "x", "line": {"width": 1}}})  # fmt: skip
    title = f"{req.label}: consumption and anomalies ({resolution} rollups, local time)"
    layout = {"xaxis": {"range": local_window(req)}} | ({"shapes": shapes} if shapes else {})
    return chart(data, title, "kW", **layout)


def anomaly_count_figure(events: list[dict], names: dict[int, str]) -> go.Figure:
    """All houses: anomalies per house, stacked by kind."""
    houses = sorted({e["house_id"] for e in events}, key=lambda h: (natural_key(names.get(h)), h))
    fig = go.Figure()
    for kind, (label, colour) in ANOMALY_KINDS.items():
        counts = Counter(e["house_id"] for e in events if e["kind"] == kind)
        if counts:
            fig.add_trace(
                go.Bar(
                    x=[names.get(h, f"#{h}") for h in houses],
                    y=[counts.get(h, 0) for h in houses],
                    name=label,
                    marker={"color": colour},
                    customdata=[str(h) for h in houses],  # a click opens the house (callbacks/analytics.py)
                )
            )
    fig.update_layout(barmode="stack")
    return base_layout(fig, "Anomalies per house, by kind", "count")


def anomaly_card(req: Window, events: list[dict], names: dict[int, str], figure: go.Figure) -> tuple:
    """Message (3), figure, counts and table of the anomaly card."""
    if not events:
        return (*message(f"No anomalies found for {req.label} in this range."), figure, [], [])
    rows = anomaly_rows(events, names, req.timezone)
    header = ["House", "Kind", "Start (local)", "End (local)", "Score", "Detail"]
    note = shown_note(len(events))
    alert = message(note.strip(), "warning") if note else NO_MESSAGE
    return (*alert, figure, anomaly_counts(events), table(header, rows, "analytics-anomaly-rows"))


# ---- voltage events ---------------------------------------------------------------------------------------


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def voltage_rows(summary: list[dict], names: dict[int, str]) -> list[list]:
    """One row per house: count and total minutes of sags, swells and interruptions."""
    per_house: dict[int, dict[str, dict]] = {}
    for s in summary:
        per_house.setdefault(s["house_id"], {})[s["kind"]] = s
    rows = []
    for house_id in sorted(per_house, key=lambda h: (natural_key(names.get(h)), h)):
        row = [names.get(house_id, f"#{house_id}")]
        for kind in VOLTAGE_KINDS:
            s = per_house[house_id].get(kind, {"count": 0, "total_duration_s": 0.0})
            row += [s["count"], minutes(s["total_duration_s"])]
        rows.append(row)
    return rows


def voltage_timeline(result: dict, names: dict[int, str], req: Window) -> go.Figure:
    """Each event as a bar from its start to its end on its house's row, coloured by kind."""
    timezone = req.timezone
    events = result["events"][:MAX_TIMELINE_EVENTS]
    fig = go.Figure()
    for kind, (label, colour) in VOLTAGE_KINDS.items():
        xs: list = []
        ys: list = []
        texts: list = []
        for e in events:
            if e["kind"] != kind:
                continue
            house = names.get(e["house_id"], f"#{e['house_id']}")
            text = (
                f"{house}: {label.lower()} at {local_text(e['start'], timezone)}, {e['duration_s']:.0f} s, "
                f"{e['min_voltage_v']:.1f}-{e['max_voltage_v']:.1f} V ({e['device']})"
            )
            xs += [to_local(e["start"], timezone), to_local(e["end"], timezone), None]
            ys += [house, house, None]
            texts += [text, text, None]
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines+markers",
                    name=label,
                    text=texts,
                    hoverinfo="text",
                    line={"color": colour, "width": 12},
                    marker={"color": colour, "size": 8},
                )
            )
    houses = sorted({names.get(e["house_id"], f"#{e['house_id']}") for e in events}, key=natural_key)
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=houses)
    fig.update_xaxes(type="date", range=local_window(req))
    height = max(260, 60 + 40 * len(houses))
    base_layout(fig, "Voltage events by house (local time)", None, height=height)
    fig.update_layout(hovermode="closest", showlegend=True)  # the kind, even when only one occurs
    return fig


def voltage_card(req: Window, result: dict, names: dict[int, str]) -> tuple:
    """Message (3), timeline and table of the voltage card, for a result with readings."""
    t = result["thresholds_v"]
    header = ["House"]
    for label, _colour in VOLTAGE_KINDS.values():
        header += [f"{label} count", f"{label} total (min)"]
    rows = voltage_rows(result["summary"], names)
    limits = (
        f"EN 50160, Un {result['nominal_v']:g} V: sag below {t['sag_below']:g} V, swell above "
        f"{t['swell_above']:g} V, interruption at or below {t['interruption_at_or_below']:g} V. "
        f"{len(result['events'])} event(s)."
    )
    if result["events"]:
        figure = voltage_timeline(result, names, req)
        extra = ""
        if len(result["events"]) > MAX_TIMELINE_EVENTS:
            extra = f" The timeline shows the first {MAX_TIMELINE_EVENTS}."
        alert = message(limits + extra + shown_note(len(rows)), "light")
    else:
        figure = empty_figure("No voltage events in this range.")
        alert = message(f"No voltage events for {req.label} in this range. " + limits, "info")
    return (*alert, figure, table(header, rows, "analytics-voltage-rows"))


# ---- power factor -------------------------------------------------------------------------------------------


def pf_by_day(days: list[dict]) -> list[dict]:
    """Per local day over the houses given: time-weighted mean power factor and share below 0.9 (the
    service's per-house figures weighted by each house's hours of readings)."""
    acc: dict[str, list[float]] = {}
    for d in days:
        hours = d["hours"]
        a = acc.setdefault(d["day"], [0.0, 0.0, 0.0, 0.0, 0])
        a[0] += hours
        a[1] += d["mean_power_factor"] * hours
        a[2] += (d["share_below_0_9"] or 0.0) * hours
        a[3] += d["mean_power_factor"]
        a[4] += 1
    out = []
    for day in sorted(acc):
        w, w_pf, w_low, pf_sum, n = acc[day]
        out.append(
            {
                "day": day,
                "mean_power_factor": round(w_pf / w, 4) if w > 0 else round(pf_sum / n, 4),
                "share_below_0_9": round(w_low / w, 4) if w > 0 else None,
                "hours": round(w, 3),
            }
        )
    return out


def pf_figure(daily: list[dict], label: str) -> go.Figure:
    days = [d["day"] for d in daily]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=days,
            y=[None if d["share_below_0_9"] is None else round(100 * d["share_below_0_9"], 2) for d in daily],
            name="Time below 0.9 (%)",
            marker={"color": PF_BARS},
            yaxis="y2",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=days,
            y=[d["mean_power_factor"] for d in daily],
            mode="lines+markers",
            name="Daily mean power factor",
            line={"color": PF_LINE},
        )
    )
    base_layout(fig, f"{label}: power factor per local day", "power factor")
    lowest = min(d["mean_power_factor"] for d in daily)
    bottom = max(0.0, min(0.8, math.floor((lowest - 0.05) * 10) / 10))  # room below the 0.9 line
    fig.update_layout(
        yaxis={"range": [bottom, 1.01]},
        yaxis2={
            "title": "% of time below 0.9",
            "overlaying": "y",
            "side": "right",
            "range": [0, 100],
            "tickmode": "linear",
            "tick0": 0,
            "dtick": 20,
            "showgrid": False,
        },
        shapes=[
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": LOW_PF,
                "y1": LOW_PF,
                "line": {"color": "#6c757d", "dash": "dot", "width": 1},
            }
        ],
    )
    fig.update_xaxes(type="date", tickformat="%Y-%m-%d")
    return fig


def pf_house_rows(days: list[dict], names: dict[int, str]) -> list[list]:
    """Per house over the range: time-weighted mean, share below 0.9, hours; worst share first."""
    by_house: dict[int, list[dict]] = {}
    for d in days:
        by_house.setdefault(d["house_id"], []).append(d)
    rows = []
    for house_id, items in by_house.items():
        total = pf_by_day([d | {"day": "all"} for d in items])[0]
        rows.append((total, names.get(house_id, f"#{house_id}")))
    rows.sort(key=lambda r: (-(r[0]["share_below_0_9"] or 0.0), natural_key(r[1])))
    return [
        [
            name,
            f"{t['mean_power_factor']:.3f}",
            "-" if t["share_below_0_9"] is None else f"{100 * t['share_below_0_9']:.1f}",
            f"{t['hours']:.1f}",
        ]
        for t, name in rows
    ]


def pf_card(label: str, days: list[dict], names: dict[int, str]) -> tuple:
    """Message (3), chart and table of the power-factor card, for at least one day of readings."""
    total = pf_by_day([d | {"day": "all"} for d in days])[0]
    share = "-" if total["share_below_0_9"] is None else f"{100 * total['share_below_0_9']:.1f} %"
    summary = (
        f"Mean power factor over the range {total['mean_power_factor']:.3f}; "
        f"time below 0.9: {share} ({total['hours']:.1f} h of readings)."
    )
    rows = pf_house_rows(days, names)
    header = ["House", "Mean power factor", "Time below 0.9 (%)", "Hours of readings"]
    return (
        *message(summary + shown_note(len(rows)), "light"),
        pf_figure(pf_by_day(days), label),
        table(header, rows, "analytics-pf-rows"),
    )


# ---- load profile ---------------------------------------------------------------------------------------------


def profile_figure(profile: dict, label: str) -> go.Figure:
    fig = go.Figure()
    for key, name, colour in (("weekday", "Weekdays", WEEKDAY), ("weekend", "Weekends", WEEKEND)):
        slots = profile[key]
        if any(s["mean_kw"] is not None for s in slots):
            fig.add_trace(
                go.Scatter(
                    x=[s["slot"] for s in slots],
                    y=[s["mean_kw"] for s in slots],
                    mode="lines",
                    name=f"{name} ({profile['days'][key]} days)",
                    line={"color": colour},
                )
            )
    base_layout(fig, f"{label}: average daily profile (local time, 15-minute slots)", "mean kW")
    fig.update_xaxes(type="category", nticks=24, title="local time of day")
    return fig


def profile_stats(profile: dict, timezone: str) -> list:
    factor = "-" if profile["load_factor"] is None else f"{profile['load_factor']:.3f}"
    items = [
        ("Peak (15-min mean)", f"{profile['peak_kw']:.2f} kW", "analytics-profile-peak"),
        ("Peak at (local)", local_text(profile["peak_at"], timezone), "analytics-profile-peak-at"),
        ("Mean power", f"{profile['mean_kw']:.2f} kW", "analytics-profile-mean"),
        ("Load factor (mean / peak)", factor, "analytics-profile-load-factor"),
        ("Energy", f"{profile['energy_kwh']:.1f} kWh", "analytics-profile-energy"),
    ]
    return [
        dbc.Col(
            dbc.Card(dbc.CardBody([html.Div(title, className="text-muted small"), html.H5(value, id=vid)])),
            md=True,
        )
        for title, value, vid in items
    ]
