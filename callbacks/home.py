"""Household page callbacks: the flow with its figures, the comparison table and the community totals.

The scope comes from the cookie (`ui_scope()`); the house the browser sends is only a choice, checked
against it (dashboard/choices.py), so a forged id gets "not in your scope" and no data."""

from __future__ import annotations

from dash import Input, Output, html

import pages.home as home_page
from callbacks.common import drawn_with_layout, error_text, sync_url, table
from dashboard.choices import resolve_choice
from dashboard.clock import local_text, utcnow
from dashboard.context import db, services
from dashboard.errors import DomainError
from dashboard.household import (
    COMPUTED,
    MEASURED,
    appliances,
    communities_totals,
    comparison,
    energy_flow,
    houses_in_scope,
)
from dashboard.household_periods import check_period, comparison_windows, period_window
from dashboard.ui_auth import ui_scope
from pages._charts import CONSUMPTION, NET, PRODUCTION, chart, empty_figure
from pages.home import (
    APPLIANCES_GRAPH,
    APPLIANCES_NOTE,
    CAPTION,
    COMMUNITIES,
    COMPARISON,
    FLOW_GRAPH,
    HOUSE,
    KPIS,
    MESSAGE,
    PERIOD,
)

EXPORT_ORANGE = "#ff7f0e"
OTHER_GREY = NET


def _houses(scope, choice) -> list[int]:
    picked = resolve_choice(db(), scope, choice)
    return houses_in_scope(db(), scope, picked.house_id)


def _num(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def flow_figure(flow: dict) -> dict:
    """Energy distribution as two stacked bars (plotly.js basic has no Sankey: app.py serves it to keep
    every page light): the home's consumption by source (solar, grid) and the PV by use (home, grid)."""
    if flow["consumption_kwh"] == 0 and flow["production_kwh"] == 0:
        return empty_figure("No readings in this period.", height=300)
    rows = ["Solar production", "Home consumption"]
    data = [
        {
            "type": "bar",
            "y": rows,
            "x": values,
            "name": name,
            "orientation": "h",
            "marker": {"color": colour},
            "texttemplate": "%{x:.1f}",
            "hovertemplate": "%{x:.2f} kWh",
        }  # fmt: skip
        for name, values, colour in (
            ("Solar → home", [flow["self_consumed_kwh"], flow["self_consumed_kwh"]], PRODUCTION),
            ("Grid → home", [None, flow["grid_import_kwh"]], CONSUMPTION),
            ("Solar → grid", [flow["grid_export_kwh"], None], EXPORT_ORANGE),
        )
    ]
    return chart(data, height=300, barmode="stack", hovermode="closest", xaxis={"title": {"text": "kWh"}},
                 legend={"orientation": "h", "y": -0.3})  # fmt: skip


def appliances_figure(breakdown: dict) -> dict:
    by_name: dict[str, float] = {}  # several houses: the same kind of appliance summed
    for a in breakdown["appliances"]:
        by_name[a["name"]] = by_name.get(a["name"], 0.0) + a["energy_kwh"]
    items = sorted(by_name.items(), key=lambda item: (-item[1], item[0]))
    if not items:
        return empty_figure("No appliance sub-meters: all consumption is other / unmetered.", height=300)
    names = [n for n, _v in items] + ["Other / unmetered"]
    values = [v for _n, v in items] + [breakdown["other_kwh"]]
    colours = [CONSUMPTION] * len(items) + [OTHER_GREY]
    bars = {"type": "bar", "y": names[::-1], "x": values[::-1], "orientation": "h",
            "marker": {"color": colours[::-1]}, "texttemplate": "%{x:.1f} kWh", "hovertemplate": "%{x:.2f} kWh",
            "name": "Energy"}  # fmt: skip
    return chart([bars], height=300, hovermode="closest", xaxis={"title": {"text": "kWh"}}, showlegend=False)


def appliances_note(breakdown: dict) -> str:
    text = (f"Sub-metered {breakdown['submetered_kwh']:,.2f} kWh; other / unmetered = consumption minus the "
            "sub-meters.")  # fmt: skip
    if breakdown["excess_kwh"] > 0:
        text += (f" The sub-meters read {breakdown['excess_kwh']:,.2f} kWh more than the consumption, so other "
                 "is shown as 0: check the sub-meters' wiring and the main meter's readings.")  # fmt: skip
    return text


def method_text(methods: dict[int, str]) -> str:
    kinds = set(methods.values())
    if kinds == {MEASURED}:
        return "Grid import and export measured by the house's grid meters."
    if kinds == {COMPUTED}:
        return ("Grid import and export computed per 15-minute interval from consumption and production (no "
                "grid meter): import = consumption above production, export = production above consumption.")  # fmt: skip
    return (
        "Grid import and export measured where a house has grid meters, else computed per 15-minute interval."
    )


def update_flow(choice, period):
    """KPIs, caption, the two figures, the appliances note and the message."""
    blank = empty_figure("No data.", height=300)
    scope = ui_scope()
    if scope is None:
        return ("-",) * len(KPIS) + ("", blank, blank, "", "Please log in.", "danger", True)
    try:
        timezone = services().settings.timezone
        window = period_window(check_period(period), utcnow(), timezone)
        houses = _houses(scope, choice)
        flow, methods = energy_flow(db(), houses, window)
        breakdown = appliances(db(), houses, window, flow.consumption)
    except DomainError as exc:
        text = error_text(exc)
        blank = empty_figure("No data: " + text, height=300)
        return ("-",) * len(KPIS) + ("", blank, blank, "", text, "danger", True)
    values = flow.as_dict()
    kpis = (
        _num(values["consumption_kwh"], 2), _num(values["production_kwh"], 2),
        _num(values["self_consumption_pct"]), _num(values["self_sufficiency_pct"]),
        _num(values["grid_import_kwh"], 2), _num(values["grid_export_kwh"], 2),
    )  # fmt: skip
    caption = (f"{window.label}: {local_text(window.start, timezone)} to {local_text(window.end, timezone)} "
               f"({timezone}). {method_text(methods)}")  # fmt: skip
    empty = values["intervals"] == 0
    message = "No readings in this period." if empty else ""
    return (*kpis, caption, flow_figure(values), appliances_figure(breakdown), appliances_note(breakdown),
            message, "info", empty)  # fmt: skip


def _change(value) -> str:
    return "-" if value is None else f"{value:+.1f} %"


def comparison_table(result: dict):
    current = result["current"]
    others = [key for key in ("previous", "last_year") if key in result]
    headers = ["", current["label"]]
    for key in others:
        headers += [result[key]["label"], "change"]
    rows = []
    for name, label in (("consumption", "Consumption, kWh"), ("production", "Production, kWh"),
                        ("grid_import", "Grid import, kWh"), ("grid_export", "Grid export, kWh")):  # fmt: skip
        row = [label, _num(current[f"{name}_kwh"], 2)]
        for key in others:
            row += [_num(result[key][f"{name}_kwh"], 2), _change(result[key][f"{name}_change_pct"])]
        rows.append(row)
    return table(headers, rows, "home-comparison-table", empty=None)


def update_comparison(choice, period):
    scope = ui_scope()
    if scope is None:
        return "Please log in."
    try:
        timezone, now = services().settings.timezone, utcnow()
        current = period_window(check_period(period), now, timezone, whole_quarters=True)
        result = comparison(db(), _houses(scope, choice), current, comparison_windows(period, now, timezone))
    except DomainError as exc:
        return html.P(error_text(exc), className="text-danger")
    note = html.P("Unfinished periods are compared over the same elapsed part: up to the same local time, "
                  "in whole quarter hours.", className="small text-muted")  # fmt: skip
    return [comparison_table(result), note]


def update_communities(choice, period):
    scope = ui_scope()
    if scope is None:
        return "Please log in."
    try:
        settings = services().settings
        window = period_window(check_period(period), utcnow(), settings.timezone)
        totals = communities_totals(
            db(), scope, _houses(scope, choice), window, settings.min_aggregate_houses, settings.timezone
        )
    except DomainError as exc:
        return html.P(error_text(exc), className="text-danger")
    if not totals:
        return html.P("Not linked to an energy community.", className="text-muted", id="home-no-community")
    items = []
    for c in totals:
        if c["available"]:
            text = (f"consumption {c['consumption_kwh']:,.1f} kWh, production {c['production_kwh']:,.1f} kWh, "
                    f"net {c['net_kwh']:,.1f} kWh ({c['houses']} houses)")  # fmt: skip
        else:
            text = c["reason"]
        items.append(html.Li([html.Strong(c["name"] + ": "), text], id=f"home-community-{c['community_id']}"))
    return [html.Ul(items), html.P("Totals of the whole community, never a single house's.",
                                   className="small text-muted")]  # fmt: skip


def register_callbacks(app) -> None:
    sync_url(app, home_page.URL_PREFIX, home_page.URL_FIELDS)  # the page's state in its URL
    inputs = [Input(HOUSE, "value"), Input(PERIOD, "value")]
    flow = [*(Output(value_id, "children") for value_id in KPIS.values()), Output(CAPTION, "children"),
            Output(FLOW_GRAPH, "figure"), Output(APPLIANCES_GRAPH, "figure"), Output(APPLIANCES_NOTE, "children"),
            Output(MESSAGE, "children"), Output(MESSAGE, "color"), Output(MESSAGE, "is_open")]  # fmt: skip
    # drawn with the page (its first call is the server's), then called when the house or period changes
    drawn_with_layout(app, home_page.PATH, flow, inputs, update_flow)
    drawn_with_layout(app, home_page.PATH, [Output(COMPARISON, "children")], inputs, update_comparison)
    drawn_with_layout(app, home_page.PATH, [Output(COMMUNITIES, "children")], inputs, update_communities)
