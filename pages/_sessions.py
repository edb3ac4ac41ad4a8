"""A user's login sessions as a list people read (My account, and the Admin page for another user): the
device in plain words, when it signed in and was last active, "This browser" marked, and an "End this
session" button for each other one. Data: dashboard/sessions.py user_sessions.

(The leading underscore keeps Dash's page registry from taking this module for a page.)
"""

from __future__ import annotations

from datetime import datetime

import dash_bootstrap_components as dbc
from dash import html

from dashboard.clock import local_text, utcnow


def ago(then: datetime, now: datetime) -> str:
    """'active now' within two minutes (activity is written once a minute), else '5 minutes ago' and so on."""
    minutes = int(max(0, (now - then).total_seconds()) // 60)
    if minutes < 2:
        return "active now"
    unit, size = next((u, n) for u, n in (("day", 1440), ("hour", 60), ("minute", 1)) if minutes >= n)
    count = minutes // size
    return f"last active {count} {unit}{'s' if count > 1 else ''} ago"


def session_list(rows, current_id: str | None, timezone: str, end_type: str):
    """The sessions as a list group, the viewer's current one first; each other one has an End button with
    the pattern id {"type": end_type, "index": session id}."""
    rows = sorted(rows, key=lambda row: row.id != current_id)  # stable: then the most recently active
    if not rows:
        return html.P("No active sessions.", className="text-muted mb-0")
    now = utcnow()
    items = []
    for row in rows:
        this = row.id == current_id
        title = [html.Strong(row.device)]
        if this:
            title.append(dbc.Badge("This browser", color="success", className="ms-2"))
        details = (
            f"Signed in {local_text(row.created_at, timezone)} ({timezone}), {ago(row.last_seen_at, now)}"
        )
        if row.network:
            details += f", from network {row.network}"
        end = (
            html.Span("Log out ends it", className="text-muted small")
            if this
            else dbc.Button(
                "End this session",
                id={"type": end_type, "index": row.id},
                color="outline-danger",
                size="sm",
                title=f"End the session of {row.device}",
            )
        )
        items.append(
            dbc.ListGroupItem(
                html.Div(
                    [html.Div([html.Div(title), html.Small(details, className="text-muted")]), end],
                    className="d-flex justify-content-between align-items-center gap-2 flex-wrap",
                ),
                className="session-row" + (" session-current" if this else ""),
            )
        )
    return dbc.ListGroup(items)
