"""The cost and CO2 pieces Overview and Historical share: a card with a total's cost (its parts) and CO2,
and the line a chart's hover gets. Shown only where a tariff or a carbon intensity is set
(dashboard/costs.py returns None otherwise and the callbacks then show nothing).

(The leading underscore keeps Dash's page registry from taking this module for a page.)
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html


def money(value: float | None, currency: str) -> str:
    return "-" if value is None else f"{value:,.2f} {currency}"


def co2_text(kg: float | None) -> str:
    return "-" if kg is None else f"{kg:,.1f} kg CO2"


def hover_line(bucket, currency: str, has_tariff: bool, has_co2: bool) -> str:
    """'Cost 1.23 EUR · 0.4 kg CO2' for one bar (empty when neither is known)."""
    parts = []
    if has_tariff and bucket is not None and bucket.cost is not None:
        parts.append(f"Cost {money(bucket.cost, currency)}")
    if has_co2 and bucket is not None and bucket.co2_kg is not None:
        parts.append(co2_text(bucket.co2_kg))
    return " · ".join(parts)


def cost_card(result, title: str, id_prefix: str, md: int = 6) -> dbc.Col:
    """Cost (with import, export and the standing charge) and CO2 of `result.total()`; a note names the
    houses without a tariff, which the cost leaves out."""
    total, currency = result.total(), result.currency
    body = [html.H6(title, className="mb-2")]
    if result.has_tariff:
        body += [
            html.H4(money(total.cost, currency), id=f"{id_prefix}-cost", className="mb-1"),
            html.Div(
                f"grid import {total.import_kwh:,.1f} kWh: {money(total.energy_cost, currency)}; "
                f"export {total.export_kwh:,.1f} kWh: -{money(total.feed_in_credit or 0.0, currency)}; "
                f"standing charges {money(total.standing_charge or 0.0, currency)}",
                className="text-muted small",
            ),
        ]
        if result.houses_without_tariff:
            body.append(
                html.Div(
                    f"{result.houses_without_tariff} of {result.houses} houses have no tariff and are not counted.",
                    id=f"{id_prefix}-no-tariff",
                    className="text-muted small",
                )
            )
    if result.has_co2:
        body.append(html.Div([html.Span("CO2 of grid import: ", className="text-muted"),
                              html.Strong(co2_text(total.co2_kg), id=f"{id_prefix}-co2")]))  # fmt: skip
    return dbc.Col(dbc.Card(dbc.CardBody(body), className="h-100"), md=md)
