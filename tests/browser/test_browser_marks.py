"""Anomalies and voltage events marked on the charts, and a click on a bar, in chromium on the demo server.

The test adds two houses through the API (and deletes them afterwards): "Marks house", whose meter reads
1.2 kW flat for 2 h 15 min (a stuck meter), sags to 195 V for 3 minutes and swells to 258 V for 2 minutes
10 to 20 minutes ago, and "Quiet house", whose meter reads a varying load at a normal voltage. Their readings go
through `POST /api/v1/measurements`, the real ingestion path; the marks come from the analytics service.

Historical and Real-Time draw each event in the chart (a shaded span and a marker whose hover names it) at
its local time; the quiet house has none. A day bar's click drills down to its hours and the browser's
Back returns to the days; Analytics' bar of a house opens that house (and Back returns to all houses).
A consumer never gets marks of a house that is not theirs, whatever the browser sends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
import requests

from callbacks.historical import BAR_GAP
from tests.browser.helpers import click_point, hover, shot, wait_for_length, wait_for_traces
from tests.factories import PASSWORD
from tests.ui.test_historical_page import payload as historical_payload

pytestmark = pytest.mark.browser
ZONE = ZoneInfo("Europe/Athens")  # the demo server's TIMEZONE (the default)
STUCK_SLOTS = 9  # 15-minute slots of identical power: a stuck meter needs 8 (two hours)
# off the quarter hours, so each starts inside its hourly bar (not in the gap between two bars)
SAG_AT, SAG_MINUTES, SAG_V = timedelta(minutes=67), 3, 195.0  # after the first reading
SWELL_AT, SWELL_MINUTES, SWELL_V = timedelta(hours=4, minutes=-8), 2, 258.0  # minutes before the readings end

MARKS_JS = """(id) => { const el = document.querySelector('#' + id + ' .js-plotly-plot');
  if (!el || !el.layout || !el.data) return null;
  const t = el.layout.title;
  return {title: String((t && (t.text || t)) || ''),
          shapes: (el.layout.shapes || []).map(s => ({x0: String(s.x0), x1: String(s.x1), yref: s.yref})),
          marks: el.data.filter(d => d.mode === 'markers').map(d => ({name: d.name, x: (d.x || []).map(String),
                 text: d.text || [], hovertemplate: d.hovertemplate || ''}))}; }"""


def api_headers(base: str, username: str) -> dict:
    r = requests.post(
        f"{base}/api/v1/auth/login", json={"username": username, "password": PASSWORD}, timeout=10
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def local_iso(ts_utc: datetime) -> str:
    """The x value a mark has: local wall-clock time, ISO, no offset."""
    return ts_utc.replace(tzinfo=UTC).astimezone(ZONE).replace(tzinfo=None).isoformat()


def readings(serial: str, t0: datetime, now: datetime, marked: bool) -> list[dict]:
    """One reading a minute from t0 to two minutes before now; the marked house's events as documented."""
    items, ts, i = [], t0, 0
    stuck_until = t0 + STUCK_SLOTS * timedelta(minutes=15)
    sag = (t0 + SAG_AT, t0 + SAG_AT + timedelta(minutes=SAG_MINUTES))
    swell = (t0 + SWELL_AT, t0 + SWELL_AT + timedelta(minutes=SWELL_MINUTES))
    while ts <= now - timedelta(minutes=2):
        power = 400.0 + 90.0 * (i % 7)  # 15 minutes hold two 7-minute cycles and one more: no two alike
        volts = 229.0 + i % 3
        if marked:
            power = 1200.0 if ts < stuck_until else power
            volts = SAG_V if sag[0] <= ts < sag[1] else SWELL_V if swell[0] <= ts < swell[1] else volts
        items.append({"device_id": serial, "timestamp": ts.isoformat() + "+00:00", "power_w": power,
                      "voltage_v": volts})  # fmt: skip
        ts, i = ts + timedelta(minutes=1), i + 1
    return items


@pytest.fixture(scope="module")
def seeded(demo_server):
    """The two houses, their meters and four hours of readings; deleted (with their readings) at the end,
    so the other browser tests see the demo's six houses."""
    admin = api_headers(demo_server, "admin")
    now = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
    t0 = now.replace(minute=now.minute - now.minute % 15) - timedelta(hours=4)
    houses = {}
    try:
        for key, name in (("marked", "Marks house"), ("quiet", "Quiet house")):
            r = requests.post(f"{demo_server}/api/v1/houses", json={"name": name}, headers=admin, timeout=10)
            assert r.status_code == 201, r.text
            houses[key] = r.json()["id"]
            serial = f"MARKS-{key.upper()}-{houses[key]}"
            r = requests.post(f"{demo_server}/api/v1/devices", headers=admin, timeout=10,
                              json={"name": f"{name} meter", "kind": "meter", "house_id": houses[key],
                                    "serial": serial})  # fmt: skip
            assert r.status_code == 201, r.text
            items = readings(serial, t0, now, key == "marked")
            r = requests.post(f"{demo_server}/api/v1/measurements", json={"measurements": items},
                              headers=admin, timeout=60)  # fmt: skip
            assert r.status_code == 200, r.text
        yield {"base": demo_server, "admin": admin, "now": now, "t0": t0} | houses
    finally:
        for house in houses.values():
            r = requests.delete(f"{demo_server}/api/v1/houses/{house}", headers=admin, timeout=60)
            assert r.status_code == 204, r.text


def expected_events(seeded) -> list[dict]:
    """What the analytics API finds for the marked house (checked against what was seeded): the local x
    of each event's start and end, and the text that names it."""
    t0, now = seeded["t0"], seeded["now"]
    found = found_events(seeded, t0 - timedelta(hours=1), now + timedelta(minutes=5))
    # the ground truth: exactly the seeded events, at the seeded times
    assert [(e["kind"], e["start"]) for e in found] == [
        ("stuck_meter", t0),
        ("sag", t0 + SAG_AT),
        ("swell", t0 + SWELL_AT),
    ], found
    assert found[0]["end"] == t0 + STUCK_SLOTS * timedelta(minutes=15)
    assert found[1]["end"] == t0 + SAG_AT + timedelta(minutes=SAG_MINUTES)
    return found


def found_events(seeded, start: datetime, end: datetime) -> list[dict]:
    """The marked house's events that the analytics API finds in [start, end) (naive UTC), by start."""
    base, house = seeded["base"], seeded["marked"]
    span = {"start": start.isoformat() + "Z", "end": end.isoformat() + "Z"}
    found = []
    for what, key, names in (("anomalies", "anomalies", {"stuck_meter": "Stuck meter"}),
                             ("voltage-events", "events", {"sag": "Voltage sag", "swell": "Voltage swell"})):  # fmt: skip
        r = requests.get(f"{base}/api/v1/analytics/{what}", params=span | {"house_id": house},
                         headers=seeded["admin"], timeout=60)  # fmt: skip
        assert r.status_code == 200, r.text
        for e in r.json()[key]:
            start, end = (datetime.fromisoformat(e[k].replace("Z", "")) for k in ("start", "end"))
            found.append({"kind": e["kind"], "start": start, "end": end, "x0": local_iso(start),
                          "x1": local_iso(end), "name": names[e["kind"]]})  # fmt: skip
    found.sort(key=lambda e: e["start"])
    return found


def marks(page, graph_id: str) -> dict | None:
    return page.evaluate(MARKS_JS, graph_id)


def wait_for_marks(page, graph_id: str, title_part: str, count: int) -> dict:
    """Wait until the chart of `title_part` is drawn with `count` marked events, then return its marks."""
    page.wait_for_function(
        f"""([id, part, n]) => {{ const m = ({MARKS_JS})(id);
              return !!(m && m.title.includes(part) && m.marks.reduce((a, d) => a + d.x.length, 0) === n); }}""",
        arg=[graph_id, title_part, count],
        timeout=30_000,
    )
    return marks(page, graph_id)


def assert_marked(drawn: dict, events: list[dict], house: int) -> None:
    """One shaded span per event over the whole plot height, from its local start to its end, and one
    marker at its start whose hover text names the event, the house and the local start time."""
    spans = sorted((s["x0"], s["x1"]) for s in drawn["shapes"])
    assert spans == sorted((e["x0"], e["x1"]) for e in events)
    assert {s["yref"] for s in drawn["shapes"]} == {"paper"}
    shown = sorted((x, text) for m in drawn["marks"] for x, text in zip(m["x"], m["text"], strict=True))
    assert [x for x, _ in shown] == [e["x0"] for e in events]
    for (_x, text), e in zip(shown, events, strict=True):
        assert text.startswith(f"{e['name']}, house #{house}: {e['x0'][:10]} {e['x0'][11:16]} - "), text
    assert all(m["hovertemplate"].startswith("%{text}") for m in drawn["marks"])


def marker_of(page, graph_id: str, text_start: str):
    """The locator of the drawn marker whose text starts with `text_start`."""
    where = page.evaluate(
        """([id, start]) => { const el = document.querySelector('#' + id + ' .js-plotly-plot');
             const scatters = el.data.filter(d => d.type === 'scatter' || !d.type);
             for (let i = 0; i < scatters.length; i++) {
               const j = (scatters[i].text || []).findIndex(t => String(t).startsWith(start));
               if (j >= 0) return [i, j]; }
             return null; }""",
        [graph_id, text_start],
    )
    assert where is not None, text_start
    return page.locator(f"#{graph_id} .scatterlayer .trace").nth(where[0]).locator(".point").nth(where[1])


def query(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def overlapping(events: list[dict], lo: datetime, hi: datetime) -> list[dict]:
    return [e for e in events if e["start"] < hi and e["end"] > lo]


def seen_in(e: dict, lo: datetime, hi: datetime) -> tuple:
    """(kind, start, end) of a seeded event as the services report it for [lo, hi): an anomaly is judged with
    28 days of history before the range (dashboard/analytics.py ANOMALY_HISTORY), so only the range's end cuts
    it; a voltage event is read from the range's own readings, so both ends do."""
    start = e["start"] if e["kind"] == "stuck_meter" else max(e["start"], lo)
    return e["kind"], start, min(e["end"], hi)


def in_range(seeded, events: list[dict], lo: datetime, hi: datetime) -> list[dict]:
    """The events a chart of [lo, hi) marks: what the analytics service finds in that range. An event that
    lies wholly inside it is found as seeded; one that crosses the range's end is seen only up to it (the
    stuck meter of 22:00-00:15 ends at midnight on a chart that ends there, or is not found at all if less
    than two hours of it are inside); a stuck meter that crosses its start (23:30-01:45 on the next day's
    chart) is found whole, from the history before the range (`seen_in`)."""
    found = found_events(seeded, lo, hi)
    seen = {seen_in(e, lo, hi) for e in overlapping(events, lo, hi)}
    for e in found:
        if e not in events:  # seen only in part: a seeded event cut at an end of the range
            assert (e["kind"], e["start"], e["end"]) in seen, (e, events)
    whole = [
        e for e in overlapping(events, lo, hi) if seen_in(e, lo, hi) == (e["kind"], e["start"], e["end"])
    ]
    assert whole == [e for e in found if e in events], (found, events)
    return found


def local_day_bounds(day) -> tuple[datetime, datetime]:
    """A local day as naive-UTC [start, end)."""
    lo = datetime(day.year, day.month, day.day, tzinfo=ZONE)
    return tuple(t.astimezone(UTC).replace(tzinfo=None) for t in (lo, lo + timedelta(days=1)))


def bar_under(page, graph_id: str, marker) -> str | None:
    """The x (the bucket's local start) of the drawn bar whose slot holds the marker's centre, or None: the
    mark is on the bar of its time as the user sees it. A bar's slot is the bar and half the gap on each
    side (BAR_GAP of its bucket): an event in the last minutes of a day (or the first) is drawn at its
    time, in the gap beside its day's bar, not on the next day's."""
    box = marker.bounding_box()
    return page.evaluate(
        """([id, cx, gap]) => { const el = document.querySelector('#' + id + ' .js-plotly-plot');
             for (const p of document.querySelectorAll('#' + id + ' .bars .point')) {
               const r = p.getBoundingClientRect(), pad = r.width / (1 - gap) * gap / 2;
               if (r.width > 0 && r.left - pad <= cx && cx < r.right + pad && p.__data__)
                 return String(el.data[0].x[p.__data__.i]); }
             return null; }""",
        [graph_id, box["x"] + box["width"] / 2, BAR_GAP],
    )


def assert_on_their_bars(page, events: list[dict], daily: bool) -> None:
    """Each voltage event's marker lies over the bar of its local hour (or day)."""
    for e in events:
        if e["kind"] in ("sag", "swell"):
            start = datetime.fromisoformat(e["x0"])
            bucket = start.date().isoformat() if daily else start.replace(minute=0, second=0).isoformat()
            marker = marker_of(page, "historical-consumption", e["name"])
            assert bar_under(page, "historical-consumption", marker) == bucket, (e, bucket)


def test_historical_marks_the_events_and_a_day_bar_drills_down_and_back(open_as, seeded):
    events, house = expected_events(seeded), seeded["marked"]
    page = open_as("analyst", f"/historical?scope={house}")  # the last 24 hours, hourly
    drawn = wait_for_marks(page, "historical-consumption", f"(#{house})", len(events))
    assert_marked(drawn, events, house)
    assert_on_their_bars(page, events, daily=False)
    text = hover(page, "historical-consumption", marker_of(page, "historical-consumption", "Voltage sag"))
    assert (
        f"Voltage sag, house #{house}: " in text and f"({SAG_V:.0f}-{SAG_V:.0f} V, {SAG_MINUTES} min)" in text
    )
    shot(page, "marks-historical-24h")

    # daily bars of the sag's day and the day before; a click on the sag's day opens its hours
    day = datetime.fromisoformat(events[1]["x0"]).date()
    days = f"range=custom&from={day - timedelta(days=1)}&to={day}&bars=day&scope={house}"
    page.goto(f"/historical?{days}")
    page.wait_for_selector("#nav-logout")
    wait_for_length(page, "historical-consumption", 2)
    lo, hi = local_day_bounds(day - timedelta(days=1))[0], local_day_bounds(day)[1]
    in_days = in_range(seeded, events, lo, hi)  # all of them, unless one crosses the range's ends
    assert any(e["kind"] == "sag" for e in in_days)  # on `day` by construction
    assert_marked(wait_for_marks(page, "historical-consumption", f"(#{house})", len(in_days)), in_days, house)
    assert_on_their_bars(page, in_days, daily=True)  # the last day's afternoon included
    shot(page, "marks-historical-days")
    drilled = f"() => location.search.includes('from={day}&to={day}&bars=hour')"
    bar = page.locator("#historical-consumption .bars .point").nth(1)
    click_point(page, "historical-consumption", bar, drilled)
    lo, hi = local_day_bounds(day)
    day_hours = round((hi - lo) / timedelta(hours=1))  # 23 or 25 on a DST change day
    hours = wait_for_length(page, "historical-consumption", day_hours)[0]
    assert hours["x0"] == f"{day}T00:00:00" and hours["x1"] == f"{day}T23:00:00"
    assert query(page) == {
        "range": "custom",
        "from": str(day),
        "to": str(day),
        "bars": "hour",
        "scope": str(house),
    }
    in_day = in_range(seeded, events, lo, hi)
    assert any(e["kind"] == "sag" for e in in_day)
    assert_marked(wait_for_marks(page, "historical-consumption", f"(#{house})", len(in_day)), in_day, house)
    assert_on_their_bars(page, in_day, daily=False)
    assert "Hourly bars" in page.inner_text("#historical-caption")
    shot(page, "marks-historical-drilled-to-hours")

    page.go_back()  # the days again, as the URL had them
    page.wait_for_function(
        f"() => location.search.includes('from={day - timedelta(days=1)}&to={day}')", timeout=10_000
    )
    wait_for_length(page, "historical-consumption", 2)
    assert "Daily bars" in page.inner_text("#historical-caption")
    assert page.locator("#historical-dates").input_value() == str(day - timedelta(days=1))
    assert len(marks(page, "historical-consumption")["shapes"]) == len(in_days)
    page.go_forward()  # and forward to the hours
    page.wait_for_function(drilled, timeout=10_000)
    wait_for_length(page, "historical-consumption", day_hours)

    # the quiet house: the same hours, bars with data and not one mark
    page.goto(f"/historical?scope={seeded['quiet']}")
    page.wait_for_selector("#nav-logout")
    quiet = wait_for_marks(page, "historical-consumption", f"(#{seeded['quiet']})", 0)
    assert quiet["shapes"] == [] and quiet["marks"] == []
    assert wait_for_traces(page, "historical-consumption")[0]["points"] >= 4
    assert page.errors == []


def test_real_time_marks_the_events_of_its_window(open_as, seeded):
    events, house = expected_events(seeded), seeded["marked"]
    page = open_as("analyst", f"/real-time?scope={house}&window=60m&refresh=off")
    now = datetime.now(UTC).replace(tzinfo=None)
    shown = overlapping(events, now - timedelta(minutes=60), now)  # the swell, not the older events
    assert [e["kind"] for e in shown] == ["swell"]
    drawn = wait_for_marks(page, "realtime-graph", "Marks house", len(shown))
    assert_marked(drawn, shown, house)
    text = hover(page, "realtime-graph", marker_of(page, "realtime-graph", "Voltage swell"))
    assert f"Voltage swell, house #{house}: " in text and f"({SWELL_V:.0f}-{SWELL_V:.0f} V" in text, text
    shot(page, "marks-realtime")
    page.goto(f"/real-time?scope={seeded['quiet']}&window=60m&refresh=off")
    page.wait_for_selector("#nav-logout")
    wait_for_traces(page, "realtime-graph")
    quiet = wait_for_marks(page, "realtime-graph", "Quiet house", 0)
    assert quiet["shapes"] == [] and quiet["marks"] == []
    assert page.errors == []


def test_analytics_a_houses_bar_opens_it_and_back_returns(open_as, seeded):
    house = seeded["marked"]
    page = open_as("analyst", "/analytics?scope=all")
    page.wait_for_function(
        """(h) => { const el = document.querySelector('#analytics-anomaly-graph .js-plotly-plot');
             return !!(el && el.data && el.data.some(t => t.type === 'bar' && (t.customdata || []).includes(h))); }""",
        arg=str(house),
        timeout=60_000,  # all houses: the background scan
    )
    where = page.evaluate(
        """(h) => { const el = document.querySelector('#analytics-anomaly-graph .js-plotly-plot');
             for (let i = 0; i < el.data.length; i++) {
               const j = el.data[i].customdata.indexOf(h);
               if (j >= 0 && el.data[i].y[j] > 0) return [i, j, el.data[i].name]; }
             return null; }""",
        str(house),
    )
    assert where is not None and where[2] == "Stuck meter", where
    shot(page, "marks-analytics-all")
    bar = (
        page.locator("#analytics-anomaly-graph .barlayer .trace")
        .nth(where[0])
        .locator(".point")
        .nth(where[1])
    )
    click_point(page, "analytics-anomaly-graph", bar, f"() => location.search.includes('scope={house}')")
    page.wait_for_function(
        """(h) => { const el = document.querySelector('#analytics-anomaly-graph .js-plotly-plot');
             const t = el && el.layout && el.layout.title;
             return !!(t && String(t.text || t).includes('(#' + h + ')')); }""",
        arg=str(house),
        timeout=30_000,
    )
    assert f"(#{house})" in page.inner_text("#analytics-scope")
    stuck = [
        t for t in wait_for_traces(page, "analytics-anomaly-graph") if t["name"] == "Anomaly: Stuck meter"
    ]
    assert [t["points"] for t in stuck] == [1]
    assert [r[:2] for r in table_rows(page)] == [[f"Marks house (#{house})", "Stuck meter"]]
    shot(page, "marks-analytics-house")
    page.go_back()
    page.wait_for_function("() => location.search.includes('scope=all')", timeout=10_000)
    page.wait_for_function(
        "() => document.querySelector('#analytics-scope').innerText.includes('All houses')", timeout=10_000
    )
    assert page.errors == []


def table_rows(page) -> list[list[str]]:
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('#analytics-anomaly-rows tbody tr'))
                   .map(tr => Array.from(tr.querySelectorAll('td')).map(td => td.innerText.trim()))"""
    )


def test_a_consumer_never_gets_marks_of_another_house(open_as, seeded):
    house, base = seeded["marked"], seeded["base"]
    page = open_as("consumer", f"/historical?scope={house}")  # a link to a house that is not theirs
    page.wait_for_selector("text=not in your scope")
    page.wait_for_function(
        "() => { const m = ("
        + MARKS_JS
        + ")('historical-consumption'); return !!(m && m.title.includes('All my houses')); }",
        timeout=20_000,
    )
    drawn = marks(page, "historical-consumption")
    assert not any(f"house #{house}" in t for m in drawn["marks"] for t in m["text"])
    assert f"#{house}" not in page.inner_text("#historical-caption")

    # the same request forged from the consumer's own session: refused, nothing of the house in the answer
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrf_access_token")
    r = page.request.post(f"{base}/_dash-update-component", data=historical_payload(choice=str(house)),
                          headers={"X-CSRF-TOKEN": csrf})  # fmt: skip
    assert r.status == 200, r.text()
    body = r.json()["response"]
    figure = body["historical-consumption"]["figure"]
    assert figure["layout"].get("shapes", []) == [] and not [
        t for t in figure["data"] if t.get("mode") == "markers"
    ]
    assert body["historical-message"]["color"] == "danger" and f"house #{house}" not in r.text()
    # and the API the marks come from answers the consumer nothing of it either
    consumer = api_headers(base, "consumer")
    span = {
        "start": (seeded["t0"]).isoformat() + "Z",
        "end": seeded["now"].isoformat() + "Z",
        "house_id": house,
    }
    for what in ("anomalies", "voltage-events"):
        r = requests.get(f"{base}/api/v1/analytics/{what}", params=span, headers=consumer, timeout=30)
        assert r.status_code in (403, 404), (what, r.status_code, r.text)
    assert page.errors == []
