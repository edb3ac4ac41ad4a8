"""Marks on the charts, through Dash's real endpoint: the unfinished current bucket drawn as such ("so far",
hatched bar or dashed last segment) on Overview and Analytics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import pages.analytics as analytics_page
from callbacks.analytics_figures import anomaly_count_figure
from dashboard.clock import local_today
from pages._urlstate import location_id
from tests.clock import clear_of
from tests.ui.helpers import callback_payload, cookie_login, url_sync_payload
from tests.ui.test_analytics_page import section
from tests.ui.test_historical_page import view as hist_view
from tests.ui.test_overview_page import NOW_TODAY, overview_ui, post, post_readings  # noqa: F401  (the fixture)


def test_overview_current_hour_is_hatched_and_says_so_far(overview_ui, world):  # noqa: F811
    ui = overview_ui
    csrf = cookie_login(ui["client"], "analyst")
    hour = ui["now"].replace(minute=0, second=0)
    label = hour.replace(tzinfo=UTC).astimezone(ZoneInfo(ui["timezone"])).strftime("%Y-%m-%d %H:%M")
    item = {
        "device_id": "H1-MAIN",
        "timestamp": hour.isoformat() + "+00:00",
        "power_w": 5.0,
        "energy_wh": 1.0,
    }
    post_readings(ui["client"], world, [item])  # the current hour has readings, even in its first minute
    figure = post(ui, NOW_TODAY, csrf).json["response"]["overview-chart"]["figure"]
    for trace in figure["data"]:
        assert trace["x"][-1] == label  # the current hour is the last bar
        n = len(trace["x"])
        assert trace["marker"]["pattern"]["shape"] == [""] * (n - 1) + ["/"]
        assert trace["marker"]["opacity"] == [1.0] * (n - 1) + [0.5]
        assert "so far" in trace["customdata"][-1]
        assert all("so far" not in text for text in trace["customdata"][:-1])
        assert "%{customdata}" in trace["hovertemplate"]


def test_overview_finished_hours_are_plain(client, world, app):
    """Readings only two hours back: no bar is hatched, no hover says "so far"."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    ts = now.replace(minute=0, second=0) - timedelta(hours=2)
    item = {
        "device_id": "H1-MAIN",
        "timestamp": ts.isoformat() + "+00:00",
        "power_w": 500.0,
        "energy_wh": 9.0,
    }
    r = client.post("/api/v1/measurements", json={"measurements": [item]}, headers=world.headers["admin"])
    assert r.status_code == 200, r.get_data(as_text=True)
    csrf = cookie_login(client, "analyst")
    ui = {"client": client}
    figure = post(ui, NOW_TODAY, csrf).json["response"]["overview-chart"]["figure"]
    consumption = figure["data"][0]
    assert consumption["y"] == [0.009]
    assert "pattern" not in consumption["marker"]
    assert "so far" not in consumption["customdata"][0]


def test_analytics_consumption_line_ends_with_a_dashed_so_far_segment(client, world, app):
    """Readings in the current and the previous 15-minute buckets: the solid line stops before the current
    bucket, a dashed segment joins it, labelled "so far", at the mean kW of the elapsed minutes."""
    timezone = app.server.extensions["aggregator"].settings.timezone
    # the page must read "now" in this same quarter hour (its last bucket is the one still filling)
    now = clear_of(timedelta(minutes=15)).replace(microsecond=0)
    bucket = now.replace(minute=now.minute - now.minute % 15, second=0)
    items = [
        {"device_id": "H1-MAIN", "timestamp": ts.isoformat() + "+00:00", "power_w": 1000.0, "energy_wh": 60.0}
        for ts in (bucket - timedelta(minutes=15), bucket - timedelta(minutes=5), bucket)
    ]
    r = client.post("/api/v1/measurements", json={"measurements": items}, headers=world.headers["admin"])
    assert r.status_code == 200, r.get_data(as_text=True)
    csrf = cookie_login(client, "analyst")
    today = local_today(timezone).isoformat()
    # the range from the previous bucket's local day: just after local midnight, that is yesterday
    first = (
        (bucket - timedelta(minutes=15)).replace(tzinfo=UTC).astimezone(ZoneInfo(timezone)).date().isoformat()
    )
    before = (datetime.now(UTC).replace(tzinfo=None) - bucket) / timedelta(hours=1)
    body = section(client, csrf, "anomaly", str(world.house1), first, today)
    after = (datetime.now(UTC).replace(tzinfo=None) - bucket) / timedelta(hours=1)
    data = body["analytics-anomaly-graph"]["figure"]["data"]
    line, so_far = data[0], data[1]
    assert line["y"][-1] is None and line["y"][-2] == 0.48  # 2 x 60 Wh in 15 min = 0.48 kW, solid
    assert so_far["line"]["dash"] == "dash" and "so far" in so_far["name"]
    assert so_far["x"] == line["x"][-2:]
    # 60 Wh over the elapsed minutes (never 60 Wh over the whole 15 minutes: that would read as a drop)
    lowest, highest = 0.06 / max(after, 1 / 60), 0.06 / max(before, 1 / 60)
    assert so_far["y"][0] == 0.48 and lowest - 1e-4 <= so_far["y"][1] <= highest + 1e-4
    assert "so far" in so_far["hovertemplate"]


# ---- anomalies and voltage events on the Historical chart ------------------------------------------------


def volt_reading(serial: str, ts: datetime, volts: float) -> dict:
    return {"device_id": serial, "timestamp": ts.isoformat() + "+00:00", "power_w": 600.0, "energy_wh": 10.0,
            "voltage_v": volts}  # fmt: skip


@pytest.fixture
def sags(client, world):
    """Two hours ago: house A sags to 200 V for minutes 3-5, house B swells to 260 V for minutes 6-7."""
    t0 = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0) - timedelta(hours=2)
    items = []
    for m in range(12):
        ts = t0 + timedelta(minutes=m)
        items.append(volt_reading("H1-MAIN", ts, 200.0 if m in (3, 4, 5) else 230.0))
        items.append(volt_reading("H2-MAIN", ts, 260.0 if m in (6, 7) else 231.0))
    r = client.post("/api/v1/measurements", json={"measurements": items}, headers=world.headers["admin"])
    assert r.status_code == 200, r.get_data(as_text=True)
    return {"client": client, "t0": t0}


def marks(response: dict) -> tuple[list, list[str]]:
    figure = response["historical-consumption"]["figure"]
    texts = [t for trace in figure["data"] if trace["type"] == "scatter" for t in trace["text"]]
    return figure["layout"].get("shapes", []), texts


@pytest.mark.parametrize(("username", "houses"), [("analyst", {"#1", "#2"}), ("consumer", {"#1"})])
def test_historical_marks_the_voltage_events_of_the_scopes_houses(sags, world, username, houses):
    shapes, texts = marks(hist_view(sags["client"], username, range_choice="24h"))
    volt = [t for t in texts if t.startswith(("Voltage sag", "Voltage swell"))]
    assert {t.split("house ")[1].split(":")[0] for t in volt} == houses  # nothing of a house out of scope
    sag = next(t for t in volt if t.startswith("Voltage sag"))
    local = sags["t0"].replace(tzinfo=UTC).astimezone(ZoneInfo("Europe/Athens"))
    assert f"{local + timedelta(minutes=3):%H:%M} - " in sag and "200-200 V" in sag
    assert len(shapes) == len(texts) and all(s["yref"] == "paper" for s in shapes)


def test_historical_marks_one_house_and_not_its_neighbour(sags, world):
    _shapes, texts = marks(hist_view(sags["client"], "analyst", range_choice="24h", choice=str(world.house2)))
    assert texts and all("house #2" in t for t in texts)
    assert any(t.startswith("Voltage swell") for t in texts)


def test_historical_skips_marks_over_31_days_and_says_so(sags):
    today = datetime.now(UTC).date()
    body = hist_view(sags["client"], "analyst", range_choice="custom", start=str(today - timedelta(days=40)),
                     end=str(today))  # fmt: skip
    shapes, texts = marks(body)
    assert shapes == [] and texts == []
    assert "up to 31 days" in body["historical-caption"]["children"]


# ---- Analytics -> Anomalies: a house's bar opens the house ------------------------------------------------


def click_bar(client, csrf, customdata):
    point = {"x": "House", "y": 1} | ({} if customdata is None else {"customdata": customdata})
    body = callback_payload(
        [("analytics-scope", "value")], [("analytics-anomaly-graph", "clickData", {"points": [point]})]
    )
    return client.post("/_dash-update-component", json=body, headers=csrf)


def test_anomaly_count_bars_carry_their_house_and_a_click_opens_it(client, world):
    events = [
        {"house_id": world.house2, "kind": "night_load"},
        {"house_id": world.house1, "kind": "consumption_spike"},
        {"house_id": world.house2, "kind": "consumption_spike"},
    ]
    figure = anomaly_count_figure(events, {world.house1: "House 1", world.house2: "House 2"})
    assert all(list(t.customdata) == [str(world.house1), str(world.house2)] for t in figure.data)
    assert client.get("/").status_code == 200
    csrf = cookie_login(client, "analyst")
    r = click_bar(client, csrf, str(world.house2))
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.json["response"]["analytics-scope"]["value"] == str(world.house2)


def test_a_click_on_a_house_out_of_scope_or_on_no_bar_changes_nothing(client, world):
    assert client.get("/").status_code == 200
    csrf = cookie_login(client, "consumer")  # house 1 only
    assert click_bar(client, csrf, str(world.house2)).status_code == 204
    assert click_bar(client, csrf, f"community:{world.community}").status_code == 204
    assert click_bar(client, csrf, None).status_code == 204  # the one-house line: no house on its points
    r = click_bar(client, csrf, str(world.house1))
    assert r.status_code == 200 and r.json["response"]["analytics-scope"]["value"] == str(world.house1)
    client.delete_cookie("access_token_cookie")
    assert click_bar(client, {}, str(world.house1)).status_code == 401  # no cookie
    csrf = cookie_login(client, "partner")  # a third-party app's account
    assert click_bar(client, csrf, str(world.house1)).status_code == 401


def test_anomaly_bar_click_then_url_holds_the_house(client, world, app):
    """The scope control the click sets is the one the URL follows (sync_url): ?scope=<house>."""
    assert client.get("/").status_code == 200
    csrf = cookie_login(client, "analyst")
    value = click_bar(client, csrf, str(world.house2)).json["response"]["analytics-scope"]["value"]
    controls = [value if f.component == "analytics-scope" else None for f in analytics_page.URL_FIELDS]
    body = url_sync_payload(app, analytics_page.URL_PREFIX, controls)
    r = client.post("/_dash-update-component", json=body, headers=csrf)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert f"scope={world.house2}" in r.json["response"][location_id(analytics_page.URL_PREFIX)]["search"]
    r = click_bar(client, csrf, str(world.house1))
    assert r.status_code == 200 and r.json["response"]["analytics-scope"]["value"] == str(world.house1)


# ---- Real-Time: the same marks on a full draw ------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "choice", "houses"),
    [("analyst", "all", {"#1", "#2"}), ("consumer", "all", {"#1"}), ("consumer", "house2", set())],
)
def test_real_time_marks_the_voltage_events_of_the_scopes_houses(client, world, username, choice, houses):
    """A consumer's forged request for another household's house (house2) gets no chart and no marks."""
    t0 = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0) - timedelta(minutes=20)
    items = []
    for m in range(10):
        ts = t0 + timedelta(minutes=m)
        items.append(volt_reading("H1-MAIN", ts, 200.0 if m in (3, 4) else 230.0))
        items.append(volt_reading("H2-MAIN", ts, 260.0 if m in (6, 7) else 231.0))
    r = client.post("/api/v1/measurements", json={"measurements": items}, headers=world.headers["admin"])
    assert r.status_code == 200, r.get_data(as_text=True)
    assert client.get("/").status_code == 200
    csrf = cookie_login(client, username)
    body = {"output": "..realtime-graph.figure...realtime-state.data...realtime-message.children...realtime-message.is_open..",
            "outputs": [{"id": i, "property": p} for i, p in (("realtime-graph", "figure"), ("realtime-state", "data"),
                        ("realtime-message", "children"), ("realtime-message", "is_open"))],
            "inputs": [{"id": "realtime-scope", "property": "value",
                        "value": str(world.house2) if choice == "house2" else choice},
                       {"id": "realtime-window", "property": "value", "value": "60m"},
                       {"id": "realtime-interval", "property": "n_intervals", "value": None}],
            "changedPropIds": ["realtime-scope.value"],
            "state": [{"id": "realtime-state", "property": "data", "value": None}]}  # fmt: skip
    r = client.post("/_dash-update-component", json=body, headers=csrf)
    assert r.status_code == 200, r.get_data(as_text=True)
    figure = r.json["response"]["realtime-graph"]["figure"]
    texts = [t for trace in figure["data"] if trace.get("mode") == "markers" for t in trace["text"]]
    assert {t.split("house ")[1].split(":")[0] for t in texts} == houses
    assert len(figure["layout"].get("shapes", [])) == len(texts)
    if not houses:  # refused, saying why
        assert r.json["response"]["realtime-message"]["is_open"] is True
        assert f"house #{world.house2}" not in r.get_data(as_text=True)
