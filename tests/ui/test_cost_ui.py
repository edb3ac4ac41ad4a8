"""Cost and CO2 in the pages, through Dash's real endpoint on PostgreSQL: the Overview's cost card and the
Historical page's hover and total appear only where a tariff is set, hold the caller's houses only, and
the Admin page's tariffs tab adds a tariff (admins only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.ui.helpers import component, cookie_login

FLAT = {"kind": "flat", "import_price": 0.25, "valid_from": "2020-01-01"}
HISTORICAL = [("historical-consumption", "figure"), ("historical-production", "figure"),
              ("historical-summary", "children"), ("historical-caption", "children"),
              ("historical-message", "children"), ("historical-message", "color"),
              ("historical-message", "is_open")]  # fmt: skip
HISTORICAL_INPUTS = ("historical-range.value", "historical-dates.start_date", "historical-dates.end_date",
                     "historical-bars.value", "historical-scope.value")  # fmt: skip
TARIFF_STATES = ("admin-tariff-house", "admin-tariff-name", "admin-tariff-kind", "admin-tariff-import",
                 "admin-tariff-export", "admin-tariff-standing", "admin-tariff-from", "admin-tariff-to",
                 "admin-tariff-periods")  # fmt: skip


def dash_payload(outputs, inputs, changed, state=()):
    single = len(outputs) == 1  # Dash names a single output without the dots and sends it bare
    return {
        "output": f"{outputs[0][0]}.{outputs[0][1]}"
        if single
        else ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": {"id": outputs[0][0], "property": outputs[0][1]}
        if single
        else [{"id": i, "property": p} for i, p in outputs],
        "inputs": inputs,
        "changedPropIds": [changed],
        "state": list(state),
    }


def hour_start(hours_ago: int) -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours_ago)


@pytest.fixture
def usage(client, world, app):
    """Houses A (1 kWh an hour) and B (2 kWh an hour), hours 1 and 2 ago: all imported (no PV then)."""
    items = []
    for hours_ago in (1, 2):
        for quarter in range(4):
            ts = (hour_start(hours_ago) + timedelta(minutes=15 * quarter)).isoformat()
            items += [{"device_id": "H1-MAIN", "timestamp": ts, "power_w": 1000.0, "energy_wh": 250.0},
                      {"device_id": "H2-MAIN", "timestamp": ts, "power_w": 2000.0, "energy_wh": 500.0}]  # fmt: skip
    r = client.post("/api/v1/measurements", json={"measurements": items}, headers=world.headers["admin"])
    assert r.status_code == 200
    assert client.get("/").status_code == 200
    return world


def with_tariff(client, world):
    r = client.post(f"/api/v1/houses/{world.house1}/tariffs", json=FLAT, headers=world.headers["admin"])
    assert r.status_code == 201, r.json


def overview_cost(client, username):
    headers = cookie_login(client, username)
    inputs = [{"id": "overview-refresh", "property": "n_intervals", "value": 1}]
    body = dash_payload([("overview-cost", "children")], inputs, "overview-refresh.n_intervals")
    r = client.post("/_dash-update-component", json=body, headers=headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.json["response"]["overview-cost"]["children"]


def historical(client, username):
    headers = cookie_login(client, username)
    inputs = [{"id": k.split(".")[0], "property": k.split(".")[1], "value": v}
              for k, v in zip(HISTORICAL_INPUTS, ["24h", None, None, "auto", "all"], strict=True)]  # fmt: skip
    r = client.post("/_dash-update-component", json=dash_payload(HISTORICAL, inputs, "historical-range.value"),
                    headers=headers)  # fmt: skip
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.json["response"]
    return body["historical-consumption"]["figure"], body["historical-summary"]["children"]


def test_overview_has_no_cost_card_without_a_tariff(client, usage):
    assert overview_cost(client, "consumer") is None
    assert overview_cost(client, "analyst") is None


@pytest.mark.parametrize(("username", "cost", "without"), [("consumer", "0.50 EUR", None),
                                                            ("analyst", "0.50 EUR", "1 of 2 houses")])  # fmt: skip
def test_overview_cost_card_with_a_tariff_sums_the_callers_houses(client, usage, username, cost, without):
    with_tariff(client, usage)
    card = overview_cost(client, username)
    assert component(card, "overview-cost")["children"] == cost  # 2 kWh of house A x 0.25
    note = component(card, "overview-no-tariff")
    assert (note is None) if without is None else without in note["children"]


def test_the_other_consumers_overview_shows_no_cost(client, usage):
    with_tariff(client, usage)  # house A's tariff: consumer2 owns house B only
    assert overview_cost(client, "consumer2") is None


def test_historical_hover_and_total_show_cost_only_with_a_tariff(client, usage):
    figure, summary = historical(client, "consumer")
    assert not any("Cost" in text for text in figure["data"][0]["customdata"])
    assert component(summary, "historical-cost") is None
    with_tariff(client, usage)
    figure, summary = historical(client, "consumer")
    hovers = [text for text in figure["data"][0]["customdata"] if "Cost" in text]
    assert len(hovers) == 2 and all(text.endswith("Cost 0.25 EUR") for text in hovers)
    assert component(summary, "historical-cost")["children"] == "0.50 EUR"


def tariff_action(client, headers, house, kind="flat", price=0.3, valid_from="2030-01-01", periods=None):
    values = [house, None, kind, price, None, None, valid_from, None, periods]
    state = [{"id": i, "property": "value", "value": v} for i, v in zip(TARIFF_STATES, values, strict=True)]
    state.append({"id": "admin-tariffs-changed", "property": "data", "value": 0})
    outputs = [("admin-tariffs-message", "children"), ("admin-tariffs-message", "color"),
               ("admin-tariffs-message", "is_open"), ("admin-tariffs-changed", "data")]  # fmt: skip
    inputs = [{"id": "admin-tariff-add", "property": "n_clicks", "value": 1}, [], []]
    body = dash_payload(outputs, inputs, "admin-tariff-add.n_clicks", state)
    return client.post("/_dash-update-component", json=body, headers=headers)


def test_admin_adds_a_time_of_use_tariff_in_the_admin_page(client, world):
    headers = cookie_login(client, "admin")
    periods = "weekday 07:00-23:00 0.30\nweekday 23:00-07:00 0.10\nweekend 00:00-24:00 0.15"
    r = tariff_action(client, headers, str(world.house2), kind="tou", price=None, periods=periods)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.json["response"]["admin-tariffs-message"]["color"] == "success"
    stored = client.get(f"/api/v1/houses/{world.house2}/tariffs", headers=world.headers["admin"]).json
    assert [p["import_price"] for p in stored[0]["periods"]] == [0.3, 0.1, 0.15]
    # an overlapping one is refused with the clash named, and nothing is added
    r = tariff_action(client, headers, str(world.house2), valid_from="2031-01-01")
    assert r.json["response"]["admin-tariffs-message"]["color"] == "danger"
    assert f"tariff {stored[0]['id']}" in r.json["response"]["admin-tariffs-message"]["children"]
    assert len(client.get(f"/api/v1/houses/{world.house2}/tariffs", headers=world.headers["admin"]).json) == 1


def test_a_consumer_cannot_add_a_tariff_through_the_admin_callback(client, world):
    headers = cookie_login(client, "consumer")
    r = tariff_action(client, headers, str(world.house1))
    assert r.status_code in (200, 403)
    if r.status_code == 200:
        assert r.json["response"]["admin-tariffs-message"]["color"] == "danger"
    assert client.get(f"/api/v1/houses/{world.house1}/tariffs", headers=world.headers["admin"]).json == []
