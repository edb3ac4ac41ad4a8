"""The Household page's callbacks through Dash's real endpoint, on PostgreSQL: the house list built from the
scope, yesterday's flow and appliances for a consumer, a forged house id refused, the comparison table,
community totals without house details, the consumer's landing page, and no data without a cookie."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from sqlalchemy import insert

from dashboard.clock import local_midnight_utc
from dashboard.schema import user_communities
from tests.api.test_energy import load
from tests.clock import local_today_clear_of_midnight
from tests.factories import PASSWORD, login_form_fields
from tests.ui.helpers import component, cookie_login, router_payload

KPIS = ["home-consumption", "home-production", "home-self-consumption", "home-self-sufficiency",
        "home-import", "home-export"]  # fmt: skip
FLOW = [(i, "children") for i in KPIS] + [
    ("home-caption", "children"),
    ("home-flow", "figure"),
    ("home-appliances", "figure"),
    ("home-appliances-note", "children"),
    ("home-message", "children"),
    ("home-message", "color"),
    ("home-message", "is_open"),
]


def payload(outputs, house, period="yesterday"):
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + ".." if len(outputs) > 1 else
        f"{outputs[0][0]}.{outputs[0][1]}",
        "outputs": [{"id": i, "property": p} for i, p in outputs] if len(outputs) > 1 else
        {"id": outputs[0][0], "property": outputs[0][1]},
        "inputs": [{"id": "home-house", "property": "value", "value": house},
                   {"id": "home-period", "property": "value", "value": period}],
        "changedPropIds": ["home-period.value"],
        "state": [],
    }  # fmt: skip


@pytest.fixture
def home_ui(client, world, app):
    """Yesterday's first hour for house A: 4 quarters of load 400 Wh and PV 100, 500, 100, 500 Wh; EV 100 Wh."""
    timezone = app.server.extensions["aggregator"].settings.timezone
    today = local_today_clear_of_midnight(timezone)  # the app's "yesterday" must be this one in the tests
    start = local_midnight_utc(today - timedelta(days=1), timezone).replace(tzinfo=UTC)

    def q(serial, i, wh):
        ts = start + timedelta(minutes=15 * i)
        return {"device_id": serial, "timestamp": ts.isoformat(), "power_w": wh * 4, "energy_wh": wh}

    items = [q("H1-MAIN", i, 400.0) for i in range(4)] + [
        q("H1-PV", i, (100.0, 500.0)[i % 2]) for i in range(4)
    ]
    load(client, world, items + [q("H1-EV", 0, 100.0), q("H2-MAIN", 0, 300.0)])
    assert client.get("/").status_code == 200
    return world


def update(client, outputs, house, csrf, period="yesterday"):
    r = client.post("/_dash-update-component", json=payload(outputs, house, period), headers=csrf)
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.json["response"]
    return [body[i][p] for i, p in outputs]


def test_house_list_is_built_from_the_scope(client, home_ui):
    csrf = cookie_login(client, "consumer")
    layout = client.post("/_dash-update-component", json=router_payload("/home"), headers=csrf).json
    options = component(layout["response"]["_pages_content"]["children"], "home-house")["options"]
    assert [o["value"] for o in options] == [str(home_ui.house1)]
    csrf = cookie_login(client, "analyst")
    layout = client.post("/_dash-update-component", json=router_payload("/home"), headers=csrf).json
    options = component(layout["response"]["_pages_content"]["children"], "home-house")["options"]
    assert sorted(o["value"] for o in options) == sorted([str(home_ui.house1), str(home_ui.house2)])


def test_consumer_sees_yesterdays_flow_and_appliances(client, home_ui):
    csrf = cookie_login(client, "consumer")
    values = update(client, FLOW, str(home_ui.house1), csrf)
    # load 1.6 kWh, PV 1.2; per quarter: import 300 + 0 + 300 + 0, export 0 + 100 + 0 + 100
    assert values[:6] == ["1.60", "1.20", "83.3", "62.5", "0.60", "0.20"]
    assert "computed per 15-minute interval" in values[6]
    flow = {t["name"]: t["x"] for t in values[7]["data"]}
    assert flow["Solar → home"] == [1.0, 1.0] and flow["Grid → home"][1] == 0.6
    assert flow["Solar → grid"][0] == 0.2
    bars = values[8]["data"][0]
    assert dict(zip(bars["y"], bars["x"], strict=True)) == {"EV charger": 0.1, "Other / unmetered": 1.5}
    assert values[12] is False  # no message


def test_forged_house_id_gets_no_data(client, home_ui):
    csrf = cookie_login(client, "consumer")
    values = update(client, FLOW, str(home_ui.house2), csrf)
    assert values[:6] == ["-"] * 6 and "not in your scope" in values[10] and values[12] is True
    r = client.post("/_dash-update-component", json=payload([("home-comparison", "children")],
                                                            str(home_ui.house2)), headers=csrf)  # fmt: skip
    assert "not in your scope" in str(r.json["response"]) and "0.30" not in str(r.json["response"])


def test_comparison_table_names_the_previous_day(client, home_ui):
    csrf = cookie_login(client, "consumer")
    (table,) = update(client, [("home-comparison", "children")], str(home_ui.house1), csrf)
    text = str(table)
    assert "Previous day" in text and "Same period last year" in text and "1.60" in text


def test_community_totals_without_house_details(client, home_ui, factory):
    with factory() as s:
        s.execute(
            insert(user_communities).values(user_id=home_ui.users["consumer"], community_id=home_ui.community)
        )
        s.commit()
    csrf = cookie_login(client, "consumer")
    (totals,) = update(client, [("home-communities", "children")], str(home_ui.house1), csrf)
    text = str(totals)
    # MIN_AGGREGATE_HOUSES is 1 in the tests; the community holds house A only
    assert "Solar Street" in text and "consumption 1.6 kWh" in text and "House A" not in text
    csrf = cookie_login(client, "consumer2")  # not linked to any community
    (totals,) = update(client, [("home-communities", "children")], str(home_ui.house2), csrf)
    assert "Not linked to an energy community" in str(totals)


def test_consumer_lands_on_household_staff_on_overview(client, world):
    for username, landing in (("consumer", "/home"), ("analyst", "/")):
        data = {"username": username, "password": PASSWORD, "next": "/"} | login_form_fields(client)
        assert client.post("/auth/login", data=data).headers["Location"] == landing
    data = {"username": "consumer", "password": PASSWORD, "next": "/historical"} | login_form_fields(client)
    assert client.post("/auth/login", data=data).headers["Location"] == "/historical"


def test_no_cookie_no_data(client, home_ui):
    r = client.post("/_dash-update-component", json=payload(FLOW, str(home_ui.house1)))
    assert r.status_code == 401
