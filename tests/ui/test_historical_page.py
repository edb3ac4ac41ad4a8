"""The Historical page's callbacks through Dash's real endpoint, on PostgreSQL: bars are the rollups'
energy per bucket (a bucket without readings has no bar, never a zero), daily bars are local days across
DST, the summary panels add up, and the scope comes from the cookie, never from the browser."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dashboard.auth import user_scope
from dashboard.queries import energy_series
from dashboard.schema import User
from pages._charts import max_trace_points
from tests.clock import clear_of
from tests.ui.helpers import callback_payload, cookie_login, router_payload

ZONE_NAME = "Europe/Athens"  # the test app's TIMEZONE (the default); checked in the fixture
INPUTS = (
    "historical-range.value",
    "historical-dates.start_date",
    "historical-dates.end_date",
    "historical-bars.value",
    "historical-scope.value",
)
OUTPUTS = [
    ("historical-consumption", "figure"),
    ("historical-production", "figure"),
    ("historical-summary", "children"),
    ("historical-caption", "children"),
    ("historical-message", "children"),
    ("historical-message", "color"),
    ("historical-message", "is_open"),
]
A_WH, B_WH, PV_WH = 250.0, 2250.0, 100.0  # per 15-minute reading: house A 1 kWh/h, house B 9 kWh/h
RECENT_HOURS = (1, 2, 4)  # hours ago with readings; hour 3 ago is the known gap
OLD_HOURS = (72, 73)  # three days ago: inside "7 d", outside "24 h"


def payload(range_choice="24h", start=None, end=None, bars="auto", choice="all"):
    values = [range_choice, start, end, bars, choice]
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in OUTPUTS) + "..",
        "outputs": [{"id": i, "property": p} for i, p in OUTPUTS],
        "inputs": [
            {"id": key.split(".")[0], "property": key.split(".")[1], "value": value}
            for key, value in zip(INPUTS, values, strict=True)
        ],
        "changedPropIds": ["historical-range.value"],
        "state": [],
    }


def toggle_payload(range_choice, output=("historical-dates", "disabled")):
    """The date picker (the shared range picker's callback) or the bar sizes (the page's) for a range."""
    return callback_payload([output], [("historical-range", "value", range_choice)])


def reading(device: str, ts: datetime, wh: float) -> dict:
    return {"device_id": device, "timestamp": ts.isoformat(), "power_w": 4 * wh, "energy_wh": wh}


def post_readings(client, world, items: list[dict]) -> None:
    for i in range(0, len(items), 5000):
        r = client.post(
            "/api/v1/measurements", json={"measurements": items[i : i + 5000]}, headers=world.headers["admin"]
        )
        assert r.status_code == 200, r.get_data(as_text=True)


def hour_start(hours_ago: int) -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours_ago)


def local_x(ts_utc: datetime) -> str:
    """The x value the page uses for a sub-daily bucket: local wall-clock time, ISO."""
    return ts_utc.astimezone(ZoneInfo(ZONE_NAME)).replace(tzinfo=None).isoformat()


@pytest.fixture
def hist(client, world, app):
    """Houses A and B read every 15 minutes in hours 1, 2 and 4 ago (hour 3 ago is a gap for both) and
    72-73 hours ago; house A's PV produces in hour 1 ago; the community's park in hour 2 ago."""
    assert app.server.extensions["aggregator"].settings.timezone == ZONE_NAME
    clear_of(timedelta(hours=1))  # the tests compute "hour N ago" (and today) again seconds later
    items = []
    for hours_ago in RECENT_HOURS + OLD_HOURS:
        for quarter in range(4):
            ts = hour_start(hours_ago) + timedelta(minutes=15 * quarter)
            items += [reading("H1-MAIN", ts, A_WH), reading("H2-MAIN", ts, B_WH)]
            if hours_ago == 1:
                items.append(reading("H1-PV", ts, PV_WH))
            if hours_ago == 2:
                items.append(reading("PARK-INV", ts, 10 * PV_WH))
    post_readings(client, world, items)
    assert client.get("/").status_code == 200
    return client


def post(client, body, headers=None):
    return client.post("/_dash-update-component", json=body, headers=headers or {})


def find(tree, component_id: str):
    """The component with this id in a serialized Dash tree (the summary panels), or None."""
    if isinstance(tree, dict):
        props = tree.get("props", {})
        if props.get("id") == component_id:
            return props
        for value in list(props.values()) + ([] if "props" in tree else list(tree.values())):
            hit = find(value, component_id)
            if hit is not None:
                return hit
    elif isinstance(tree, list):
        for item in tree:
            hit = find(item, component_id)
            if hit is not None:
                return hit
    return None


def text_of(summary, component_id: str) -> str:
    props = find(summary, component_id)
    assert props is not None, component_id
    return props["children"]


def kwh(text: str) -> float:
    return float(text.removesuffix(" kWh").replace(",", ""))


def bars(figure) -> tuple[list, list]:
    trace = figure["data"][0]
    assert trace["type"] == "bar"
    return list(trace["x"]), list(trace["y"])


def view(client, username, **kwargs) -> dict:
    csrf = cookie_login(client, username)
    r = post(client, payload(**kwargs), csrf)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.json["response"]


def service(app, factory, username, resolution, start, end, **params) -> list[dict]:
    with factory() as s:
        scope = user_scope(s, s.scalar(select(User).where(User.username == username)))
        return energy_series(s, scope, resolution, start, end, **params)


def test_24h_hourly_bars_keep_the_gap_and_sum_to_the_posted_energy(hist, world):
    body = view(hist, "analyst", range_choice="24h")
    x, cons = bars(body["historical-consumption"]["figure"])
    _, prod = bars(body["historical-production"]["figure"])
    assert len(x) == len(cons) == 24  # every hour of the window is on the axis
    by_x = dict(zip(x, cons, strict=True))
    for hours_ago in RECENT_HOURS:
        assert by_x[local_x(hour_start(hours_ago))] == pytest.approx(4 * (A_WH + B_WH) / 1000)
    assert by_x[local_x(hour_start(3))] is None  # the gap: no bar, not a zero
    assert sum(1 for v in cons if v is not None) == len(RECENT_HOURS)
    assert sum(v for v in cons if v is not None) == pytest.approx(3 * 4 * (A_WH + B_WH) / 1000)  # 30 kWh
    prod_by_x = dict(zip(x, prod, strict=True))
    assert prod_by_x[local_x(hour_start(1))] == pytest.approx(0.4)  # house A's PV
    assert prod_by_x[local_x(hour_start(2))] == pytest.approx(4.0)  # the community's park
    assert prod_by_x[local_x(hour_start(3))] is None

    summary = body["historical-summary"]["children"]
    assert kwh(text_of(summary, "historical-consumption-total")) == pytest.approx(30.0)
    assert kwh(text_of(summary, "historical-consumption-average")) == pytest.approx(
        10.0
    )  # per hour with data
    assert kwh(text_of(summary, "historical-consumption-max")) == pytest.approx(10.0)
    assert kwh(text_of(summary, "historical-production-total")) == pytest.approx(4.4)
    assert kwh(text_of(summary, "historical-production-max")) == pytest.approx(4.0)
    park_hour = hour_start(2).astimezone(ZoneInfo(ZONE_NAME)).strftime("%Y-%m-%d %H:%M %Z")
    assert text_of(summary, "historical-production-max-at") == park_hour  # local time with EET/EEST
    assert kwh(text_of(summary, "historical-net")) == pytest.approx(30.0 - 4.4)
    assert text_of(summary, "historical-coverage").startswith("3 / 24 (12.5 %)")
    assert body["historical-message"]["is_open"] is False
    assert "Hourly bars, last 24 hours" in body["historical-caption"]["children"]


def test_7d_adds_the_older_readings_hourly(hist, app, factory):
    body = view(hist, "analyst", range_choice="7d")
    x, cons = bars(body["historical-consumption"]["figure"])
    assert len(x) == 7 * 24
    by_x = dict(zip(x, cons, strict=True))
    for hours_ago in RECENT_HOURS + OLD_HOURS:
        assert by_x[local_x(hour_start(hours_ago))] == pytest.approx(10.0)
    assert by_x[local_x(hour_start(3))] is None and by_x[local_x(hour_start(74))] is None
    assert sum(v for v in cons if v is not None) == pytest.approx(50.0)
    # the same numbers as the rollup service for the same window
    end = hour_start(-1).replace(tzinfo=None)
    rows = service(app, factory, "analyst", "hour", end - timedelta(days=7), end)
    assert [v for v in cons if v is not None] == [row["consumption_kwh"] for row in rows]
    summary = body["historical-summary"]["children"]
    assert text_of(summary, "historical-coverage").startswith("5 / 168")
    assert kwh(text_of(summary, "historical-consumption-total")) == pytest.approx(50.0)


def test_custom_range_daily_bars_beyond_two_weeks(hist, app, factory):
    zone = ZoneInfo(ZONE_NAME)
    today = datetime.now(zone).date()
    first = today - timedelta(days=19)
    body = view(hist, "analyst", range_choice="custom", start=first.isoformat(), end=today.isoformat())
    x, cons = bars(body["historical-consumption"]["figure"])
    assert x == [(first + timedelta(days=i)).isoformat() for i in range(20)]  # one bar per local day
    expected: dict[str, float] = {}
    for hours_ago in RECENT_HOURS + OLD_HOURS:
        day = hour_start(hours_ago).astimezone(zone).date().isoformat()
        expected[day] = expected.get(day, 0.0) + 10.0
    assert {d: v for d, v in zip(x, cons, strict=True) if v is not None} == pytest.approx(expected)
    assert all(v is None for d, v in zip(x, cons, strict=True) if d not in expected)
    assert "Daily bars" in body["historical-caption"]["children"]
    summary = body["historical-summary"]["children"]
    assert text_of(summary, "historical-coverage").startswith(f"{len(expected)} / 20")


def test_custom_range_of_a_few_days_is_finer(hist):
    zone = ZoneInfo(ZONE_NAME)
    today = datetime.now(zone).date()
    body = view(hist, "analyst", range_choice="custom", start=(today - timedelta(days=1)).isoformat(),
                end=today.isoformat())  # fmt: skip
    x, cons = bars(body["historical-consumption"]["figure"])
    assert len(x) in (2 * 96 - 4, 2 * 96, 2 * 96 + 4)  # 15-minute bars (a DST day has 92 or 100)
    assert "15-minute bars" in body["historical-caption"]["children"]
    assert sum(v for v in cons if v is not None) == pytest.approx(
        sum(10.0 for h in RECENT_HOURS if hour_start(h).astimezone(zone).date() >= today - timedelta(days=1))
    )
    body = view(hist, "analyst", range_choice="custom", start=(today - timedelta(days=1)).isoformat(),
                end=today.isoformat(), bars="hour")  # fmt: skip
    x, _cons = bars(body["historical-consumption"]["figure"])
    assert 46 <= len(x) <= 50


def test_a_year_of_15_minute_bars_falls_back_under_5000_points(hist):
    today = datetime.now(ZoneInfo(ZONE_NAME)).date()
    body = view(hist, "analyst", range_choice="custom", start=(today - timedelta(days=364)).isoformat(),
                end=today.isoformat(), bars="15min")  # fmt: skip
    figure = body["historical-consumption"]["figure"]
    assert max_trace_points(figure) == 365  # daily: hourly would be 8,760 > 5,000
    assert "would exceed 5,000" in body["historical-message"]["children"]
    assert sum(v for v in bars(figure)[1] if v is not None) == pytest.approx(50.0)


def test_one_house_and_the_community(hist, world):
    body = view(hist, "analyst", choice=str(world.house2))
    _x, cons = bars(body["historical-consumption"]["figure"])
    assert [v for v in cons if v is not None] == [pytest.approx(9.0)] * 3
    assert "House B" in body["historical-caption"]["children"]
    body = view(hist, "analyst", choice=f"c{world.community}")  # house A and the park
    _x, cons = bars(body["historical-consumption"]["figure"])
    _x, prod = bars(body["historical-production"]["figure"])
    assert [v for v in cons if v is not None] == [pytest.approx(1.0)] * 3
    assert sum(v for v in prod if v is not None) == pytest.approx(4.4)


@pytest.mark.parametrize(
    ("first", "last", "hours"),
    [("2025-10-25", "2025-10-27", [24, 25, 24]), ("2025-03-29", "2025-03-31", [24, 23, 24])],
    ids=["october-25h", "march-23h"],
)
def test_dst_custom_range_gives_one_bar_per_local_day(client, world, app, factory, first, last, hours):
    """Readings every 15 minutes over three local days around a DST change, energy varying with time:
    each daily bar is exactly the sum over its local day, 23 or 25 hours long."""
    zone = ZoneInfo(ZONE_NAME)
    d0, d1 = date.fromisoformat(first), date.fromisoformat(last)
    lo = datetime(d0.year, d0.month, d0.day, tzinfo=zone).astimezone(UTC)
    hi = (datetime(d1.year, d1.month, d1.day, tzinfo=zone) + timedelta(days=1)).astimezone(UTC)
    items, per_day, count = [], {}, {}
    ts = lo - timedelta(hours=2)  # readings either side of the range must not leak into it
    while ts < hi + timedelta(hours=2):
        wh = 50.0 + (ts.hour * 4 + ts.minute // 15) % 17  # varies within the day
        items.append(reading("H1-MAIN", ts, wh))
        day = ts.astimezone(zone).date().isoformat()
        per_day[day] = per_day.get(day, 0.0) + wh / 1000
        count[day] = count.get(day, 0) + 1
        ts += timedelta(minutes=15)
    post_readings(client, world, items)
    assert client.get("/").status_code == 200

    body = view(client, "analyst", range_choice="custom", start=first, end=last, bars="day")
    x, cons = bars(body["historical-consumption"]["figure"])
    days = [(d0 + timedelta(days=i)).isoformat() for i in range(3)]
    assert x == days
    assert [count[d] for d in days] == [4 * h for h in hours]  # 96, 100 or 92 quarter hours
    assert cons == [pytest.approx(per_day[d]) for d in days]
    labels = body["historical-consumption"]["figure"]["data"][0]["customdata"]
    assert [re.search(r"\((\d+) h\)", label).group(1) for label in labels] == [str(h) for h in hours]
    summary = body["historical-summary"]["children"]
    assert kwh(text_of(summary, "historical-consumption-total")) == pytest.approx(
        sum(per_day[d] for d in days)
    )
    assert text_of(summary, "historical-coverage").startswith("3 / 3")
    lo_n, hi_n = lo.replace(tzinfo=None), hi.replace(tzinfo=None)
    rows = service(app, factory, "analyst", "day", lo_n, hi_n)
    assert cons == [row["consumption_kwh"] for row in rows]

    # "Auto" over a longer range around the change is daily too: one bar per local day, gaps as None
    start = (d0 - timedelta(days=14)).isoformat()  # 17 local days: more than 14
    body = view(client, "analyst", range_choice="custom", start=start, end=last)
    x, cons = bars(body["historical-consumption"]["figure"])
    assert len(x) == 17 and x[-3:] == days and cons[-3:] == [pytest.approx(per_day[d]) for d in days]
    assert cons[:13] == [None] * 13  # days without readings: no bar
    assert cons[13] == pytest.approx(per_day[(d0 - timedelta(days=1)).isoformat()])  # its last 2 hours

    # hourly bars over the change day: 25 (or 23) buckets, the sum unchanged
    change = days[1]
    body = view(client, "analyst", range_choice="custom", start=change, end=change, bars="hour")
    x, cons = bars(body["historical-consumption"]["figure"])
    assert len(x) == hours[1]
    assert sum(cons) == pytest.approx(per_day[change])
    if hours[1] == 25:
        assert len(set(x)) == 24  # the repeated local hour: two buckets, both kept
        labels = body["historical-consumption"]["figure"]["data"][0]["customdata"]
        assert any("03:00 EEST" in label for label in labels) and any(
            "03:00 EET" in label for label in labels
        )


def test_consumer_sees_only_their_house(hist, world):
    body = view(hist, "consumer", range_choice="7d")
    _x, cons = bars(body["historical-consumption"]["figure"])
    assert [v for v in cons if v is not None] == [pytest.approx(1.0)] * 5  # house A only, never B's 9
    _x, prod = bars(body["historical-production"]["figure"])
    assert sum(v for v in prod if v is not None) == pytest.approx(0.4)  # no park: it is not their house
    summary = body["historical-summary"]["children"]
    assert kwh(text_of(summary, "historical-consumption-total")) == pytest.approx(5.0)


def test_consumer_forging_house_b_or_a_community_gets_no_data(hist, world):
    csrf = cookie_login(hist, "consumer")
    for forged, words in ((str(world.house2), "house"), (f"c{world.community}", "community"),
                          ("999999", "house"), ("c999999", "community"), ("not-a-number", "house")):  # fmt: skip
        r = post(hist, payload(range_choice="7d", choice=forged), csrf)
        assert r.status_code == 200
        body = r.json["response"]
        assert body["historical-message"]["is_open"] is True
        assert body["historical-message"]["color"] == "danger"
        assert f"{words} is not in your scope" in body["historical-message"]["children"]
        assert body["historical-summary"]["children"] is None
        for graph in ("historical-consumption", "historical-production"):
            assert body[graph]["figure"]["data"] == []
        text = r.get_data(as_text=True)
        assert "9.0" not in text and "House B" not in text


def test_no_cookie_is_refused(hist):
    for body in (payload(), toggle_payload("custom")):
        r = post(hist, body)
        assert r.status_code == 401
        assert "consumption" not in r.get_data(as_text=True).lower()


def test_third_party_user_is_refused(hist):
    csrf = cookie_login(hist, "partner")
    assert post(hist, payload(), csrf).status_code == 401
    assert post(hist, toggle_payload("custom"), csrf).status_code == 401


def test_bad_inputs_show_a_message_not_a_crash(hist):
    csrf = cookie_login(hist, "analyst")
    cases = [
        (payload("custom", "2025-10-27", "2025-10-25"), "must not be before the start date"),
        (payload("custom", None, "2025-10-25"), "start_date"),
        (payload("custom", "yesterday", "2025-10-25"), "start_date"),
        (payload("custom", "1990-01-01", "2025-10-25"), "at most 5,000 local days"),
        (payload("1y"), "range"),
    ]
    for body, words in cases:
        r = post(hist, body, csrf)
        assert r.status_code == 200
        out = r.json["response"]
        assert out["historical-message"]["color"] == "danger" and out["historical-message"]["is_open"]
        assert words in out["historical-message"]["children"]
        assert out["historical-consumption"]["figure"]["data"] == []


def test_a_future_custom_range_is_refused_with_the_reason(hist):
    today = datetime.now(ZoneInfo(ZONE_NAME)).date()
    start, end = (today + timedelta(days=10)).isoformat(), (today + timedelta(days=12)).isoformat()
    body = view(hist, "analyst", range_choice="custom", start=start, end=end)
    message = body["historical-message"]
    assert message["color"] == "danger" and message["is_open"]
    assert f"{start} is in the future" in message["children"] and today.isoformat() in message["children"]
    assert body["historical-consumption"]["figure"]["data"] == []
    assert "balanced" not in str(body["historical-summary"]["children"])


def test_a_range_reaching_past_today_is_clamped_to_today_and_says_so(hist):
    today = datetime.now(ZoneInfo(ZONE_NAME)).date()
    start, end = (today - timedelta(days=1)).isoformat(), (today + timedelta(days=5)).isoformat()
    body = view(hist, "analyst", range_choice="custom", start=start, end=end)
    assert "Days after today" in body["historical-message"]["children"]
    assert body["historical-message"]["color"] == "info" and body["historical-message"]["is_open"]
    assert f"local days {start} to {today.isoformat()} (2 days" in body["historical-caption"]["children"]
    x, _cons = bars(body["historical-consumption"]["figure"])
    assert len(x) in (2 * 96 - 4, 2 * 96, 2 * 96 + 4)  # yesterday and today, no future bars


def test_a_range_without_readings_is_not_called_balanced(hist):
    body = view(hist, "analyst", range_choice="custom", start="2020-01-01", end="2020-01-03")
    assert body["historical-message"]["children"] == "No readings in this range."
    summary = str(body["historical-summary"]["children"])
    assert "balanced" not in summary and "no readings in this range" in summary
    assert text_of(body["historical-summary"]["children"], "historical-coverage").startswith("0 / ")


def test_the_date_picker_stops_at_today(hist):
    csrf = cookie_login(hist, "analyst")
    text = post(hist, router_payload("/historical"), csrf).get_data(as_text=True)
    today = datetime.now(ZoneInfo(ZONE_NAME)).date().isoformat()
    assert f'"max_date_allowed": "{today}"' in text or f'"max_date_allowed":"{today}"' in text


def test_custom_controls_are_enabled_only_for_custom(hist):
    csrf = cookie_login(hist, "consumer")
    for range_choice, disabled in (("custom", False), ("24h", True), ("7d", True)):
        out = post(hist, toggle_payload(range_choice, ("historical-dates", "disabled")), csrf).json
        assert out["response"]["historical-dates"]["disabled"] is disabled
        out = post(hist, toggle_payload(range_choice, ("historical-bars", "options")), csrf).json
        assert {o["disabled"] for o in out["response"]["historical-bars"]["options"]} == {disabled}


def test_page_scope_dropdown_is_built_from_the_callers_scope(hist):
    csrf = cookie_login(hist, "consumer")
    text = post(hist, router_payload("/historical"), csrf).get_data(as_text=True)
    assert "historical-consumption" in text and "All my houses" in text
    assert "House A" in text and "House B" not in text and "Solar Street" not in text

    csrf = cookie_login(hist, "analyst")
    text = post(hist, router_payload("/historical"), csrf).get_data(as_text=True)
    assert "All houses" in text and "Community: Solar Street" in text and "House B" in text


def test_anonymous_page_router_gets_the_login_prompt(hist):
    text = post(hist, router_payload("/historical")).get_data(as_text=True)
    assert "Please log in" in text and "historical-consumption" not in text
