"""A page's state in its URL, through Dash's real endpoints on PostgreSQL: the layout reads the query string
(checked on the server: hostile or foreign values fall back to the defaults with a notice and show no
data), the controls write it back, and the range picker's previous / next, zoom and bar clicks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.clock import clear_of, local_today_clear_of_midnight
from tests.ui.helpers import callback_payload, component, cookie_login, router_payload, url_sync_payload

ZONE = ZoneInfo("Europe/Athens")
URL_IN = (
    ("historical-range", "value"),
    ("historical-dates", "start_date"),
    ("historical-dates", "end_date"),
    ("historical-bars", "value"),
    ("historical-scope", "value"),
)
PICK_OUT = [
    ("historical-range", "value"),
    ("historical-dates", "start_date"),
    ("historical-dates", "end_date"),
    ("historical-bars", "value"),
]


def post(client, body, headers):
    return client.post("/_dash-update-component", json=body, headers=headers)


def page(client, csrf, path, search):
    r = post(client, router_payload(path, search), csrf)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.json["response"]["_pages_content"]["children"]


def url_of(app, client, csrf, values):
    r = post(client, url_sync_payload(app, "historical", values), csrf)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.json["response"]["historical-url"]["search"]


def pick(client, csrf, trigger, controls, event=None, graph="historical-consumption"):
    """The range picker's callback: `trigger` is previous, next, zoom or zoomout (the browser's picker event
    from a chart: callbacks/ranges.py PICKER_EVENT_JS) or click (a bar of `graph`)."""
    picked = (
        {"trigger": trigger, "graph": graph, "event": event, "at": 1} if trigger.startswith("zoom") else None
    )
    inputs = [
        ("historical-previous", "n_clicks", 1 if trigger == "previous" else None),
        ("historical-next", "n_clicks", 1 if trigger == "next" else None),
        ("historical-range-event", "data", picked),
        ("historical-consumption", "clickData", event if trigger == "click" else None),
        ("historical-production", "clickData", None),
    ]
    changed = {"previous": "historical-previous.n_clicks", "next": "historical-next.n_clicks",
               "click": f"{graph}.clickData"}.get(trigger, "historical-range-event.data")  # fmt: skip
    states = [(i, p, v) for (i, p), v in zip(PICK_OUT, controls, strict=True)]
    r = post(client, callback_payload(PICK_OUT, inputs, states, changed), csrf)
    if r.status_code == 204:  # PreventUpdate / no_update everywhere
        return None
    assert r.status_code == 200, r.get_data(as_text=True)
    out = r.json["response"]
    return (
        out["historical-range"]["value"],
        out["historical-dates"]["start_date"],
        out["historical-dates"]["end_date"],
        out["historical-bars"]["value"],
    )


def today() -> date:
    return datetime.now(UTC).astimezone(ZONE).date()


@pytest.fixture
def ui(client, world):
    assert client.get("/").status_code == 200
    local_today_clear_of_midnight()  # the tests read today() and have the app read its own seconds later
    return client


def test_a_shared_link_opens_the_same_historical_view(ui, world):
    csrf = cookie_login(ui, "analyst")
    search = f"?range=custom&from=2026-10-20&to=2026-10-31&bars=day&scope={world.house2}"
    tree = page(ui, csrf, "/historical", search)
    assert component(tree, "historical-range")["value"] == "custom"
    dates = component(tree, "historical-dates")
    assert (dates["start_date"], dates["end_date"], dates["disabled"]) == ("2026-10-20", "2026-10-31", False)
    assert component(tree, "historical-bars")["value"] == "day"
    assert component(tree, "historical-scope")["value"] == str(world.house2)
    assert component(tree, "historical-url")["search"] == search  # already canonical: kept as is
    assert component(tree, "historical-url-notice")["is_open"] is False


def test_hostile_url_values_fall_back_to_the_defaults_with_a_notice(ui, world):
    csrf = cookie_login(ui, "analyst")
    search = "?range=%3Cscript%3E&from=yesterday&to=2026-02-30&bars=1s&scope=1%20OR%201%3D1&range2=x"
    tree = page(ui, csrf, "/historical", search)
    assert component(tree, "historical-range")["value"] == "24h"
    assert component(tree, "historical-bars")["value"] == "auto"
    assert component(tree, "historical-scope")["value"] == "all"
    notice = component(tree, "historical-url-notice")
    assert notice["is_open"] is True
    for key in ("'range'", "'bars'", "'scope'"):
        assert key in notice["children"]
    assert "<script>" not in str(tree)
    assert component(tree, "historical-url")["search"] == ""  # the address bar is cleaned at once
    # a repeated key (a list) and control characters are refused too
    tree = page(ui, csrf, "/historical", "?range=7d&range=30d&scope=%0A1")
    assert component(tree, "historical-range")["value"] == "24h"
    assert component(tree, "historical-scope")["value"] == "all"


def test_a_link_to_another_households_house_shows_the_consumers_own_default(ui, world, app):
    csrf = cookie_login(ui, "consumer")  # house 1 only
    for foreign in (str(world.house2), f"c{world.community}", "999999"):
        tree = page(ui, csrf, "/historical", f"?range=7d&scope={foreign}")
        assert component(tree, "historical-range")["value"] == "7d"  # the rest of the link still applies
        assert component(tree, "historical-scope")["value"] == "all"
        options = [o["value"] for o in component(tree, "historical-scope")["options"]]
        assert foreign not in options
        notice = component(tree, "historical-url-notice")
        assert notice["is_open"] and "not in your scope" in notice["children"]
        assert component(tree, "historical-url")["search"] == "?range=7d"
    # the controls' callback never writes a foreign scope into the URL either
    assert url_of(app, ui, csrf, ["7d", None, None, "auto", str(world.house2)]) == "?range=7d"
    assert (
        url_of(app, ui, csrf, ["7d", None, None, "auto", str(world.house1)])
        == f"?range=7d&scope={world.house1}"
    )


def test_controls_round_trip_through_the_url(ui, world, app):
    csrf = cookie_login(ui, "analyst")
    values = ["custom", "2026-03-01", "2026-03-31", "hour", f"c{world.community}"]
    search = url_of(app, ui, csrf, values)
    assert search == f"?range=custom&from=2026-03-01&to=2026-03-31&bars=hour&scope=c{world.community}"
    tree = page(ui, csrf, "/historical", search)  # a reload of that URL gives the same controls
    got = [component(tree, i)[p] for i, p in URL_IN]
    assert got == values
    # defaults are left out; the dates only for a custom range
    assert url_of(app, ui, csrf, ["24h", "2026-03-01", "2026-03-31", "auto", "all"]) == ""
    assert url_of(app, ui, csrf, ["30d", "2026-03-01", "2026-03-31", "auto", "all"]) == "?range=30d"
    # a bad control value is left out of the URL rather than written
    assert (
        url_of(app, ui, csrf, ["custom", "nope", "2026-03-31", "auto", "all"])
        == "?range=custom&to=2026-03-31"
    )


def test_back_and_forward_set_the_controls_from_the_url(ui, world, app):
    """The browser went back (or forward) within the page: the page's Location has the URL's query and the
    controls take its values (checked like a link's); nothing is written back to the URL."""
    csrf = cookie_login(ui, "consumer")  # house 1 only
    drilled = ["custom", "2026-03-05", "2026-03-05", "hour", str(world.house1)]

    def back_to(search, controls=drilled):
        r = post(ui, url_sync_payload(app, "historical", controls, search), csrf)
        if r.status_code == 204:  # nothing to change
            return None
        assert r.status_code == 200, r.get_data(as_text=True)
        out = r.json["response"]
        assert "historical-url" not in out
        return {f"{i}.{p}": v for i, props in out.items() for p, v in props.items()}

    assert back_to(f"?range=custom&from=2026-03-01&to=2026-03-07&bars=day&scope={world.house1}") == {
        "historical-dates.start_date": "2026-03-01", "historical-dates.end_date": "2026-03-07",
        "historical-bars.value": "day"}  # fmt: skip
    # the first URL of the visit: the defaults it left out apply; what a preset range leaves out of the URL
    # (the custom dates and bar size) keeps its value for when a custom range is chosen again
    assert back_to("") == {"historical-range.value": "24h", "historical-scope.value": "all"}
    assert back_to(f"?range=custom&from=2026-03-05&to=2026-03-05&bars=hour&scope={world.house1}") is None
    # a URL is untrusted: another household's house or junk falls back to the defaults
    assert back_to(f"?range=7d&scope={world.house2}")["historical-scope.value"] == "all"
    assert back_to("?range=%3Cscript%3E&bars=day&scope=1%20OR%201%3D1") == {
        "historical-range.value": "24h", "historical-bars.value": "day", "historical-scope.value": "all"}  # fmt: skip


def test_url_callback_refuses_anonymous_callers(ui, app):
    for search in (None, "?range=7d"):  # a control changed; the browser went back
        r = ui.post("/_dash-update-component", json=url_sync_payload(app, "historical", [None] * 5, search))
        assert r.status_code == 401


def test_previous_and_next_shift_by_the_ranges_length_across_dst(ui, world):
    csrf = cookie_login(ui, "analyst")
    # Europe/Athens leaves summer time on 2025-10-26: the week 10-20..10-26 holds a 25-hour day
    assert pick(ui, csrf, "next", ["custom", "2025-10-20", "2025-10-26", "day"]) == (
        "custom", "2025-10-27", "2025-11-02", "auto")  # fmt: skip
    assert pick(ui, csrf, "previous", ["custom", "2025-10-27", "2025-11-02", "auto"]) == (
        "custom", "2025-10-20", "2025-10-26", "auto")  # fmt: skip
    # whole months move by calendar months (28, 30 or 31 days)
    assert pick(ui, csrf, "previous", ["custom", "2025-03-01", "2025-03-31", "auto"])[1:3] == (
        "2025-02-01", "2025-02-28")  # fmt: skip
    # a preset's previous is the same length just before it; next is refused at now
    t = today()
    assert pick(ui, csrf, "previous", ["7d", None, None, "auto"])[1:3] == (
        (t - timedelta(days=13)).isoformat(), (t - timedelta(days=7)).isoformat())  # fmt: skip
    assert (
        pick(ui, csrf, "previous", ["month", None, None, "auto"])[1]
        == (t.replace(day=1) - timedelta(days=1)).replace(day=1).isoformat()
    )
    assert pick(ui, csrf, "next", ["7d", None, None, "auto"]) is None
    assert (
        pick(ui, csrf, "next", ["custom", (t - timedelta(days=2)).isoformat(), t.isoformat(), "auto"]) is None
    )
    # a next step that would pass today ends today, with the same length
    start = (t - timedelta(days=10)).isoformat()
    assert pick(ui, csrf, "next", ["custom", start, (t - timedelta(days=4)).isoformat(), "auto"])[1:3] == (
        (t - timedelta(days=6)).isoformat(), t.isoformat())  # fmt: skip


def test_the_dst_week_shifted_in_is_drawn_with_its_25_hour_day(ui, world):
    from callbacks.historical import window_for

    now = datetime(2025, 12, 1, 12)
    window = window_for("custom", "2025-10-20", "2025-10-26", "hour", "Europe/Athens", now)
    assert len(window.buckets) == 7 * 24 + 1  # the autumn change day has 25 hours


def test_zoom_on_a_chart_becomes_the_range(ui):
    csrf = cookie_login(ui, "analyst")
    zoom = {"xaxis.range[0]": "2025-10-21 05:30:00", "xaxis.range[1]": "2025-10-23 00:00"}
    assert pick(ui, csrf, "zoom", ["7d", None, None, "auto"], zoom) == (
        "custom",
        "2025-10-21",
        "2025-10-22",
        "auto",
    )
    zoom = {"xaxis.range": ["2025-10-21", "2025-10-25 12:00"]}
    assert pick(ui, csrf, "zoom", ["30d", None, None, "auto"], zoom)[1:3] == ("2025-10-21", "2025-10-25")
    # a zoom inside one day is that day (the range is whole local days)
    zoom = {"xaxis.range[0]": "2025-10-26 02:10", "xaxis.range[1]": "2025-10-26 03:50:00.5"}
    assert pick(ui, csrf, "zoom", ["7d", None, None, "hour"], zoom) == (
        "custom",
        "2025-10-26",
        "2025-10-26",
        "auto",
    )
    # junk, or a zoom from a chart that is not the page's, changes nothing
    for other in ({"xaxis.autorange": True}, {"autosize": True}, None, "x",
                  {"xaxis.range[0]": "<b>", "xaxis.range[1]": "x"}, {"xaxis.range": "nope"},
                  {"xaxis.range": [3.5, 7.5]}):  # fmt: skip
        assert pick(ui, csrf, "zoom", ["7d", None, None, "auto"], other) is None
    assert pick(ui, csrf, "zoom", ["7d", None, None, "auto"], zoom, graph="analytics-anomaly-graph") is None
    # a zoom reaching into the future stops at today
    future = (today() + timedelta(days=3)).isoformat()
    assert (
        pick(ui, csrf, "zoom", ["7d", None, None, "auto"], {"xaxis.range": [today().isoformat(), future]})[2]
        == today().isoformat()
    )


def test_a_double_click_zooms_out_as_grafana_does(ui):
    """Plotly's double-click (autorange) on a time axis: the range twice as long around its middle, moved
    back to end today when it would pass it; browser Back returns to the range before (the URL's history)."""
    csrf = cookie_login(ui, "analyst")
    t = today()
    assert pick(ui, csrf, "zoomout", ["custom", "2025-10-21", "2025-10-22", "hour"]) == (
        "custom", "2025-10-20", "2025-10-23", "auto")  # fmt: skip
    assert pick(ui, csrf, "zoomout", ["custom", "2025-10-21", "2025-10-21", "auto"])[1:3] == (
        "2025-10-20", "2025-10-21")  # fmt: skip
    # a preset's days are the server's: 7 d -> 14 days, which end today
    assert pick(ui, csrf, "zoomout", ["7d", "2020-01-01", "2020-01-02", "auto"])[1:3] == (
        (t - timedelta(days=13)).isoformat(), t.isoformat())  # fmt: skip
    # at most the page's limit (Historical: 5,000 local days), the last ones kept
    assert pick(ui, csrf, "zoomout", ["custom", (t - timedelta(days=3999)).isoformat(), t.isoformat(), "day"])[
        1:3] == ((t - timedelta(days=4999)).isoformat(), t.isoformat())  # fmt: skip
    assert pick(ui, csrf, "zoomout", ["custom", "yesterday", t.isoformat(), "auto"]) is None
    assert pick(ui, csrf, "zoomout", ["custom", "2025-10-22", "2025-10-21", "auto"]) is None  # reversed


def test_clicking_a_bar_drills_down(ui):
    csrf = cookie_login(ui, "analyst")
    day_bar = {"points": [{"x": "2025-10-26", "y": 3.0, "curveNumber": 0, "pointNumber": 6}]}
    assert pick(ui, csrf, "click", ["custom", "2025-10-01", "2025-10-31", "auto"], day_bar) == (
        "custom", "2025-10-26", "2025-10-26", "hour")  # fmt: skip
    hour_bar = {"points": [{"x": "2025-10-26T03:00:00", "y": 1.0}]}
    assert pick(ui, csrf, "click", ["custom", "2025-10-26", "2025-10-26", "hour"], hour_bar) == (
        "custom", "2025-10-26", "2025-10-26", "15min")  # fmt: skip
    # 15-minute bars are the finest: nothing to drill into; junk clicks change nothing
    assert pick(ui, csrf, "click", ["custom", "2025-10-26", "2025-10-26", "15min"], hour_bar) is None
    assert pick(ui, csrf, "click", ["custom", "2025-10-26", "2025-10-26", "hour"], {"points": "x"}) is None


def test_range_picker_refuses_anonymous_callers(ui):
    body = callback_payload(PICK_OUT, [("historical-previous", "n_clicks", 1)])
    assert ui.post("/_dash-update-component", json=body).status_code in (401, 403)


def test_the_unfinished_current_bucket_is_marked_so_far_not_drawn_as_a_drop(ui, world):
    now = clear_of(timedelta(hours=1)).replace(tzinfo=UTC)  # the page must draw this hour as its last bar
    hour = now.replace(minute=0, second=0, microsecond=0)
    items = [{"device_id": "H1-MAIN", "timestamp": (hour - timedelta(hours=1)).isoformat(), "power_w": 4000.0,
              "energy_wh": 1000.0},
             {"device_id": "H1-MAIN", "timestamp": hour.isoformat(), "power_w": 400.0, "energy_wh": 100.0}]  # fmt: skip
    r = ui.post("/api/v1/measurements", json={"measurements": items}, headers=world.headers["admin"])
    assert r.status_code == 200, r.get_data(as_text=True)
    csrf = cookie_login(ui, "analyst")
    outputs = [("historical-consumption", "figure"), ("historical-production", "figure"),
               ("historical-summary", "children"), ("historical-caption", "children"),
               ("historical-message", "children"), ("historical-message", "color"),
               ("historical-message", "is_open")]  # fmt: skip
    values = ("24h", None, None, "auto", "all")
    inputs = [(i, p, v) for (i, p), v in zip(URL_IN, values, strict=True)]
    r = post(ui, callback_payload(outputs, inputs), csrf)
    assert r.status_code == 200, r.get_data(as_text=True)
    trace = r.json["response"]["historical-consumption"]["figure"]["data"][0]
    last = len(trace["x"]) - 1
    assert trace["y"][last] == pytest.approx(0.1) and trace["y"][last - 1] == pytest.approx(1.0)
    assert trace["marker"]["pattern"]["shape"][last] == "/"
    assert set(trace["marker"]["pattern"]["shape"][:last]) == {""}  # finished hours stay solid
    assert trace["marker"]["opacity"][last] < 1.0
    assert "so far" in trace["customdata"][last] and "so far" not in trace["customdata"][last - 1]
    # a range of past days has no unfinished bar
    past = [("custom", "2025-01-01", "2025-01-07", "auto", "all")]
    inputs = [(i, p, v) for (i, p), v in zip(URL_IN, past[0], strict=True)]
    trace = post(ui, callback_payload(outputs, inputs), csrf).json["response"]["historical-consumption"]
    assert "pattern" not in trace["figure"]["data"][0]["marker"]
