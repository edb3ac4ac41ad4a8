"""Anomalies and voltage events marked on a time chart: a shaded span per event and a marker at its start
whose hover names it. Computed on the server by the analytics service (dashboard/analytics.py) for the
shown range and only for the houses of the caller's scope (the service checks the scope again).

Kept cheap: nothing for a range over MAX_DAYS days or a choice of more than MAX_HOUSES houses (the
Analytics page scans those in the background); the caption says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from dashboard import analytics
from dashboard.choices import Choice
from dashboard.clock import to_local
from dashboard.policy import allowed
from dashboard.schema import House, community_houses
from dashboard.scope import Scope

MAX_DAYS = 31
MAX_HOUSES = 5
MAX_MARKS = 200  # spans drawn at most (the first by start); the caption says when more were found
ANOMALY_COLOUR = "rgba(214, 39, 40, 0.18)"
VOLTAGE_COLOUR = "rgba(148, 103, 189, 0.22)"
KIND_NAMES = {
    "consumption_spike": "Consumption spike",
    "night_load": "Night load",
    "stuck_meter": "Stuck meter",
    "sag": "Voltage sag",
    "swell": "Voltage swell",
    "interruption": "Supply interruption",
}


def marked_houses(session, scope: Scope, choice: Choice) -> list[int]:
    """The houses of the choice that the scope may see."""
    if choice.house_id is not None:
        return [choice.house_id] if scope.can_see_house(choice.house_id) else []
    stmt = select(House.id).order_by(House.id)
    if choice.community_id is not None:
        stmt = stmt.join(community_houses).where(community_houses.c.community_id == choice.community_id)
    if not scope.all_houses:
        stmt = stmt.where(House.id.in_(sorted(scope.house_ids)))
    return list(session.scalars(stmt))


def find_events(session, scope: Scope, choice: Choice, start: datetime, end: datetime, timezone: str):
    """(events [{house_id, kind, start, end, text}], note) for [start, end) in naive UTC; note explains
    what is not marked, or is empty."""
    if end <= start or not allowed("analytics:read", scope.role) or not scope.per_house_allowed:
        return [], ""
    if end - start > timedelta(days=MAX_DAYS):
        return [], f"Anomalies and voltage events are marked for ranges up to {MAX_DAYS} days."
    houses = marked_houses(session, scope, choice)
    if not houses:
        return [], ""
    if len(houses) > MAX_HOUSES:
        return [], f"Choose a house (or up to {MAX_HOUSES}) to see its anomalies and voltage events."
    found = analytics.anomalies(session, scope, start, end, timezone=timezone, houses=houses)
    volts = analytics.voltage_events(session, scope, start, end, houses=houses)["events"]
    for v in volts:
        v["detail"] = f"{v['min_voltage_v']:.0f}-{v['max_voltage_v']:.0f} V, {v['duration_s'] / 60:.0f} min"
    events = sorted(found + volts, key=lambda e: (e["start"], e["house_id"]))
    for e in events:
        e["text"] = (
            f"{KIND_NAMES.get(e['kind'], e['kind'])}, house #{e['house_id']}: "
            f"{to_local(e['start'], timezone):%Y-%m-%d %H:%M} - {to_local(e['end'], timezone):%H:%M}"
            + (f" ({e['detail']})" if e.get("detail") else "")
        )
    note = f"Showing the first {MAX_MARKS} of {len(events)} events." if len(events) > MAX_MARKS else ""
    return events[:MAX_MARKS], note


def add_event_marks(figure: dict, events: list[dict], timezone: str) -> None:
    """Shade each event's span on a plain figure dict and add one marker trace per family (anomalies,
    voltage events) at the events' starts, at the bottom of the plot, whose hover names the event."""
    shapes = figure["layout"].setdefault("shapes", [])
    families: dict[str, tuple[list, list]] = {}
    for e in events:
        voltage = e["kind"] in ("sag", "swell", "interruption")
        x0, x1 = to_local(e["start"], timezone).isoformat(), to_local(e["end"], timezone).isoformat()
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": x0, "x1": x1, "y0": 0, "y1": 1,
                       "fillcolor": VOLTAGE_COLOUR if voltage else ANOMALY_COLOUR, "line": {"width": 0},
                       "layer": "below"})  # fmt: skip
        xs, texts = families.setdefault("Voltage event" if voltage else "Anomaly", ([], []))
        xs.append(x0)
        texts.append(e["text"])
    for name, (xs, texts) in families.items():
        figure["data"].append(
            {"type": "scatter", "mode": "markers", "name": name, "x": xs, "y": [0] * len(xs), "text": texts,
             "hovertemplate": "%{text}<extra></extra>", "showlegend": False,
             "marker": {"symbol": "triangle-up", "size": 10,
                        "color": "#9467bd" if name == "Voltage event" else "#d62728"}}
        )  # fmt: skip
