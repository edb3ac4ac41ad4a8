"""Marks on the charts, through Dash's real endpoint: the unfinished current bucket drawn as such ("so far",
hatched bar or dashed last segment) on Overview and Analytics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dashboard.clock import local_today
from tests.ui.helpers import cookie_login
from tests.ui.test_analytics_page import section
from tests.ui.test_overview_page import NOW_TODAY, overview_ui, post, post_readings  # noqa: F401  (the fixture)


def test_overview_current_hour_is_hatched_and_says_so_far(overview_ui, world):  # noqa: F811
    ui = overview_ui
    csrf = cookie_login(ui["client"], "analyst")
    figure = post(ui, NOW_TODAY, csrf).json["response"]["overview-chart"]["figure"]
    hour = ui["now"].replace(minute=0, second=0)
    label = hour.replace(tzinfo=UTC).astimezone(ZoneInfo(ui["timezone"])).strftime("%Y-%m-%d %H:%M")
    item = {
        "device_id": "H1-MAIN",
        "timestamp": hour.isoformat() + "+00:00",
        "power_w": 5.0,
        "energy_wh": 1.0,
    }
    post_readings(ui["client"], world, [item])  # the current hour has readings, even in its first minute
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
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    bucket = now.replace(minute=now.minute - now.minute % 15, second=0)
    items = [
        {"device_id": "H1-MAIN", "timestamp": ts.isoformat() + "+00:00", "power_w": 1000.0, "energy_wh": 60.0}
        for ts in (bucket - timedelta(minutes=15), bucket - timedelta(minutes=5), bucket)
    ]
    r = client.post("/api/v1/measurements", json={"measurements": items}, headers=world.headers["admin"])
    assert r.status_code == 200, r.get_data(as_text=True)
    csrf = cookie_login(client, "analyst")
    today = local_today(timezone).isoformat()
    before = (datetime.now(UTC).replace(tzinfo=None) - bucket) / timedelta(hours=1)
    body = section(client, csrf, "anomaly", str(world.house1), today, today)
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
