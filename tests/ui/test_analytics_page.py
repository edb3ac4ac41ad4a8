"""The Analytics page's callbacks through Dash's real endpoint, on PostgreSQL.

Readings posted through the API hold a known voltage sag and swell and a known power-factor drop for
house A (and an interruption, a poor power factor and a far larger load for house B, so a leak shows).
Each section must show exactly what the analytics service computes for the same local days and scope,
and that must be the posted truth. The anomaly list is scored against the demo generator's injected
ground truth, as tests/api/test_analytics_scoped.py scores the service."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from callbacks.analytics import NO_SCAN, SCAN_NOT_RUNNING, Request
from callbacks.analytics_figures import ANOMALY_KINDS
from callbacks.common import local_days_range
from dashboard import analytics, analytics_scan
from dashboard.auth import create_user, hash_password, user_scope
from dashboard.schema import Device, House, InjectedAnomaly, Measurement, User
from dashboard.seed import seed_demo
from jobs.analytics import SCAN_PREFIX, scan_digest
from pages.analytics import MAX_DAYS, default_range
from tests.api.test_analytics_scoped import CONSUMPTION_KINDS, overlaps
from tests.clock import local_today_clear_of_midnight
from tests.factories import PASSWORD
from tests.ui.helpers import callback_payload, component, cookie_login, router_payload

INPUTS = ("analytics-scope.value", "analytics-dates.start_date", "analytics-dates.end_date")
SECTIONS = {
    "anomaly": ["analytics-anomaly-counts", "analytics-anomaly-table"],
    "voltage": ["analytics-voltage-table"],
    "pf": ["analytics-pf-table"],
    "profile": ["analytics-profile-stats"],
}
A_WH, B_WH = 20.0, 150.0  # per one-minute reading: house B uses far more, so a leak shows
SAG_MINUTES, SWELL_MINUTES = range(10, 13), range(30, 32)  # house A: 3 min at 200 V, 2 min at 260 V
LOW_PF_MINUTES = range(60, 90)  # house A: 30 of 120 minutes at power factor 0.80
INTERRUPTION_MINUTES = range(40, 45)  # house B only: 5 min at 5 V


# the anomaly card's background scan (several houses): job id, poll timer, progress bar
SCAN_OUTPUTS = [
    ("analytics-anomaly-job", "data"),
    ("analytics-anomaly-poll", "disabled"),
    ("analytics-anomaly-progress", "value"),
    ("analytics-anomaly-progress", "label"),
    ("analytics-anomaly-progress-text", "children"),
    ("analytics-anomaly-progress-box", "style"),
]
POLL = "analytics-anomaly-poll.n_intervals"
STORE = "analytics-anomaly-job.data"
TABS = "analytics-tabs.value"
BACKGROUND = ("voltage", "pf")  # for several houses these cards read the anomaly scan's finished result


def outputs_of(section: str) -> list[tuple[str, str]]:
    prefix = f"analytics-{section}"
    base = [(f"{prefix}-message", p) for p in ("children", "color", "is_open")] + [
        (f"{prefix}-graph", "figure")
    ]
    extra = SCAN_OUTPUTS if section == "anomaly" else []
    shown = [(f"{prefix}-shown", "data")]  # the request the tab shows (so it is not computed again)
    return base + [(component, "children") for component in SECTIONS[section]] + shown + extra


def payload(
    section: str, choice, start, end, job=None, tick: int | None = None, tab=None, shown=None
) -> dict:
    """A callback request as the page sends it, with `section`'s tab shown unless `tab` names another;
    for the anomaly card `tick` makes it a poll of `job`; `shown` is the section's "shown" store."""
    outputs = outputs_of(section)
    inputs = [
        {"id": key.split(".")[0], "property": key.split(".")[1], "value": value}
        for key, value in zip(INPUTS, (choice, start, end), strict=True)
    ]
    tab_input = {"id": "analytics-tabs", "property": "value", "value": tab or section}
    changed = [POLL] if tick is not None else [TABS] if tab is not None else ["analytics-scope.value"]
    if section == "anomaly":
        inputs.append({"id": "analytics-anomaly-poll", "property": "n_intervals", "value": tick or 0})
        inputs.append(tab_input)
        state = [{"id": "analytics-anomaly-job", "property": "data", "value": job}]
    elif section in BACKGROUND:  # the store is an input: its change (scan done) fills these cards
        inputs += [tab_input, {"id": "analytics-anomaly-job", "property": "data", "value": job}]
        state = []
        changed = [STORE] if job is not None else changed
    else:
        inputs.append(tab_input)
        state = []
    state.append({"id": f"analytics-{section}-shown", "property": "data", "value": shown})
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": inputs,
        "changedPropIds": changed,
        "state": state,
    }


def post(client, section, choice, start, end, headers=None, job=None, tick=None, tab=None, shown=None):
    return client.post(
        "/_dash-update-component",
        json=payload(section, choice, start, end, job, tick, tab, shown),
        headers=headers or {},
    )


def poll(client, csrf, choice, start, end, job, tick: int = 1) -> dict:
    r = post(client, "anomaly", choice, start, end, csrf, job=job, tick=tick)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.json["response"]


def scan(client, csrf, choice, start, end, timeout_s: float = 60.0) -> tuple[dict, dict]:
    """The anomaly card as the page drives it: the range's response, then polls (as dcc.Interval fires)
    until polling stops; the first and the last response."""
    first = body = section(client, csrf, "anomaly", choice, start, end)
    job, tick = first["analytics-anomaly-job"]["data"], 0
    deadline = time.monotonic() + timeout_s
    while body["analytics-anomaly-poll"]["disabled"] is False:
        assert time.monotonic() < deadline, "the anomaly scan did not finish"
        time.sleep(0.05)
        tick += 1
        body = poll(client, csrf, choice, start, end, job, tick)
        job = body.get("analytics-anomaly-job", {}).get("data", job)
    return first, body


def section(client, csrf, name, choice, start, end, job=None, **kwargs) -> dict:
    r = post(client, name, choice, start, end, csrf, job=job, **kwargs)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.json["response"]


def scanned(client, csrf, name, choice, start, end) -> dict:
    """A voltage or power-factor card for several houses as the page fills it: the anomaly card's scan
    runs to its end, whose store value ({"job", "done"}) is this card's input."""
    _first, done = scan(client, csrf, choice, start, end)
    store = done["analytics-anomaly-job"]["data"]
    assert store["done"] is True
    return section(client, csrf, name, choice, start, end, job=store)


def cells(component) -> list[list[str]]:
    """The body rows of a dbc.Table in a callback response, as lists of cell texts."""
    rows: list[list[str]] = []

    def walk(node):
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, dict):
            if node.get("type") == "Tbody":
                for tr in _list(node["props"].get("children")):
                    rows.append([str(td["props"].get("children")) for td in _list(tr["props"]["children"])])
            else:
                walk(node.get("props", {}).get("children"))

    walk(component)
    return rows


def _list(value) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


def traces(figure: dict) -> dict[str, dict]:
    return {t.get("name"): t for t in figure["data"]}


def reading(serial, ts, wh, volts, pf) -> dict:
    return {"device_id": serial, "timestamp": ts.astimezone(UTC).isoformat(), "power_w": 60 * wh,
            "energy_wh": wh, "voltage_v": volts, "power_factor": pf}  # fmt: skip


@pytest.fixture
def analytics_ui(client, world, app):
    """Two hours of one-minute readings three local days ago and one hour five days ago, both houses."""
    timezone = app.server.extensions["aggregator"].settings.timezone
    zone = ZoneInfo(timezone)
    local_today_clear_of_midnight(timezone)  # the preset and layout tests compare these days with the app's
    first, last = default_range(timezone)
    drop_day, plain_day = last - timedelta(days=3), last - timedelta(days=5)
    items = []
    t0 = datetime(drop_day.year, drop_day.month, drop_day.day, 10, tzinfo=zone)
    for m in range(120):
        ts = t0 + timedelta(minutes=m)
        volts = 200.0 if m in SAG_MINUTES else 260.0 if m in SWELL_MINUTES else 230.0
        wh = 2 * A_WH if 60 <= m < 75 else A_WH  # one quarter hour at twice the load: the peak
        items.append(reading("H1-MAIN", ts, wh, volts, 0.80 if m in LOW_PF_MINUTES else 0.97))
        items.append(reading("H2-MAIN", ts, B_WH, 5.0 if m in INTERRUPTION_MINUTES else 231.0, 0.5))
    t1 = datetime(plain_day.year, plain_day.month, plain_day.day, 10, tzinfo=zone)
    for m in range(60):
        ts = t1 + timedelta(minutes=m)
        items.append(reading("H1-MAIN", ts, A_WH, 230.0, 0.97))
        items.append(reading("H2-MAIN", ts, B_WH, 231.0, 0.5))
    r = client.post("/api/v1/measurements", json={"measurements": items}, headers=world.headers["admin"])
    assert r.status_code == 200, r.get_data(as_text=True)
    assert client.get("/").status_code == 200
    return {
        "client": client,
        "timezone": timezone,
        "start": first.isoformat(),
        "end": last.isoformat(),
        "drop_day": drop_day.isoformat(),
        "plain_day": plain_day.isoformat(),
    }


def service(app, factory, username, function, ui, **kwargs):
    """The analytics service called directly for the same local days, as the API would."""
    first, last = (datetime.fromisoformat(ui[k]).date() for k in ("start", "end"))
    start, end = local_days_range(first, last, ui["timezone"])
    with factory() as s:
        scope = user_scope(s, s.scalar(select(User).where(User.username == username)))
        if function is not analytics.voltage_events:
            kwargs["timezone"] = ui["timezone"]
        return function(s, scope, start, end, **kwargs)


def test_voltage_events_are_the_services_and_the_posted_sag_and_swell(analytics_ui, app, factory, world):
    ui = analytics_ui
    csrf = cookie_login(ui["client"], "analyst")
    body = section(ui["client"], csrf, "voltage", str(world.house1), ui["start"], ui["end"])
    rows = cells(body["analytics-voltage-table"]["children"])
    result = service(app, factory, "analyst", analytics.voltage_events, ui, house_id=world.house1)
    counts = {(s["kind"]): (s["count"], s["total_duration_s"]) for s in result["summary"]}
    # the posted truth: one 3-minute sag, one 2-minute swell, no interruption
    assert counts == {"sag": (1, 180.0), "swell": (1, 120.0), "interruption": (0, 0.0)}
    assert rows == [[f"House A (#{world.house1})", "1", "3.0", "1", "2.0", "0", "0.0"]]
    figure = body["analytics-voltage-graph"]["figure"]
    timeline = traces(figure)
    assert set(timeline) == {"Sag", "Swell"}
    for kind, name in (("sag", "Sag"), ("swell", "Swell")):
        event = next(e for e in result["events"] if e["kind"] == kind)
        start = datetime.fromisoformat(event["start"][:-1]).replace(tzinfo=UTC)
        local = start.astimezone(ZoneInfo(ui["timezone"])).replace(tzinfo=None)
        assert timeline[name]["x"][0].startswith(local.isoformat()[:16])
        assert timeline[name]["y"][:2] == [f"House A (#{world.house1})"] * 2
    assert "207" in body["analytics-voltage-message"]["children"]  # the EN 50160 thresholds are stated

    # all houses: from the background scan; house B's interruption too, one row per house
    body = scanned(ui["client"], csrf, "voltage", "all", ui["start"], ui["end"])
    rows = cells(body["analytics-voltage-table"]["children"])
    assert rows[1] == [f"House B (#{world.house2})", "0", "0.0", "0", "0.0", "1", "5.0"]
    assert set(traces(body["analytics-voltage-graph"]["figure"])) == {"Sag", "Swell", "Interruption"}
    everyone = service(app, factory, "analyst", analytics.voltage_events, ui)
    assert sum(int(r[1]) + int(r[3]) + int(r[5]) for r in rows) == len(everyone["events"]) == 3
    assert len(rows) == 2 and "3 event(s)" in body["analytics-voltage-message"]["children"]


def test_power_factor_trend_is_the_services_and_the_posted_drop(analytics_ui, app, factory, world):
    ui = analytics_ui
    csrf = cookie_login(ui["client"], "analyst")
    body = section(ui["client"], csrf, "pf", str(world.house1), ui["start"], ui["end"])
    days = service(app, factory, "analyst", analytics.power_factor_trend, ui, house_id=world.house1)
    assert [d["day"] for d in days] == [ui["plain_day"], ui["drop_day"]]
    drop = days[1]
    assert drop["share_below_0_9"] == pytest.approx(30 / 120)  # the posted truth
    assert drop["mean_power_factor"] == pytest.approx((30 * 0.80 + 90 * 0.97) / 120, abs=1e-4)
    figure = traces(body["analytics-pf-graph"]["figure"])
    line, bars = figure["Daily mean power factor"], figure["Time below 0.9 (%)"]
    assert line["x"] == bars["x"] == [d["day"] for d in days]
    assert line["y"] == [d["mean_power_factor"] for d in days]
    assert bars["y"] == [0.0, 25.0]
    # over the range: the service's days weighted by their hours of readings
    hours = sum(d["hours"] for d in days)
    mean = sum(d["mean_power_factor"] * d["hours"] for d in days) / hours
    share = sum(d["share_below_0_9"] * d["hours"] for d in days) / hours
    row = [f"House A (#{world.house1})", f"{mean:.3f}", f"{100 * share:.1f}", f"{hours:.1f}"]
    assert cells(body["analytics-pf-table"]["children"]) == [row]
    assert 0.9 < mean < 0.97 and 0 < share < 0.25
    assert body["analytics-pf-message"]["is_open"] is True
    assert f"{mean:.3f}" in body["analytics-pf-message"]["children"]

    # all houses, from the background scan: hours-weighted over both (house B is always at 0.5)
    body = scanned(ui["client"], csrf, "pf", "all", ui["start"], ui["end"])
    line = traces(body["analytics-pf-graph"]["figure"])["Daily mean power factor"]
    assert line["y"] == [
        pytest.approx((0.97 + 0.5) / 2, abs=1e-4),
        pytest.approx((drop["mean_power_factor"] + 0.5) / 2, abs=1e-4),
    ]
    rows = cells(body["analytics-pf-table"]["children"])
    assert [r[0] for r in rows] == [f"House B (#{world.house2})", f"House A (#{world.house1})"]
    assert rows[0][1:3] == ["0.500", "100.0"]


def test_load_profile_is_the_services(analytics_ui, app, factory, world):
    ui = analytics_ui
    csrf = cookie_login(ui["client"], "analyst")
    body = section(ui["client"], csrf, "profile", str(world.house1), ui["start"], ui["end"])
    profile = service(app, factory, "analyst", analytics.load_profile, ui, house_id=world.house1)
    assert profile["peak_kw"] == pytest.approx(15 * 2 * A_WH * 4 / 1000)  # the doubled quarter hour
    assert profile["energy_kwh"] == pytest.approx((180 + 15) * A_WH / 1000)
    stats = str(body["analytics-profile-stats"]["children"])
    assert f"{profile['peak_kw']:.2f} kW" in stats and f"{profile['load_factor']:.3f}" in stats
    assert f"{profile['energy_kwh']:.1f} kWh" in stats
    figure = body["analytics-profile-graph"]["figure"]
    for t in figure["data"]:
        key = "weekday" if t["name"].startswith("Weekdays") else "weekend"
        assert t["x"] == [s["slot"] for s in profile[key]]
        assert t["y"] == [s["mean_kw"] for s in profile[key]]
    assert sum(1 for t in figure["data"]) == sum(1 for k in ("weekday", "weekend") if profile["days"][k])

    everyone = service(app, factory, "analyst", analytics.load_profile, ui)
    body = section(ui["client"], csrf, "profile", "all", ui["start"], ui["end"])
    assert f"{everyone['peak_kw']:.2f} kW" in str(body["analytics-profile-stats"]["children"])
    assert everyone["peak_kw"] > profile["peak_kw"]


def test_house_bs_flat_meter_is_listed_as_stuck_and_house_a_has_none(analytics_ui, app, factory, world):
    """House B's meter repeats 150 Wh a minute for two hours: eight identical quarter hours, a stuck meter
    by the detector's rule. House A's load moves (one quarter hour doubles): no anomaly."""
    ui = analytics_ui
    csrf = cookie_login(ui["client"], "analyst")
    events = service(app, factory, "analyst", analytics.anomalies, ui)
    assert [(e["house_id"], e["kind"], e["score"]) for e in events] == [(world.house2, "stuck_meter", 2.0)]
    # all houses (two): a background scan, polled until its result is in
    _first, body = scan(ui["client"], csrf, "all", ui["start"], ui["end"])
    assert body["analytics-anomaly-progress-box"]["style"] == {"display": "none"}
    assert body["analytics-anomaly-job"]["data"]["job"].startswith(SCAN_PREFIX)
    drop = ui["drop_day"]
    assert cells(body["analytics-anomaly-table"]["children"]) == [
        [f"House B (#{world.house2})", "Stuck meter", f"{drop} 10:00", f"{drop} 12:00", "2.00 h stuck",
         "meter repeated 9.000 kW for 2 h"]
    ]  # fmt: skip
    counts = str(body["analytics-anomaly-counts"]["children"])
    assert "1 anomaly" in counts and "Stuck meter: 1" in counts and "Consumption spike: 0" in counts
    bars = traces(body["analytics-anomaly-graph"]["figure"])
    assert list(bars) == ["Stuck meter"] and bars["Stuck meter"]["y"] == [1]
    assert body["analytics-anomaly-message"]["is_open"] is False

    body = section(ui["client"], csrf, "anomaly", str(world.house2), ui["start"], ui["end"])
    figure = body["analytics-anomaly-graph"]["figure"]
    [shade] = figure["layout"]["shapes"]
    assert (shade["x0"][:16], shade["x1"][:16]) == (f"{drop}T10:00", f"{drop}T12:00")
    marks = traces(figure)["Anomaly: Stuck meter"]
    assert marks["y"] == [pytest.approx(B_WH * 60 / 1000)]

    body = section(ui["client"], csrf, "anomaly", str(world.house1), ui["start"], ui["end"])
    assert body["analytics-anomaly-message"]["is_open"] is True
    assert "No anomalies found for House A" in body["analytics-anomaly-message"]["children"]
    assert body["analytics-anomaly-table"]["children"] == []
    assert body["analytics-anomaly-graph"]["figure"]["layout"].get("shapes", []) == []
    consumption = traces(body["analytics-anomaly-graph"]["figure"])["Consumption (kW)"]
    assert max(v for v in consumption["y"] if v is not None) == pytest.approx(2 * A_WH * 60 / 1000)


def test_consumer_sees_only_their_house(analytics_ui, world):
    ui = analytics_ui
    csrf = cookie_login(ui["client"], "consumer")
    body = section(ui["client"], csrf, "voltage", "all", ui["start"], ui["end"])
    assert [r[0] for r in cells(body["analytics-voltage-table"]["children"])] == [
        f"House A (#{world.house1})"
    ]
    assert "Interruption" not in traces(body["analytics-voltage-graph"]["figure"])
    body = section(ui["client"], csrf, "pf", "all", ui["start"], ui["end"])
    assert traces(body["analytics-pf-graph"]["figure"])["Time below 0.9 (%)"]["y"] == [0.0, 25.0]
    for name in SECTIONS:
        text = post(ui["client"], name, "all", ui["start"], ui["end"], csrf).get_data(as_text=True)
        assert "House B" not in text


def test_all_my_houses_with_one_house_draws_that_houses_charts(analytics_ui, world):
    """A consumer with one house: "All my houses" shows what "House A" shows, never an empty chart."""
    ui = analytics_ui
    csrf = cookie_login(ui["client"], "consumer")
    for name in SECTIONS:
        one = section(ui["client"], csrf, name, str(world.house1), ui["start"], ui["end"])
        mine = section(ui["client"], csrf, name, "all", ui["start"], ui["end"])
        figure = mine[f"analytics-{name}-graph"]["figure"]
        assert figure["data"] and any(trace.get("y") for trace in figure["data"]), name
        assert figure["data"] == one[f"analytics-{name}-graph"]["figure"]["data"], name
    mine = section(ui["client"], csrf, "anomaly", "all", ui["start"], ui["end"])
    assert "analytics-anomaly-job" not in mine or not mine["analytics-anomaly-job"]["data"]  # no scan


def test_consumer_posting_another_house_gets_no_data(analytics_ui, world):
    ui = analytics_ui
    csrf = cookie_login(ui["client"], "consumer")
    for forged in (str(world.house2), "999999", "not-a-number", f"c{world.community}"):
        for name in SECTIONS:
            r = post(ui["client"], name, forged, ui["start"], ui["end"], csrf)
            assert r.status_code == 200
            body = r.json["response"]
            alert = body[f"analytics-{name}-message"]
            assert alert["is_open"] is True and alert["color"] == "danger"
            assert "not in your scope" in alert["children"] or "choose a house" in alert["children"]
            assert all(body[c]["children"] == [] for c in SECTIONS[name])
            assert body[f"analytics-{name}-graph"]["figure"]["data"] == []
            text = r.get_data(as_text=True)
            assert "House B" not in text and "Interruption" not in text


def test_no_cookie_and_third_party_are_refused(analytics_ui):
    ui = analytics_ui
    for name in SECTIONS:
        r = post(ui["client"], name, "all", ui["start"], ui["end"])
        assert r.status_code == 401
        assert "House" not in r.get_data(as_text=True)
    csrf = cookie_login(ui["client"], "partner")
    for name in SECTIONS:
        assert post(ui["client"], name, "all", ui["start"], ui["end"], csrf).status_code == 401


def test_bad_ranges_and_a_community_show_a_message(analytics_ui, world):
    ui = analytics_ui
    csrf = cookie_login(ui["client"], "analyst")
    for name in SECTIONS:
        alert = section(ui["client"], csrf, name, "all", ui["end"], ui["start"])[f"analytics-{name}-message"]
        assert alert["color"] == "danger" and "start date" in alert["children"]
    too_long = (datetime.fromisoformat(ui["end"]) - timedelta(days=MAX_DAYS)).date().isoformat()
    alert = section(ui["client"], csrf, "voltage", "all", too_long, ui["end"])["analytics-voltage-message"]
    assert f"at most {MAX_DAYS} days" in alert["children"]
    alert = section(ui["client"], csrf, "profile", f"c{world.community}", ui["start"], ui["end"])
    assert "choose a house or all houses" in alert["analytics-profile-message"]["children"]
    alert = section(ui["client"], csrf, "pf", "all", "yesterday", ui["end"])["analytics-pf-message"]
    assert "YYYY-MM-DD" in alert["children"]


def test_a_chosen_preset_fills_the_picker(analytics_ui):
    ui = analytics_ui
    csrf = cookie_login(ui["client"], "consumer")
    outputs = [
        ("analytics-range", "value"),
        ("analytics-dates", "start_date"),
        ("analytics-dates", "end_date"),
    ]
    body = callback_payload(  # the browser passes a chosen preset on as the range's event (PICKER_EVENT_JS)
        outputs,
        [("analytics-previous", "n_clicks", None), ("analytics-next", "n_clicks", None),
         ("analytics-range-event", "data", {"trigger": "preset", "at": 1})],
        [("analytics-range", "value", "30d"), ("analytics-dates", "start_date", ui["start"]),
         ("analytics-dates", "end_date", ui["end"])],
        triggered="analytics-range-event.data",
    )  # fmt: skip
    r = ui["client"].post("/_dash-update-component", json=body, headers=csrf)
    got = r.json["response"]["analytics-dates"]
    end = datetime.fromisoformat(ui["end"]).date()
    assert got == {"start_date": (end - timedelta(days=29)).isoformat(), "end_date": ui["end"]}
    assert ui["client"].post("/_dash-update-component", json=body).status_code == 401


def page_layout(client, headers) -> dict:
    r = client.post("/_dash-update-component", json=router_payload("/analytics"), headers=headers)
    assert r.status_code == 200
    return r.json["response"]["_pages_content"]["children"]


def test_page_dropdown_holds_the_callers_houses_and_no_community(analytics_ui, app, world):
    client = analytics_ui["client"]
    dropdown = component(page_layout(client, cookie_login(client, "consumer")), "analytics-scope")
    assert dropdown["options"] == [
        {"label": "All my houses", "value": "all"},
        {"label": f"House A (#{world.house1})", "value": str(world.house1)},
    ]
    assert dropdown["value"] == str(world.house1)  # the first house by default
    layout = page_layout(client, cookie_login(client, "analyst"))
    dropdown = component(layout, "analytics-scope")
    assert [o["label"] for o in dropdown["options"]] == ["All houses", f"House A (#{world.house1})",
                                                         f"House B (#{world.house2})"]  # fmt: skip
    picker = component(layout, "analytics-dates")
    assert (picker["start_date"], picker["end_date"]) == (analytics_ui["start"], analytics_ui["end"])
    tabs = component(layout, "analytics-tabs")
    assert tabs["value"] == "anomaly"  # the anomalies first; every analysis one click away
    assert [tab["props"]["value"] for tab in tabs["children"]] == list(SECTIONS)
    for section_id in SECTIONS:
        graph = component(layout, f"analytics-{section_id}-graph")
        assert graph is not None and "figure" not in graph  # drawn once, when its data arrives
        assert component(layout, f"analytics-{section_id}-shown") is not None
    anonymous = app.server.test_client()
    text = anonymous.post("/_dash-update-component", json=router_payload("/analytics")).get_data(as_text=True)
    assert "Please log in" in text and "analytics-anomaly-graph" not in text


# ---- tabs: a section computes while its tab is shown, once per request ----------------------------------------


def test_a_section_computes_only_on_its_tab_and_once_per_request(analytics_ui, world):
    ui = analytics_ui
    client, start, end = ui["client"], ui["start"], ui["end"]
    csrf = cookie_login(client, "analyst")
    house, later = str(world.house1), (datetime.fromisoformat(end) - timedelta(days=4)).date().isoformat()
    for name in ("voltage", "pf", "profile"):
        # another tab shown: nothing computed, nothing sent
        r = post(client, name, house, start, end, csrf, tab="anomaly")
        assert r.status_code == 204 and r.get_data(as_text=True) == ""
        # its tab: the data, and the request it now shows
        body = section(client, csrf, name, house, start, end)
        shown = body[f"analytics-{name}-shown"]["data"]
        assert shown and body[f"analytics-{name}-graph"]["figure"]["data"]
        assert body[f"analytics-{name}-message"]["color"] != "danger"
        # back to its tab with the same request: nothing to compute or draw again
        r = post(client, name, house, start, end, csrf, tab=name, shown=shown)
        assert r.status_code == 204
        # a new range (or house): computed again
        body = section(client, csrf, name, house, later, end, shown=shown)
        assert body[f"analytics-{name}-shown"]["data"] not in (None, shown)
        body = section(client, csrf, name, str(world.house2), start, end, shown=shown)
        assert body[f"analytics-{name}-shown"]["data"] not in (None, shown)

    # the anomaly card of one house: computed on its tab only; the scan's outputs stay idle on any tab
    body = section(client, csrf, "anomaly", house, start, end, tab="voltage")
    assert "analytics-anomaly-graph" not in body and "analytics-anomaly-shown" not in body
    assert body["analytics-anomaly-poll"]["disabled"] is True
    body = section(client, csrf, "anomaly", house, start, end)
    shown = body["analytics-anomaly-shown"]["data"]
    assert shown and "Consumption (kW)" in traces(body["analytics-anomaly-graph"]["figure"])
    body = section(client, csrf, "anomaly", house, start, end, tab="anomaly", shown=shown)
    assert "analytics-anomaly-graph" not in body
    # a forged "shown" value can only keep a tab as it is: never data of a house out of scope
    consumer = cookie_login(client, "consumer")
    body = section(client, consumer, "anomaly", str(world.house2), start, end, shown="forged")
    assert body["analytics-anomaly-message"]["color"] == "danger"


def test_the_scan_runs_for_its_three_tabs_and_a_tab_change_does_not_start_it_again(
    analytics_ui, app, factory
):
    ui = analytics_ui
    client, start, end = ui["client"], ui["start"], ui["end"]
    csrf = cookie_login(client, "analyst")
    # all houses with the voltage tab shown: the anomaly callback queues the scan all the same
    first = section(client, csrf, "anomaly", "all", start, end, tab="voltage")
    job = first["analytics-anomaly-job"]["data"]
    assert job["job"].startswith(SCAN_PREFIX) and first["analytics-anomaly-poll"]["disabled"] is False
    waiting = section(client, csrf, "voltage", "all", start, end, job=job)
    assert "computed in the background" in waiting["analytics-voltage-message"]["children"]
    assert waiting["analytics-voltage-shown"]["data"] is None  # a message is not remembered as shown
    _first, done = scan(client, csrf, "all", start, end)
    store = done["analytics-anomaly-job"]["data"]
    assert store == {"job": job["job"], "done": True}  # the same scan, reused
    shown = done["analytics-anomaly-shown"]["data"]
    # later tab changes: the finished scan is reported on, not queued again, and not drawn again
    app.server.extensions["aggregator"].cache.clear()  # the reuse map lost: a new scan would get a new id
    for tab in ("voltage", "pf", "anomaly"):
        body = section(client, csrf, "anomaly", "all", start, end, job=store, tab=tab, shown=shown)
        assert "analytics-anomaly-job" not in body and "analytics-anomaly-graph" not in body
        assert body["analytics-anomaly-poll"]["disabled"] is True
        assert body["analytics-anomaly-progress-box"]["style"] == {"display": "none"}
    # a tab shown after the scan's result expired (gone from the queue): a new scan, not an error
    mine = scan_request(factory, "analyst", ui)
    gone = {"job": f"{SCAN_PREFIX}{mine.scope.user_id}-{scan_digest(mine)}-{uuid.uuid4().hex}", "done": True}
    body = section(client, csrf, "anomaly", "all", start, end, job=gone, tab="pf", shown=shown)
    assert body["analytics-anomaly-job"]["data"]["job"] not in (gone["job"], store["job"])
    assert body["analytics-anomaly-message"]["color"] != "danger"
    # a refusal (here a job store naming no scan of this user) is not remembered either: the same
    # request with the tab shown again asks again and, the store now right, gets the events
    forged = {"job": f"{SCAN_PREFIX}0-{scan_digest(mine)}-{uuid.uuid4().hex}", "done": True}
    refused = section(client, csrf, "voltage", "all", start, end, job=forged)
    assert refused["analytics-voltage-message"]["color"] == "danger"
    assert refused["analytics-voltage-shown"]["data"] is None and not cells(
        refused["analytics-voltage-table"]["children"]
    )
    body = section(client, csrf, "voltage", "all", start, end, job=store, shown=None)
    assert len(cells(body["analytics-voltage-table"]["children"])) == 2
    assert (
        post(
            client,
            "voltage",
            "all",
            start,
            end,
            csrf,
            job=store,
            shown=body["analytics-voltage-shown"]["data"],
        ).status_code
        == 204
    )


# ---- anomalies scored against the demo generator's ground truth ---------------------------------------------

DEMO_TZ = "Europe/Athens"
DEMO_END = datetime(2026, 1, 31)
DEMO_DAYS = 60
DEMO_HOUSES = 12


@pytest.fixture
def demo_ui(app, client, factory, pg_snapshots):
    """The demo generator in the test database (as tests/api/test_analytics_scoped.py seeds it, with more
    houses and days so more anomalies are scored); its analyst gets the test password. Seeded once per
    session, restored before each test."""
    timezone = app.server.extensions["aggregator"].settings.timezone
    assert timezone == DEMO_TZ

    def seed():
        seed_demo(factory, DEMO_TZ, houses=DEMO_HOUSES, days=DEMO_DAYS, end=DEMO_END.replace(tzinfo=UTC),
                  seed=28, progress=False)  # fmt: skip
        with factory() as s:
            s.scalar(select(User).where(User.username == "analyst")).password_hash = hash_password(PASSWORD)
            s.commit()

    pg_snapshots.ensure("analytics_page_demo", seed)
    with factory() as s:
        truth = s.execute(
            select(InjectedAnomaly.house_id, InjectedAnomaly.kind, InjectedAnomaly.start, InjectedAnomaly.end)
        ).all()
    assert client.get("/").status_code == 200
    return truth


LISTED = re.compile(r"\(#(\d+)\)$")


def test_listed_anomalies_score_against_the_injected_ground_truth(demo_ui, client, app, factory):
    # local days covering the seeded data but its first 28 (the detector's history)
    last = (DEMO_END - timedelta(days=1)).date()
    first = last - timedelta(days=DEMO_DAYS - 29)
    csrf = cookie_login(client, "analyst")
    started, body = scan(client, csrf, "all", first.isoformat(), last.isoformat())
    # twelve houses: the callback answers at once with a progress bar, the scan runs in the background
    assert started["analytics-anomaly-poll"]["disabled"] is False
    assert started["analytics-anomaly-progress-box"]["style"] == {"display": "block"}
    assert "Scanning" in started["analytics-anomaly-message"]["children"]
    assert started["analytics-anomaly-table"]["children"] == []
    assert body["analytics-anomaly-poll"]["disabled"] is True
    rows = cells(body["analytics-anomaly-table"]["children"])
    labels = {label: kind for kind, (label, _c) in ANOMALY_KINDS.items()}
    zone = ZoneInfo(DEMO_TZ)

    def utc_naive(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)

    listed = [
        {
            "house_id": int(LISTED.search(house).group(1)),
            "kind": labels[kind],
            "start": utc_naive(start).isoformat() + "Z",
            "end": utc_naive(end).isoformat() + "Z",
        }
        for house, kind, start, end, _score, _detail in rows
    ]
    lo, hi = local_days_range(first, last, DEMO_TZ)
    wanted = [t for t in demo_ui if t.kind in CONSUMPTION_KINDS and t.start < hi and lo < t.end]
    assert len(wanted) >= 5 and listed
    found = [e for e in listed if any(overlaps(e, t.house_id, t.start, t.end) for t in wanted)]
    caught = [t for t in wanted if any(overlaps(e, t.house_id, t.start, t.end) for e in listed)]
    precision, recall = len(found) / len(listed), len(caught) / len(wanted)
    print(
        f"\nthrough the page: {len(wanted)} injected, {len(listed)} listed; P {precision:.2f} R {recall:.2f}"
    )
    assert precision >= 0.8 and recall >= 0.8

    # the list is the service's, and the chart of one house marks its anomalies
    with factory() as s:
        scope = user_scope(s, s.scalar(select(User).where(User.username == "analyst")))
        events = analytics.anomalies(s, scope, lo, hi, timezone=DEMO_TZ)
    assert [(e["house_id"], e["kind"], e["start"][:16], e["end"][:16]) for e in events] == [
        (e["house_id"], e["kind"], e["start"][:16], e["end"][:16]) for e in listed
    ]
    counts = str(body["analytics-anomaly-counts"]["children"])
    for kind, (label, _c) in ANOMALY_KINDS.items():
        assert f"{label}: {sum(1 for e in events if e['kind'] == kind)}" in counts
    # the job's batches (five houses at a time) find exactly the service's events, in its order
    progress = []
    with factory() as s:
        batched = analytics_scan.anomalies_in_batches(
            s, scope, lo, hi, timezone=DEMO_TZ, batch_houses=5, progress=lambda *p: progress.append(p)
        )
    assert batched == events
    assert progress == [(0, DEMO_HOUSES), (5, DEMO_HOUSES), (10, DEMO_HOUSES), (DEMO_HOUSES, DEMO_HOUSES)]
    # the page's scan (anomalies, voltage events, power factor), five houses at a time: each section is the
    # service's answer for every house in one go
    with factory() as s:
        voltage = analytics.voltage_events(s, scope, lo, hi)
        days = analytics.power_factor_trend(s, scope, lo, hi, timezone=DEMO_TZ)
        progress = []
        found = analytics_scan.scan_in_batches(
            s, scope, lo, hi, timezone=DEMO_TZ, batch_houses=5, progress=lambda *p: progress.append(p)
        )
    # events of several batches, interleaved in time: the batches' lists are merged, not concatenated
    order = [e["house_id"] for e in voltage["events"]]
    assert len(set(order)) >= 3 and order != sorted(order)
    assert len({d["house_id"] for d in days}) == DEMO_HOUSES
    assert found == {"anomalies": events, "voltage": voltage, "power_factor": days, "errors": {}}
    assert progress == [(0, DEMO_HOUSES), (5, DEMO_HOUSES), (10, DEMO_HOUSES), (DEMO_HOUSES, DEMO_HOUSES)]
    house = events[0]["house_id"]
    body = section(client, csrf, "anomaly", str(house), first.isoformat(), last.isoformat())
    mine = [e for e in events if e["house_id"] == house]
    figure = body["analytics-anomaly-graph"]["figure"]
    assert len(figure["layout"]["shapes"]) == len(mine)  # one shaded window per anomaly
    marked = sum(len(t["x"]) for t in figure["data"] if t["name"].startswith("Anomaly: "))
    assert marked == len(mine) == len(cells(body["analytics-anomaly-table"]["children"]))


# ---- the all-houses scan: a background job, checked on every poll -----------------------------------------


@pytest.fixture(autouse=True)
def no_reused_scans(app):
    """Each test queues its own scans (the page reuses one per user, scope and range for minutes, and the
    test database is refilled between tests with the same user ids)."""
    app.server.extensions["aggregator"].cache.clear()
    yield
    app.server.extensions["aggregator"].cache.clear()


def scope_of(factory, username: str):
    with factory() as s:
        return user_scope(s, s.scalar(select(User).where(User.username == username)))


def scan_request(factory, username: str, ui) -> Request:
    """The request the page makes of the scan for this user and the fixture's local days."""
    first, last = (datetime.fromisoformat(ui[k]).date() for k in ("start", "end"))
    start, end = local_days_range(first, last, ui["timezone"])
    return Request(scope_of(factory, username), None, "All houses", start, end, ui["timezone"])


def shows_nothing(body: dict) -> None:
    """A refused poll: the message, and no list, counts, chart or job."""
    assert body["analytics-anomaly-message"] == {"children": NO_SCAN, "color": "danger", "is_open": True}
    assert body["analytics-anomaly-table"]["children"] == []
    assert body["analytics-anomaly-counts"]["children"] == []
    assert body["analytics-anomaly-graph"]["figure"]["data"] == []
    assert body["analytics-anomaly-job"]["data"] is None
    assert body["analytics-anomaly-poll"]["disabled"] is True


def test_a_forged_or_foreign_scan_id_shows_nothing(analytics_ui, app, factory, world):
    ui = analytics_ui
    client, start, end = ui["client"], ui["start"], ui["end"]
    csrf = cookie_login(client, "analyst")
    _first, done = scan(client, csrf, "all", start, end)
    job = done["analytics-anomaly-job"]["data"]
    stuck = cells(done["analytics-anomaly-table"]["children"])
    assert [r[:2] for r in stuck] == [[f"House B (#{world.house2})", "Stuck meter"]]
    assert cells(poll(client, csrf, "all", start, end, job)["analytics-anomaly-table"]["children"]) == stuck

    # the admin (every house too) polling with the analyst's job id: not theirs, so nothing
    admin = cookie_login(client, "admin")
    r = post(client, "anomaly", "all", start, end, admin, job=job, tick=3)
    assert r.status_code == 200
    shows_nothing(r.json["response"])
    assert "House B" not in r.get_data(as_text=True) and "Stuck" not in r.get_data(as_text=True)
    # the admin's own prefix and request digest on a job that does not exist; malformed stores
    mine = scan_request(factory, "admin", ui)
    unknown = f"{SCAN_PREFIX}{mine.scope.user_id}-{scan_digest(mine)}-{uuid.uuid4().hex}"
    for forged in ({"job": unknown}, {"job": 5}, {"job": None}, {"job": SCAN_PREFIX}, "x", None, []):
        shows_nothing(poll(client, admin, "all", start, end, forged))

    # a job the analyst's parameters started, under an id made up with the admin's prefix and digest:
    # the id passes, the result's owner does not
    queue = app.server.extensions["aggregator"].job_queue
    theirs = scan_request(factory, "analyst", ui)
    disguised = f"{SCAN_PREFIX}{mine.scope.user_id}-{scan_digest(mine)}-{uuid.uuid4().hex}"
    queue.enqueue("jobs.analytics.anomaly_scan", theirs.scope.user_id, theirs.scope.to_fields(),
                  theirs.start.isoformat(), theirs.end.isoformat(), theirs.timezone, job_id=disguised)  # fmt: skip
    assert queue.wait(disguised, 30).status == "finished"
    shows_nothing(poll(client, admin, "all", start, end, {"job": disguised}))

    # a consumer's "all" is their one house, judged at once whatever job id comes along: no house B
    consumer = cookie_login(client, "consumer")
    body = poll(client, consumer, "all", start, end, job)
    assert (
        body["analytics-anomaly-job"]["data"] is None and body["analytics-anomaly-poll"]["disabled"] is True
    )
    assert "No anomalies found for All my houses" in body["analytics-anomaly-message"]["children"]
    text = post(client, "anomaly", "all", start, end, consumer, job=job, tick=2).get_data(as_text=True)
    assert "House B" not in text and "Stuck" not in text

    # no cookie, and a third-party user: refused before any job is looked at
    assert post(client, "anomaly", "all", start, end, job=job, tick=4).status_code == 401
    partner = cookie_login(client, "partner")
    assert post(client, "anomaly", "all", start, end, partner, job=job, tick=4).status_code == 401


def test_a_scan_is_reused_for_the_same_request_and_follows_a_new_range(analytics_ui, factory, world):
    ui = analytics_ui
    client, start, end = ui["client"], ui["start"], ui["end"]
    csrf = cookie_login(client, "analyst")
    job = section(client, csrf, "anomaly", "all", start, end)["analytics-anomaly-job"]["data"]["job"]
    again = section(client, csrf, "anomaly", "all", start, end)["analytics-anomaly-job"]["data"]["job"]
    assert again == job  # the same user, scope and range: the same scan
    assert job.split("-")[2] == scan_digest(scan_request(factory, "analyst", ui))

    later = (datetime.fromisoformat(end) - timedelta(days=1)).date().isoformat()
    other = section(client, csrf, "anomaly", "all", later, end)["analytics-anomaly-job"]["data"]["job"]
    assert other != job
    # a poll tick that raced the change of range (the store still holds the old scan): this range's scan
    raced = poll(client, csrf, "all", later, end, {"job": job})
    assert raced["analytics-anomaly-job"]["data"]["job"] == other
    _first, done = scan(client, csrf, "all", later, end)
    assert done["analytics-anomaly-job"]["data"] == {"job": other, "done": True}
    # the stuck meter (three local days ago) is outside the last two days
    assert "No anomalies found for All houses" in done["analytics-anomaly-message"]["children"]
    _first, done = scan(client, csrf, "all", start, end)
    assert done["analytics-anomaly-job"]["data"] == {"job": job, "done": True}
    assert [r[1] for r in cells(done["analytics-anomaly-table"]["children"])] == ["Stuck meter"]


def test_the_scan_job_reports_progress_and_answers_what_the_service_does(analytics_ui, app, factory):
    ui = analytics_ui
    queue = app.server.extensions["aggregator"].job_queue
    req = scan_request(factory, "analyst", ui)
    job = queue.enqueue("jobs.analytics.anomaly_scan", req.scope.user_id, req.scope.to_fields(),
                        req.start.isoformat(), req.end.isoformat(), req.timezone)  # fmt: skip
    status = queue.wait(job, 30)
    assert status.status == "finished", status.error
    assert (status.progress, status.message) == (1.0, "2 of 2 houses scanned")
    assert status.result["user_id"] == req.scope.user_id
    assert status.result["events"] == service(app, factory, "analyst", analytics.anomalies, ui)
    assert [e["kind"] for e in status.result["events"]] == ["stuck_meter"]
    # the same job computes the voltage events and the power-factor trend: the services' answers in one go
    assert status.result["voltage"] == service(app, factory, "analyst", analytics.voltage_events, ui)
    assert status.result["power_factor"] == service(app, factory, "analyst", analytics.power_factor_trend, ui)
    assert status.result["errors"] == {}
    assert len(status.result["voltage"]["events"]) == 3 and len(status.result["power_factor"]) == 4


def raw_rows_per_house(factory, lo, hi) -> dict[int, int]:
    """Meter readings (with a voltage) of each house in [lo, hi): what the row limit counts."""
    with factory() as s:
        rows = s.execute(
            select(Device.house_id, func.count())
            .select_from(Measurement)
            .join(Device, Device.id == Measurement.device_id)
            .where(Device.kind == "meter", Measurement.ts >= lo, Measurement.ts < hi,
                   Measurement.voltage_v.is_not(None))
            .group_by(Device.house_id)
        ).all()  # fmt: skip
    return dict(rows)


def test_batches_split_under_the_row_limit_and_a_house_over_it_is_reported(demo_ui, factory, monkeypatch):
    """A batch holding more raw readings than one request may read is halved until it fits, with the
    same answers; a single house over the limit leaves its section empty with the reason (the anomalies,
    from rollups, are still found)."""
    last = (DEMO_END - timedelta(days=1)).date()
    lo, hi = local_days_range(last - timedelta(days=13), last, DEMO_TZ)
    scope = scope_of(factory, "analyst")
    per_house = raw_rows_per_house(factory, lo, hi)
    assert len(per_house) == DEMO_HOUSES
    with factory() as s:
        voltage = analytics.voltage_events(s, scope, lo, hi)
        days = analytics.power_factor_trend(s, scope, lo, hi, timezone=DEMO_TZ)
        events = analytics.anomalies(s, scope, lo, hi, timezone=DEMO_TZ)
    # three houses' readings fit, a batch of six does not: the batches must be split to be read at all
    monkeypatch.setattr(analytics, "MAX_ANALYTICS_ROWS", 3 * max(per_house.values()))
    with factory() as s:
        with pytest.raises(analytics.TooManyReadings):
            analytics.voltage_events(s, scope, lo, hi, houses=sorted(per_house)[:6])
        found = analytics_scan.scan_in_batches(s, scope, lo, hi, timezone=DEMO_TZ, batch_houses=6)
    assert found == {"anomalies": events, "voltage": voltage, "power_factor": days, "errors": {}}
    # one house over the limit: no voltage events or power factor, and the service's own message
    monkeypatch.setattr(analytics, "MAX_ANALYTICS_ROWS", min(per_house.values()) - 1)
    with factory() as s:
        found = analytics_scan.scan_in_batches(s, scope, lo, hi, timezone=DEMO_TZ, batch_houses=6)
    assert found["anomalies"] == events and found["voltage"] is None and found["power_factor"] is None
    assert "shorten the range" in found["errors"]["voltage"] and "shorten" in found["errors"]["power_factor"]


def assert_no_section_data(body: dict, name: str, text: str) -> None:
    """A refused voltage or power-factor card: the message, no chart and no table."""
    alert = body[f"analytics-{name}-message"]
    assert alert == {"children": text, "color": "danger", "is_open": True}
    assert body[f"analytics-{name}-graph"]["figure"]["data"] == []
    assert all(body[c]["children"] == [] for c in SECTIONS[name])


def test_voltage_and_power_factor_of_several_houses_wait_for_the_scan_and_refuse_forged_ids(
    analytics_ui, app, factory, world
):
    ui = analytics_ui
    client, start, end = ui["client"], ui["start"], ui["end"]
    csrf = cookie_login(client, "analyst")
    # no scan in the store (it failed to start or was refused): no data, a message
    for name in BACKGROUND:
        assert_no_section_data(section(client, csrf, name, "all", start, end), name, SCAN_NOT_RUNNING)
    _first, done = scan(client, csrf, "all", start, end)
    store = done["analytics-anomaly-job"]["data"]
    filled = {name: section(client, csrf, name, "all", start, end, job=store) for name in BACKGROUND}
    assert len(cells(filled["voltage"]["analytics-voltage-table"]["children"])) == 2
    assert len(cells(filled["pf"]["analytics-pf-table"]["children"])) == 2
    # the analyst's finished scan for another range: the store is about to change, nothing is shown
    later = (datetime.fromisoformat(end) - timedelta(days=1)).date().isoformat()
    for name in BACKGROUND:
        body = section(client, csrf, name, "all", later, end, job=store)
        assert body[f"analytics-{name}-message"]["color"] == "info"
        assert "computed in the background" in body[f"analytics-{name}-message"]["children"]
        assert body[f"analytics-{name}-graph"]["figure"]["data"] == []
        assert all(body[c]["children"] == [] for c in SECTIONS[name])

    # the admin (every house too) with the analyst's finished job: not theirs, so nothing
    admin = cookie_login(client, "admin")
    mine = scan_request(factory, "admin", ui)
    unknown = f"{SCAN_PREFIX}{mine.scope.user_id}-{scan_digest(mine)}-{uuid.uuid4().hex}"
    queue = app.server.extensions["aggregator"].job_queue
    theirs = scan_request(factory, "analyst", ui)
    disguised = f"{SCAN_PREFIX}{mine.scope.user_id}-{scan_digest(mine)}-{uuid.uuid4().hex}"
    queue.enqueue("jobs.analytics.anomaly_scan", theirs.scope.user_id, theirs.scope.to_fields(),
                  theirs.start.isoformat(), theirs.end.isoformat(), theirs.timezone, job_id=disguised)  # fmt: skip
    assert queue.wait(disguised, 30).status == "finished"
    forged = [store, {"job": unknown, "done": True}, {"job": disguised, "done": True}, {"job": 5, "done": True},
              {"job": SCAN_PREFIX, "done": True}]  # fmt: skip
    for job in forged:
        for name in BACKGROUND:
            r = post(client, name, "all", start, end, admin, job=job)
            assert r.status_code == 200
            assert_no_section_data(r.json["response"], name, NO_SCAN)
            text = r.get_data(as_text=True)
            assert "House A" not in text and "House B" not in text and "Interruption" not in text
    for job in ("x", [], {"done": True}):
        for name in BACKGROUND:
            assert_no_section_data(
                section(client, admin, name, "all", start, end, job=job), name, SCAN_NOT_RUNNING
            )

    # no cookie and a third-party user: refused before any job is looked at
    for name in BACKGROUND:
        assert post(client, name, "all", start, end, job=store).status_code == 401
        partner = cookie_login(client, "partner")
        assert post(client, name, "all", start, end, partner, job=store).status_code == 401


@pytest.fixture
def two_house_consumer(analytics_ui, app, world):
    """A consumer with houses A and C (a third house whose meter swells for 4 minutes), not B."""
    services = app.server.extensions["aggregator"]
    with services.session_factory() as s:
        house = House(name="House C", created_at=datetime.now(UTC).replace(tzinfo=None))
        s.add(house)
        s.flush()
        s.add(Device(serial="H3-MAIN", name="Main meter", kind="meter", direction="consumption",
                     house_id=house.id, created_at=house.created_at))  # fmt: skip
        create_user(s, "consumer3", PASSWORD, "consumer", [world.house1, house.id])
        s.commit()
        house_c = house.id
    zone = ZoneInfo(analytics_ui["timezone"])
    day = datetime.fromisoformat(analytics_ui["drop_day"]).date()
    t0 = datetime(day.year, day.month, day.day, 14, tzinfo=zone)
    items = [reading("H3-MAIN", t0 + timedelta(minutes=m), 30.0, 260.0 if 5 <= m < 9 else 229.0, 0.95)
             for m in range(60)]  # fmt: skip
    r = analytics_ui["client"].post("/api/v1/measurements", json={"measurements": items},
                                    headers=world.headers["admin"])  # fmt: skip
    assert r.status_code == 200, r.get_data(as_text=True)
    return house_c


def test_a_consumers_two_houses_go_through_the_scan_and_hold_only_theirs(
    analytics_ui, two_house_consumer, app, factory, world
):
    ui = analytics_ui
    client, start, end = ui["client"], ui["start"], ui["end"]
    house_c = two_house_consumer
    csrf = cookie_login(client, "consumer3")
    first, done = scan(client, csrf, "all", start, end)
    assert first["analytics-anomaly-job"]["data"]["job"].startswith(SCAN_PREFIX)  # a background scan
    store = done["analytics-anomaly-job"]["data"]
    mine = [f"House A (#{world.house1})", f"House C (#{house_c})"]
    voltage = section(client, csrf, "voltage", "all", start, end, job=store)
    rows = cells(voltage["analytics-voltage-table"]["children"])
    assert rows == [
        [mine[0], "1", "3.0", "1", "2.0", "0", "0.0"],
        [mine[1], "0", "0.0", "1", "4.0", "0", "0.0"],
    ]
    assert set(traces(voltage["analytics-voltage-graph"]["figure"])) == {"Sag", "Swell"}
    pf = section(client, csrf, "pf", "all", start, end, job=store)
    assert sorted(r[0] for r in cells(pf["analytics-pf-table"]["children"])) == mine
    days = service(app, factory, "consumer3", analytics.power_factor_trend, ui)
    assert {d["house_id"] for d in days} == {world.house1, house_c}
    line = traces(pf["analytics-pf-graph"]["figure"])["Daily mean power factor"]
    assert line["x"] == sorted({d["day"] for d in days})
    for name in ("anomaly", *BACKGROUND):
        job = None if name == "anomaly" else store
        text = post(client, name, "all", start, end, csrf, job=job).get_data(as_text=True)
        assert "House B" not in text
        assert "Stuck" not in text and '"name":"Interruption"' not in text
    # the job's own result holds their houses only
    queue = app.server.extensions["aggregator"].job_queue
    result = queue.status(store["job"]).result
    seen = {e["house_id"] for e in result["voltage"]["summary"]} | {
        d["house_id"] for d in result["power_factor"]
    }
    assert seen == {world.house1, house_c} and not result["events"]
    # the analyst's scan id in this consumer's store: not theirs, nothing shown
    analyst = cookie_login(client, "analyst")
    _first, theirs = scan(client, analyst, "all", start, end)
    csrf = cookie_login(client, "consumer3")
    for name in BACKGROUND:
        body = section(client, csrf, name, "all", start, end, job=theirs["analytics-anomaly-job"]["data"])
        assert_no_section_data(body, name, NO_SCAN)
