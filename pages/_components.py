"""Layout pieces the pages share: a page's header (title, intro, its URL state), a labelled field, the scope dropdown, a stat card, a chart card and the
blank chart that says why it is blank (callbacks draw it too).

(The leading underscore keeps Dash's page registry from taking this module for a page.)
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from pages._urlstate import url_location, url_notice

GRAPH_CONFIG = {"displaylogo": False}


def page_header(title: str, intro, prefix: str, path: str, state: dict, fields, notices: list[str]) -> list:
    """A page's opening: its title, an optional intro (text or components, muted), its own Location
    holding its state (pages/_urlstate.py) and the notice of what of a link was not used."""
    head = [html.H2(title)]
    if intro:
        head.append(html.P(intro, className="text-muted"))
    return [*head, url_location(prefix, path, state, fields), url_notice(prefix, notices)]


def field(label: str, control, md: int, strong: bool = False) -> dbc.Col:
    """A label over its control, in a grid column `md` wide."""
    target = getattr(control, "id", None)
    label_props = {"html_for": target} if isinstance(target, str) else {}
    return dbc.Col(
        [dbc.Label(label, className="fw-semibold" if strong else None, **label_props), control], md=md
    )


def scope_dropdown(component_id: str, options: list[dict], value: str) -> dcc.Dropdown:
    """The scope choice: options built on the server from the caller's scope (dashboard/choices.py)."""
    return dcc.Dropdown(id=component_id, options=options, value=value, clearable=False)


def stat_card(
    title: str, value_id: str, unit: str | None = None, hint: str | None = None, md: int = 3
) -> dbc.Col:
    """A title over one number (the element `value_id` holds the number only), a unit and a hint.
    Without a unit (None) the number is large; with one (even "") it is a line with the unit after it."""
    body = [html.H6(title, className="text-muted mb-1")]
    if unit is not None:
        body.append(html.H4([html.Span("-", id=value_id), html.Small(f" {unit}", className="text-muted")]))
    else:
        body.append(html.H3("-", id=value_id, className="mb-0"))
    if hint:
        body.append(html.Small(hint, className="text-muted"))
    return dbc.Col(dbc.Card(dbc.CardBody(body), className="h-100"), md=md)


def chart_card(graph: dcc.Graph, title: str | None = None, below=None, className: str = "") -> dbc.Card:
    """A chart in a card, with an optional title above and content below."""
    children = [html.H5(title, className="card-title")] if title else []
    children.append(graph)
    if below is not None:
        children.append(below)
    return dbc.Card(dbc.CardBody(children), className=className)


# auto-refresh choice (Real-Time, Overview): value -> milliseconds (None: paused); kept in the URL
REFRESH_CHOICES = {"off": None, "5s": 5_000, "30s": 30_000, "1m": 60_000}
REFRESH_LABELS = {"off": "Paused", "5s": "5 s", "30s": "30 s", "1m": "1 min"}


def refresh_picker(component_id: str, value: str) -> dbc.RadioItems:
    """How often the page refreshes itself, or paused; the interval follows it (callbacks/common.py)."""
    return dbc.RadioItems(
        id=component_id,
        options=[{"label": REFRESH_LABELS[key], "value": key} for key in REFRESH_CHOICES],
        value=value,
        inline=True,
    )
