"""Houses are listed in natural order ("House 2" before "House 10") wherever a page lists them: every
page's scope dropdown (through Dash's real page router), the Admin houses and devices tables' queries and
the Analytics per-house charts and tables."""

from __future__ import annotations

import pytest

from callbacks.analytics_figures import anomaly_count_figure, voltage_rows
from dashboard import admin_queries
from dashboard.choices import Choice, natural_key
from dashboard.clock import utcnow
from dashboard.schema import Device, House
from tests.ui.helpers import component, cookie_login, router_payload

NAMES = ["House 10", "House 2", "House 1", "House 11", "house 3", "House 20"]
NATURAL = ["House 1", "House 2", "house 3", "House 10", "House 11", "House 20"]
DROPDOWNS = {
    "/historical": "historical-scope",
    "/real-time": "realtime-scope",
    "/forecasts": "forecasts-scope",
    "/analytics": "analytics-scope",
    "/exports": "exports-scope",
}


@pytest.fixture
def houses(app, factory) -> dict[str, int]:
    """Six houses whose text order differs from their natural order (ids in neither order)."""
    now = utcnow()
    with factory() as s:
        rows = [House(name=name, created_at=now) for name in NAMES]
        s.add_all(rows)
        s.flush()
        s.add_all(
            Device(serial=f"M-{h.id}", name="Main meter", kind="meter", direction="consumption",
                   house_id=h.id, created_at=now)
            for h in rows
        )  # fmt: skip
        s.commit()
        return {h.name: h.id for h in rows}


def test_natural_key_orders_numbers_as_numbers():
    assert sorted(["b10", "B2", "a", None, "10", "9", "b2x"], key=natural_key) == [
        None, "9", "10", "a", "B2", "b2x", "b10",
    ]  # fmt: skip


@pytest.mark.parametrize("path", sorted(DROPDOWNS))
def test_every_pages_scope_dropdown_lists_houses_naturally(client, world, houses, path):
    csrf = cookie_login(client, "analyst")
    r = client.post("/_dash-update-component", json=router_payload(path), headers=csrf)
    assert r.status_code == 200
    options = component(r.json["response"]["_pages_content"]["children"], DROPDOWNS[path])["options"]
    labels = [o["label"] for o in options if o["value"] in {str(i) for i in houses.values()}]
    assert labels == [f"{name} (#{houses[name]})" for name in NATURAL]


def test_admin_houses_and_devices_are_listed_naturally(factory, houses):
    with factory() as s:
        rows, _total = admin_queries.houses(s, 100)
        assert [r.name for r in rows if r.id in houses.values()] == NATURAL
        devices, _total = admin_queries.devices(s, Choice(), 100)
        assert [d.house for d in devices if d.house_id in houses.values()] == NATURAL


def test_analytics_per_house_charts_and_tables_list_houses_naturally(houses):
    names = {house_id: f"{name} (#{house_id})" for name, house_id in houses.items()}
    events = [{"house_id": h, "kind": "consumption_spike"} for h in houses.values()]
    figure = anomaly_count_figure(events, names)
    assert list(figure.data[0].x) == [names[houses[n]] for n in NATURAL]
    summary = [{"house_id": h, "kind": "sag", "count": 1, "total_duration_s": 60.0} for h in houses.values()]
    assert [row[0] for row in voltage_rows(summary, names)] == [names[houses[n]] for n in NATURAL]
