"""The Overview page's callbacks through Dash's real endpoint, on PostgreSQL: now / today / last 24 h
against readings posted through the API, the user distribution per scope, the 24-hour chart, and the
scope always taken from the cookie (no cookie and third-party users are refused)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import plotly
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from dashboard.clock import local_midnight_utc, local_today
from tests.ui.helpers import cookie_login, router_payload

TOTALS = [("overview-demand", "children"), ("overview-production", "children"), ("overview-net", "children")]
NOW_TODAY = [
    ("overview-demand-now", "children"),
    ("overview-production-now", "children"),
    ("overview-net-now", "children"),
    ("overview-now-note", "children"),
    ("overview-demand-today", "children"),
    ("overview-production-today", "children"),
    ("overview-net-today", "children"),
    ("overview-chart", "figure"),
    ("overview-updated", "children"),
]
DISTRIBUTION = [
    ("overview-houses", "children"),
    ("overview-consumers", "children"),
    ("overview-prosumers", "children"),
    ("overview-members", "children"),
]
# which direction each world device adds to (the rollups' rule: the appliance adds to nothing)
ROLE = {"H1-MAIN": "c", "H2-MAIN": "c", "H1-PV": "p", "PARK-INV": "p", "H1-EV": None}
SEES = {
    "analyst": {"H1-MAIN", "H2-MAIN", "H1-PV", "PARK-INV", "H1-EV"},
    "consumer": {"H1-MAIN", "H1-PV", "H1-EV"},
}


def payload(outputs):
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": [{"id": "overview-refresh", "property": "n_intervals", "value": 3}],
        "changedPropIds": ["overview-refresh.n_intervals"],
        "state": [],
    }


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def reading(serial, ts: datetime, power_w, energy_wh, **extra):
    return {"device_id": serial, "timestamp": ts.isoformat() + "+00:00", "power_w": power_w,
            "energy_wh": energy_wh, **extra}  # fmt: skip


def post_readings(client, world, items):
    r = client.post("/api/v1/measurements", json={"measurements": items}, headers=world.headers["admin"])
    assert r.status_code == 200, r.get_data(as_text=True)


@pytest.fixture
def overview_ui(client, world, app):
    """Readings: two in the last 5 minutes (the "now" window) per device, one 10 minutes ago with a huge
    power (outside "now"), one at local midnight and one 15 minutes before it (yesterday)."""
    timezone = app.server.extensions["aggregator"].settings.timezone
    now = utcnow()
    # The tests read "the current hour" a few seconds later, and its bar must hold a reading (H1-MAIN's, a
    # minute back): start at least a minute into an hour that has at least a minute left. (From xx:00:01 every
    # reading fell in the hour before, and the chart had no current, hatched bar.)
    into = now.minute * 60 + now.second
    if into < 61 or into > 3600 - 60:
        time.sleep((61 - into if into < 61 else 3600 - into + 61) + 1)
        now = utcnow()
    midnight = local_midnight_utc(local_today(timezone), timezone)
    items = [
        reading("H1-MAIN", now - timedelta(minutes=2), 2000.0, 10.0, voltage_v=230.0, power_factor=0.9),
        reading("H1-MAIN", now - timedelta(minutes=1), 3000.0, 12.0),
        reading("H1-PV", now - timedelta(minutes=2), 600.0, 5.0),
        reading("H1-EV", now - timedelta(minutes=2), 7000.0, 50.0),  # a sub-meter: never added
        reading("H2-MAIN", now - timedelta(minutes=2), 8000.0, 40.0),
        reading("PARK-INV", now - timedelta(minutes=2), 10000.0, 100.0),
        reading("H1-MAIN", now - timedelta(minutes=10), 99000.0, 20.0),  # outside the 5-minute "now"
        reading("H1-MAIN", midnight, 1000.0, 1000.0),
        reading("H2-MAIN", midnight, 1000.0, 3000.0),
        reading("H1-MAIN", midnight - timedelta(minutes=15), 1000.0, 2000.0),  # yesterday
        reading("PARK-INV", midnight - timedelta(minutes=15), 1000.0, 4000.0),
    ]
    items = [i for i in items if datetime.fromisoformat(i["timestamp"][:-6]) <= now]
    post_readings(client, world, items)
    assert client.get("/").status_code == 200
    return {"client": client, "items": items, "now": now, "midnight": midnight, "timezone": timezone}


def expected_kwh(items, username, start: datetime, end: datetime) -> tuple[float, float]:
    """Sums of the posted energy by direction over [start, end), computed here from the items."""
    sums = {"c": 0.0, "p": 0.0}
    for item in items:
        ts = datetime.fromisoformat(item["timestamp"][:-6])
        role = ROLE[item["device_id"]]
        if role and item["device_id"] in SEES[username] and start <= ts < end:
            sums[role] += item["energy_wh"] / 1000.0
    return sums["c"], sums["p"]


def post(ui, outputs, headers=None):
    return ui["client"].post("/_dash-update-component", json=payload(outputs), headers=headers or {})


def body_values(response, outputs):
    body = response.json["response"]
    return [body[i][p] for i, p in outputs]


@pytest.mark.parametrize(
    ("username", "now_values"),
    [("analyst", ["10.50", "10.60", "-0.10"]), ("consumer", ["2.50", "0.60", "1.90"])],
)
def test_now_today_and_24h_follow_the_readings_and_the_scope(overview_ui, username, now_values):
    ui = overview_ui
    csrf = cookie_login(ui["client"], username)
    r = post(ui, NOW_TODAY, csrf)
    assert r.status_code == 200
    values = body_values(r, NOW_TODAY)
    # now: each device's mean power of the last 5 minutes (H1-MAIN: 2000 and 3000 W -> 2.5 kW), summed per
    # direction; the appliance and the 99 kW reading 10 minutes ago are not in it
    assert values[:3] == now_values
    assert "last 5 minutes" in values[3]
    # today: since local midnight only; yesterday's last quarter is not in it
    end = ui["now"] + timedelta(minutes=10)
    cons, prod = expected_kwh(ui["items"], username, ui["midnight"], end)
    assert values[4:7] == [f"{cons:,.1f}", f"{prod:,.1f}", f"{cons - prod:,.1f}"]
    assert cons >= 1.0  # the midnight reading counts
    # last 24 h: the 24 hourly buckets ending with the current hour
    hour_end = ui["now"].replace(minute=0, second=0) + timedelta(hours=1)
    cons24, prod24 = expected_kwh(ui["items"], username, hour_end - timedelta(hours=24), hour_end)
    totals = body_values(post(ui, TOTALS, csrf), TOTALS)
    assert totals == [f"{cons24:,.1f}", f"{prod24:,.1f}", f"{cons24 - prod24:,.1f}"]


def test_consumer_never_gets_house_b_or_the_park(overview_ui):
    csrf = cookie_login(overview_ui["client"], "consumer")
    text = post(overview_ui, NOW_TODAY, csrf).get_data(as_text=True)
    assert "10.50" not in text and "10.60" not in text  # the all-houses figures (house B and the park)
    figure = post(overview_ui, NOW_TODAY, csrf).json["response"]["overview-chart"]["figure"]
    hour_end = overview_ui["now"].replace(minute=0, second=0) + timedelta(hours=1)
    cons, prod = expected_kwh(overview_ui["items"], "consumer", hour_end - timedelta(hours=24), hour_end)
    assert sum(figure["data"][0]["y"]) == pytest.approx(cons)
    assert sum(figure["data"][1]["y"]) == pytest.approx(prod)


def test_chart_has_one_bar_per_hour_with_readings_and_gaps_stay_gaps(overview_ui):
    ui = overview_ui
    csrf = cookie_login(ui["client"], "analyst")
    figure = post(ui, NOW_TODAY, csrf).json["response"]["overview-chart"]["figure"]
    consumption, production = figure["data"]
    assert (consumption["name"], production["name"]) == ("Consumption", "Production")
    assert consumption["type"] == "bar" and consumption["marker"]["color"] == "#1f77b4"
    hour_end = ui["now"].replace(minute=0, second=0) + timedelta(hours=1)
    zone = ZoneInfo(ui["timezone"])
    hours = sorted(
        {
            datetime.fromisoformat(i["timestamp"][:-6]).replace(minute=0, second=0)
            for i in ui["items"]
            if ROLE[i["device_id"]]
            and hour_end - timedelta(hours=24) <= datetime.fromisoformat(i["timestamp"][:-6])
        }
    )
    labels = [h.replace(tzinfo=UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M") for h in hours]
    assert consumption["x"] == labels  # hours without readings are absent (a missing bar), not zero
    assert len(labels) < 24
    cons, prod = expected_kwh(ui["items"], "analyst", hour_end - timedelta(hours=24), hour_end)
    assert sum(consumption["y"]) == pytest.approx(cons) and sum(production["y"]) == pytest.approx(prod)


def test_chart_is_the_figure_plotly_would_send(overview_ui):
    """The chart is built as a plain dict (no plotly.py validation): plotly.py takes it as it is, with every
    property valid and nothing changed, and it keeps the default template's look (its hatched bar among it)."""
    csrf = cookie_login(overview_ui["client"], "analyst")
    figure = post(overview_ui, NOW_TODAY, csrf).json["response"]["overview-chart"]["figure"]
    assert json_of(go.Figure(figure)) == figure  # raises on any invalid property
    assert figure["layout"]["template"] == json_of(pio.templates[pio.templates.default])
    assert figure["data"][0]["marker"]["pattern"]["shape"][-1] == "/"  # the current hour: so far


def json_of(figure) -> dict:
    return json.loads(json.dumps(figure, cls=plotly.utils.PlotlyJSONEncoder))


def test_chart_range_holds_every_whole_bar_and_the_legend_sits_above_the_plot(overview_ui):
    """Bars are one hour wide, centred on their hour's start: the x range must reach half an hour past
    the first and the last possible hour, and no further; the legend must not sit under the x axis."""
    ui = overview_ui
    csrf = cookie_login(ui["client"], "analyst")
    layout = post(ui, NOW_TODAY, csrf).json["response"]["overview-chart"]["figure"]["layout"]
    lo, hi = (datetime.fromisoformat(t) for t in layout["xaxis"]["range"])
    zone = ZoneInfo(ui["timezone"])
    hour_end = ui["now"].replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    first, last = (
        (hour_end - timedelta(hours=h)).replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
        for h in (24, 1)
    )
    assert (lo, hi) == (first - timedelta(minutes=30), last + timedelta(minutes=30))
    assert layout["legend"]["y"] >= 1 and layout["legend"]["yanchor"] == "bottom"


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("analyst", ["2", "1", "1", "0"]),
        ("consumer", ["1", "0", "1", "0"]),
        ("consumer2", ["1", "1", "0", "0"]),
    ],
)
def test_user_distribution_of_the_callers_scope(overview_ui, username, expected):
    # users, not houses: consumer (house A, a PV and an inverter: a prosumer) and consumer2 (house B, a
    # meter only: a consumer); neither is linked to a community (house A's community is not its users')
    csrf = cookie_login(overview_ui["client"], username)
    r = post(overview_ui, DISTRIBUTION, csrf)
    assert body_values(r, DISTRIBUTION) == expected  # houses, consumers, prosumers, community members


def test_now_falls_back_to_the_latest_complete_quarter(client, world, app):
    """Nothing in the last 5 minutes: "now" is the latest complete 15-minute bucket's energy x 4."""
    now = utcnow()
    quarter = now.replace(minute=now.minute - now.minute % 15, second=0) - timedelta(minutes=30)
    post_readings(
        client, world, [reading("H1-MAIN", quarter, 1000.0, 250.0), reading("H1-PV", quarter, 0, 50.0)]
    )
    client.get("/")
    csrf = cookie_login(client, "consumer")
    values = body_values(
        client.post("/_dash-update-component", json=payload(NOW_TODAY), headers=csrf), NOW_TODAY
    )
    assert values[:3] == ["1.00", "0.20", "0.80"]
    assert "no reading in the last 5 minutes" in values[3] and "x 4" in values[3]


def test_empty_scope_shows_dashes_and_an_empty_chart(client, world):
    client.get("/")
    csrf = cookie_login(client, "consumer2")
    values = body_values(
        client.post("/_dash-update-component", json=payload(NOW_TODAY), headers=csrf), NOW_TODAY
    )
    assert values[:3] == ["-", "-", "-"] and "no reading in the last hour" in values[3]
    assert values[4:7] == ["0.0", "0.0", "0.0"]
    assert values[7]["data"] == [] and "No readings" in str(values[7]["layout"]["annotations"])


@pytest.mark.parametrize("outputs", [TOTALS, NOW_TODAY, DISTRIBUTION])
def test_no_cookie_and_third_party_are_refused(overview_ui, outputs):
    r = post(overview_ui, outputs)
    assert r.status_code == 401 and "10.50" not in r.get_data(as_text=True)
    csrf = cookie_login(overview_ui["client"], "partner")
    assert post(overview_ui, outputs, csrf).status_code == 401


def test_the_page_has_every_card_and_the_chart(overview_ui):
    client = overview_ui["client"]
    csrf = cookie_login(client, "consumer")
    text = client.post("/_dash-update-component", json=router_payload("/"), headers=csrf).get_data(
        as_text=True
    )
    for output, _prop in TOTALS + NOW_TODAY + DISTRIBUTION:
        assert output in text
    assert "overview-refresh" in text
