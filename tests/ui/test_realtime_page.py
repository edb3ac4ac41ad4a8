"""The Real-Time page's callbacks through Dash's real endpoint, on PostgreSQL: per-minute power from the
posted readings (mean per device, summed per direction, appliances left out), the scope checked on the
server, the 5-second tick answered with a Patch holding only the new points, and the silence states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callbacks.realtime import MAX_SILENT_ROWS, silent_table, x_label
from dashboard.live import ScopeDevice
from dashboard.rollups import DeviceInfo
from tests.ui.helpers import cookie_login, router_payload

CHART = [
    ("realtime-graph", "figure"),
    ("realtime-state", "data"),
    ("realtime-message", "children"),
    ("realtime-message", "is_open"),
]
STATUS = [
    ("realtime-voltage", "children"),
    ("realtime-pf", "children"),
    ("realtime-last-reading", "children"),
    ("realtime-silent", "children"),
    ("realtime-silent", "is_open"),
    ("realtime-silent-devices", "children"),
]


def _outputs(outputs):
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
    }


def chart_payload(choice="all", window="60m", state=None, tick=False):
    return _outputs(CHART) | {
        "inputs": [
            {"id": "realtime-scope", "property": "value", "value": choice},
            {"id": "realtime-window", "property": "value", "value": window},
            {"id": "realtime-interval", "property": "n_intervals", "value": 7 if tick else None},
        ],
        "changedPropIds": ["realtime-interval.n_intervals" if tick else "realtime-scope.value"],
        "state": [{"id": "realtime-state", "property": "data", "value": state}],
    }


def status_payload(choice="all"):
    return _outputs(STATUS) | {
        "inputs": [
            {"id": "realtime-scope", "property": "value", "value": choice},
            {"id": "realtime-interval", "property": "n_intervals", "value": 7},
        ],
        "changedPropIds": ["realtime-interval.n_intervals"],
        "state": [],
    }


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def reading(serial, ts: datetime, power_w, **extra):
    return {"device_id": serial, "timestamp": ts.isoformat() + "+00:00", "power_w": power_w,
            "energy_wh": power_w / 60.0, **extra}  # fmt: skip


def post_readings(client, world, items):
    r = client.post("/api/v1/measurements", json={"measurements": items}, headers=world.headers["admin"])
    assert r.status_code == 200, r.get_data(as_text=True)


@pytest.fixture
def rt(client, world, app):
    """One minute 10 minutes ago with readings of every device (two of H1-MAIN: 2000 and 3000 W), and the
    appliance alone 20 minutes ago (so it is silent, and its minute has no consumption)."""
    now = utcnow()
    b1 = now.replace(second=0) - timedelta(minutes=10)
    items = [
        reading("H1-MAIN", b1, 2000.0),
        reading("H1-MAIN", b1 + timedelta(seconds=30), 3000.0, voltage_v=230.0, power_factor=0.9),
        reading("H2-MAIN", b1 + timedelta(seconds=10), 1234.0, voltage_v=241.0, power_factor=1.0),
        reading("H1-PV", b1, 500.0),
        reading("PARK-INV", b1, 4000.0),
        reading("H1-EV", b1 - timedelta(minutes=10), 9000.0),  # appliance sub-meter: never added
    ]
    post_readings(client, world, items)
    assert client.get("/").status_code == 200
    timezone = app.server.extensions["aggregator"].settings.timezone
    return {"client": client, "world": world, "b1": b1, "tz": timezone}


def call(rt, payload, headers=None):
    return rt["client"].post("/_dash-update-component", json=payload, headers=headers or {})


def chart(rt, headers, **kwargs) -> dict:
    r = call(rt, chart_payload(**kwargs), headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.json["response"]


def points(figure) -> dict[str, list]:
    """{trace name: [(x, y), ...]} with the gap markers (y None) left out."""
    return {
        t["name"]: [(x, y) for x, y in zip(t["x"], t["y"], strict=True) if y is not None]
        for t in figure["data"]
    }


@pytest.mark.parametrize(
    ("username", "choice", "expected"),
    [
        ("analyst", "all", {"Consumption": 3.734, "Production": 4.5}),  # 2.5 + 1.234; 0.5 + the park's 4.0
        ("analyst", "community", {"Consumption": 2.5, "Production": 4.5}),  # house A and the park
        ("analyst", "house2", {"Consumption": 1.234}),  # no production device: no production point at all
        ("consumer", "all", {"Consumption": 2.5, "Production": 0.5}),  # house A only, never the park
        ("consumer", "house1", {"Consumption": 2.5, "Production": 0.5}),
    ],
)
def test_first_draw_is_the_mean_power_per_minute_summed_per_direction(rt, username, choice, expected):
    world = rt["world"]
    value = {"community": f"c{world.community}", "house1": str(world.house1), "house2": str(world.house2)}
    csrf = cookie_login(rt["client"], username)
    body = chart(rt, csrf, choice=value.get(choice, choice))
    figure = body["realtime-graph"]["figure"]
    assert "data" in figure and "__dash_patch_update" not in figure  # a full figure
    assert [t["name"] for t in figure["data"]] == ["Consumption", "Production"]
    x = x_label(rt["b1"], rt["tz"])
    got = points(figure)
    assert {name: pts for name, pts in got.items() if pts} == {
        name: [(x, kw)] for name, kw in expected.items()
    }
    assert body["realtime-message"]["is_open"] is False
    assert body["realtime-state"]["data"]["times"] == [rt["b1"].isoformat()]
    assert body["realtime-state"]["data"]["partial"] is False


def test_consumer_forging_house_b_or_a_community_gets_no_data(rt):
    world = rt["world"]
    csrf = cookie_login(rt["client"], "consumer")
    for forged in (str(world.house2), f"c{world.community}", "999999", "junk"):
        for tick in (False, True):
            state = {"choice": forged, "window": "60m", "times": [], "partial": False}
            r = call(rt, chart_payload(choice=forged, state=state, tick=tick), csrf)
            assert r.status_code == 200
            body = r.json["response"]
            assert body["realtime-message"]["is_open"] is True
            assert "not in your scope" in body["realtime-message"]["children"]
            assert body["realtime-graph"]["figure"]["data"] == [] and body["realtime-state"]["data"] is None
            assert "1.234" not in r.get_data(as_text=True)  # house B's power
        r = call(rt, status_payload(forged), csrf)
        body = r.json["response"]
        assert body["realtime-voltage"]["children"] == "-" and "241" not in r.get_data(as_text=True)
        assert "not in your scope" in body["realtime-last-reading"]["children"]


def test_consumer_page_offers_no_community_and_no_other_house(rt):
    client = rt["client"]
    csrf = cookie_login(client, "consumer")
    text = client.post("/_dash-update-component", json=router_payload("/real-time"), headers=csrf).get_data(
        as_text=True
    )
    assert "realtime-graph" in text and "House A" in text
    assert "House B" not in text and "Community:" not in text
    csrf = cookie_login(client, "analyst")
    text = client.post("/_dash-update-component", json=router_payload("/real-time"), headers=csrf).get_data(
        as_text=True
    )
    assert "Community: Solar Street" in text and "House B" in text


def test_no_cookie_and_third_party_are_refused(rt):
    for payload in (chart_payload(), status_payload()):
        r = call(rt, payload)
        assert r.status_code == 401 and "3.734" not in r.get_data(as_text=True)
        csrf = cookie_login(rt["client"], "partner")
        assert call(rt, payload, csrf).status_code == 401
        rt["client"].delete_cookie("access_token_cookie")


def ops(patch: dict, name: str, location_prefix: tuple = ()) -> list[dict]:
    return [
        op
        for op in patch["operations"]
        if op["operation"] == name and tuple(op["location"][: len(location_prefix)]) == location_prefix
    ]


def test_tick_returns_a_patch_with_only_the_new_points(rt):
    world, client = rt["world"], rt["client"]
    csrf = cookie_login(client, "analyst")
    first = chart(rt, csrf)
    state = first["realtime-state"]["data"]
    assert state["times"] == [rt["b1"].isoformat()] and state["partial"] is False

    b2 = rt["b1"] + timedelta(minutes=5)
    post_readings(client, world, [reading("H1-MAIN", b2, 1000.0), reading("H2-MAIN", b2, 1000.0),
                                  reading("PARK-INV", b2 + timedelta(seconds=20), 2000.0)])  # fmt: skip
    body = chart(rt, csrf, state=state, tick=True)
    patch = body["realtime-graph"]["figure"]
    assert patch["__dash_patch_update"] == "__dash_patch_update"  # a Patch, not a figure
    extends = {tuple(op["location"]): op["params"]["value"] for op in ops(patch, "Extend")}
    gap_x = x_label(rt["b1"] + timedelta(minutes=2, seconds=30), rt["tz"])
    new_x = [gap_x, x_label(b2, rt["tz"])]  # a gap marker (4 minutes without data), then the new minute
    assert extends == {
        ("data", 0, "x"): new_x,
        ("data", 0, "y"): [None, 2.0],
        ("data", 1, "x"): new_x,
        ("data", 1, "y"): [None, 2.0],
    }
    assert ops(patch, "Delete") == []  # the earlier minute was complete: it stays as drawn
    assert "3.734" not in str(patch) and "4.5" not in str(patch)  # the old point is not sent again
    assert ops(patch, "Assign", ("layout", "xaxis", "range"))
    state = body["realtime-state"]["data"]
    assert state["times"] == [rt["b1"].isoformat(), None, b2.isoformat()]

    # nothing new since: no point sent at all, only the x range rolls on
    body = chart(rt, csrf, state=state, tick=True)
    patch = body["realtime-graph"]["figure"]
    assert ops(patch, "Extend") == [] and ops(patch, "Delete") == []
    assert body["realtime-state"]["data"]["times"] == state["times"]


def test_a_bucket_still_filling_is_replaced_not_duplicated(rt):
    world, client = rt["world"], rt["client"]
    csrf = cookie_login(client, "consumer")
    now = utcnow()
    b3 = now.replace(second=0)
    post_readings(client, world, [reading("H1-MAIN", b3, 1000.0)])
    first = chart(rt, csrf)
    state = first["realtime-state"]["data"]
    assert state["times"][-1] == b3.isoformat() and state["partial"] is True
    assert points(first["realtime-graph"]["figure"])["Consumption"][-1] == (x_label(b3, rt["tz"]), 1.0)

    post_readings(client, world, [reading("H1-MAIN", b3 + timedelta(seconds=1), 3000.0)])
    patch = chart(rt, csrf, state=state, tick=True)["realtime-graph"]["figure"]
    deletes = [tuple(op["location"]) for op in ops(patch, "Delete")]
    assert deletes == [("data", 0, "x", -1), ("data", 0, "y", -1), ("data", 1, "x", -1), ("data", 1, "y", -1)]
    extends = {tuple(op["location"]): op["params"]["value"] for op in ops(patch, "Extend")}
    assert extends[("data", 0, "y")] == [2.0]  # the minute's new mean: (1000 + 3000) / 2 W
    assert extends[("data", 0, "x")] == [x_label(b3, rt["tz"])]


def test_points_older_than_the_window_are_dropped_from_the_front(rt):
    csrf = cookie_login(rt["client"], "analyst")
    state = chart(rt, csrf)["realtime-state"]["data"]
    old = (utcnow() - timedelta(hours=3)).isoformat()
    state["times"] = [old, None, *state["times"]]  # what a browser open for hours would still hold
    body = chart(rt, csrf, state=state, tick=True)
    patch = body["realtime-graph"]["figure"]
    deletes = [tuple(op["location"]) for op in ops(patch, "Delete")]
    assert deletes == [("data", t, axis, 0) for _ in range(2) for t in (0, 1) for axis in ("x", "y")]
    assert body["realtime-state"]["data"]["times"] == [rt["b1"].isoformat()]


def test_another_scope_or_window_in_the_state_redraws(rt):
    csrf = cookie_login(rt["client"], "analyst")
    state = chart(rt, csrf)["realtime-state"]["data"]
    figure = chart(rt, csrf, choice=str(rt["world"].house1), state=state, tick=True)["realtime-graph"][
        "figure"
    ]
    assert "data" in figure and points(figure)["Consumption"] == [(x_label(rt["b1"], rt["tz"]), 2.5)]
    body = chart(rt, csrf, window="15m", state=state, tick=True)
    figure = body["realtime-graph"]["figure"]
    assert "data" in figure  # a full figure for the new window
    # per 15 s: H1-MAIN's two readings (b1 and b1+30 s) now fall in two buckets, with a gap between
    b1, later = rt["b1"], rt["b1"] + timedelta(seconds=30)
    assert points(figure)["Consumption"] == [(x_label(b1, rt["tz"]), 3.234), (x_label(later, rt["tz"]), 3.0)]
    assert body["realtime-state"]["data"]["window"] == "15m"
    assert body["realtime-state"]["data"]["times"] == [b1.isoformat(), None, later.isoformat()]


def test_fifteen_second_buckets_in_the_short_window(rt):
    world, client = rt["world"], rt["client"]
    csrf = cookie_login(client, "analyst")
    b = utcnow().replace(second=0) - timedelta(minutes=3)
    post_readings(client, world, [reading("H1-MAIN", b + timedelta(seconds=s), w)
                                  for s, w in ((0, 1000.0), (5, 2000.0), (15, 4000.0), (50, 8000.0))])  # fmt: skip
    got = points(chart(rt, csrf, window="15m")["realtime-graph"]["figure"])["Consumption"]
    assert got[-3:] == [
        (x_label(b + timedelta(seconds=s), rt["tz"]), kw) for s, kw in ((0, 1.5), (15, 4.0), (45, 8.0))
    ]


def status(rt, headers, choice="all") -> dict:
    r = call(rt, status_payload(choice), headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    return {f"{i}.{p}": v for i, props in r.json["response"].items() for p, v in props.items()}


def test_status_voltage_power_factor_last_reading_and_silence(rt):
    world, client = rt["world"], rt["client"]
    csrf = cookie_login(client, "analyst")
    got = status(rt, csrf)
    assert got["realtime-voltage.children"] == "235.5"  # mean of the meters' latest: 230 and 241 V
    assert got["realtime-pf.children"] == "0.950"
    # the last reading (H1-MAIN at b1 + 30 s) is over 9 minutes old: the warning is open
    assert got["realtime-last-reading.children"].startswith("Last reading: ")
    assert got["realtime-last-reading.children"].endswith("min ago)")
    assert got["realtime-silent.is_open"] is True and "No reading for" in got["realtime-silent.children"]
    silent = str(got["realtime-silent-devices.children"])
    assert "H1-EV" in silent and "1 silent device" in silent  # 20 minutes without a reading
    assert "H1-MAIN" not in silent and "PARK-INV" not in silent

    post_readings(client, world, [reading("H2-MAIN", utcnow() - timedelta(seconds=2), 500.0, voltage_v=250.0,
                                           power_factor=0.8)])  # fmt: skip
    got = status(rt, csrf)
    assert got["realtime-silent.is_open"] is False
    assert got["realtime-last-reading.children"].endswith(" s ago)")
    assert got["realtime-voltage.children"] == "240.0" and got["realtime-pf.children"] == "0.850"


def test_consumer_status_covers_their_house_only(rt):
    csrf = cookie_login(rt["client"], "consumer")
    got = status(rt, csrf)
    assert got["realtime-voltage.children"] == "230.0" and got["realtime-pf.children"] == "0.900"
    silent = str(got["realtime-silent-devices.children"])
    assert "H1-EV" in silent and "H2-MAIN" not in silent and "House B" not in silent
    csrf = cookie_login(rt["client"], "consumer2")
    got = status(rt, csrf)
    assert got["realtime-voltage.children"] == "241.0"
    assert "Every device of this scope reported" in str(got["realtime-silent-devices.children"])


def test_buckets_on_the_embedded_sqlite_database_too(sqlite_app):
    """The default database is SQLite: its bucket expression must floor exactly like PostgreSQL's."""
    from tests.factories import build_world

    world = build_world(sqlite_app)
    client = sqlite_app.server.test_client()
    b = utcnow().replace(second=0) - timedelta(minutes=3)
    post_readings(client, world, [reading("H1-MAIN", b + timedelta(seconds=s), w)
                                  for s, w in ((0, 1000.0), (5, 2000.0), (15, 4000.0), (50, 8000.0))])  # fmt: skip
    client.get("/")
    csrf = cookie_login(client, "consumer")
    rt = {"client": client}
    tz = sqlite_app.server.extensions["aggregator"].settings.timezone
    got = points(chart(rt, csrf, window="60m")["realtime-graph"]["figure"])["Consumption"]
    assert got == [(x_label(b, tz), 3.75)]  # (1000 + 2000 + 4000 + 8000) / 4 W
    got = points(chart(rt, csrf, window="15m")["realtime-graph"]["figure"])["Consumption"]
    assert got == [(x_label(b + timedelta(seconds=s), tz), kw) for s, kw in ((0, 1.5), (15, 4.0), (45, 8.0))]
    status = {k: v for k, v in call(rt, status_payload(), csrf).json["response"].items()}
    assert status["realtime-last-reading"]["children"].startswith("Last reading: ")
    assert "H1-PV" in str(status["realtime-silent-devices"]["children"])  # never reported


def test_a_fleet_wide_outage_lists_the_longest_silent_devices_and_counts_the_rest():
    """Hundreds of silent devices (a gateway down) must not put hundreds of rows on a page re-drawn every
    5 s: the first MAX_SILENT_ROWS (scope_status sorts the longest silent first) are listed, the rest counted."""
    now = datetime(2026, 3, 1, 12, 0)
    silent = [
        (ScopeDevice(DeviceInfo(i, f"M-{i:03d}", i, None, "meter", "consumption"), f"Meter {i}"),
         now - timedelta(minutes=20 + i))
        for i in range(MAX_SILENT_ROWS + 15)
    ]  # fmt: skip
    text = str(silent_table(silent, {}, "Europe/Athens", now))
    assert f"{MAX_SILENT_ROWS + 15} silent device(s)" in text
    assert "... and 15 more." in text
    assert text.count("M-0") == MAX_SILENT_ROWS  # M-000 .. M-009 listed, M-010 .. not
    assert "M-010" not in text
