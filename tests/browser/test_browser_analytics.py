"""The Analytics page in chromium on the demo server (6 houses x 30 days with injected anomalies and
voltage events): an analyst picks the house with the most anomalies and sees them listed and marked on
its consumption chart, the voltage, power-factor and load-profile tabs render with data (one chart drawn
at a time), all houses show every house; a consumer's page covers only their house. What the page lists
is what `GET /api/v1/analytics/...` answers for the same local days."""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import create_engine, select

from callbacks.analytics_figures import ANOMALY_KINDS
from dashboard.clock import to_local
from dashboard.schema import House, InjectedAnomaly
from tests.browser.helpers import graph_traces, shot, wait_for_traces
from tests.clock import local_today_clear_of_midnight
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser
ZONE = ZoneInfo("Europe/Athens")  # the demo server's TIMEZONE (the default)
CONSUMPTION_KINDS = ("consumption_spike", "night_load", "stuck_meter")
DAYS = 30


def local_days() -> tuple[str, str, datetime, datetime]:
    """The page's "Last 30 days": ISO dates and the bounds as aware datetimes (clear of a local midnight for
    the rest of the test, which compares the page's days with these)."""
    today = local_today_clear_of_midnight(margin_s=150)
    first = today - timedelta(days=DAYS - 1)
    lo = datetime(first.year, first.month, first.day, tzinfo=ZONE)
    hi = datetime(today.year, today.month, today.day, tzinfo=ZONE) + timedelta(days=1)
    return first.isoformat(), today.isoformat(), lo, hi


def api(base: str, username: str, what: str, lo: datetime, hi: datetime, **params):
    token = requests.post(f"{base}/api/v1/auth/login", json={"username": username, "password": PASSWORD},
                          timeout=10).json()["access_token"]  # fmt: skip
    r = requests.get(
        f"{base}/api/v1/analytics/{what}",
        params={"start": lo.isoformat(), "end": hi.isoformat(), **params},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return r.json()


def house_labels(db_url: str) -> dict[int, str]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        labels = {i: f"{name} (#{i})" for i, name in conn.execute(select(House.id, House.name))}
    engine.dispose()
    return labels


def injected(db_url: str, lo: datetime, hi: datetime) -> list:
    """The demo's ground truth of consumption anomalies overlapping [lo, hi)."""
    engine = create_engine(db_url)
    naive = [t.astimezone(ZoneInfo("UTC")).replace(tzinfo=None) for t in (lo, hi)]
    with engine.connect() as conn:
        rows = conn.execute(
            select(InjectedAnomaly.house_id, InjectedAnomaly.start, InjectedAnomaly.end).where(
                InjectedAnomaly.kind.in_(CONSUMPTION_KINDS),
                InjectedAnomaly.start < naive[1],
                InjectedAnomaly.end > naive[0],
            )
        ).all()
    engine.dispose()
    return rows


def show_tab(page, section: str) -> None:
    """Click an analysis' tab: its content alone is mounted, so the page holds one chart."""
    page.click(f"#analytics-tab-{section}")
    page.wait_for_selector(f"#analytics-{section}-graph", timeout=10_000)
    assert page.locator("#_pages_content .dash-graph").count() == 1


def choose(page, dropdown_id: str, label: str) -> None:
    page.click(f"#{dropdown_id}")
    page.locator('[role="option"]', has_text=label).first.click()


def table_rows(page, table_id: str) -> list[list[str]]:
    return page.evaluate(
        """(id) => Array.from(document.querySelectorAll('#' + id + ' tbody tr'))
                   .map(tr => Array.from(tr.querySelectorAll('td')).map(td => td.innerText.trim()))""",
        table_id,
    )


def until(page, probe, want, timeout_s: float = 25.0):
    """Poll `probe()` until it equals `want` (callbacks answer asynchronously); the last value on failure."""
    deadline = time.monotonic() + timeout_s
    got = probe()
    while got != want and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        got = probe()
    assert got == want
    return got


def chart(page, graph_id: str) -> dict:
    """The drawn figure: its title, traces and number of shapes (shaded windows)."""
    return page.evaluate(
        """(id) => { const el = document.querySelector('#' + id + ' .js-plotly-plot');
               if (!el || !el.layout) return {title: '', shapes: 0};
               const t = el.layout.title;
               return {title: String((t && (t.text || t)) || ''), shapes: (el.layout.shapes || []).length}; }""",
        graph_id,
    ) | {"traces": graph_traces(page, graph_id)}


def points(figure: dict, name: str) -> int:
    return sum(t["points"] for t in figure["traces"] if t["name"] == name)


def anomaly_cells(events: list[dict], labels: dict[int, str]) -> list[list[str]]:
    """House, kind, local start and end, as the page lists the API's anomalies."""
    return [
        [labels[e["house_id"]], ANOMALY_KINDS[e["kind"]][0], local(e["start"]), local(e["end"])]
        for e in events
    ]


def local(iso_utc: str) -> str:
    return f"{to_local(iso_utc, 'Europe/Athens'):%Y-%m-%d %H:%M}"


def voltage_counts(summary: list[dict], labels: dict[int, str]) -> list[list[str]]:
    """House and the count of each kind, as the page's voltage table lists the API's summary."""
    rows = {}
    for s in summary:
        rows.setdefault(labels[s["house_id"]], {})[s["kind"]] = str(s["count"])
    return [
        [house] + [kinds[k] for k in ("sag", "swell", "interruption")]
        for house, kinds in sorted(rows.items())
    ]


CALLBACKS = re.compile(r"/_dash-update-component(\?|$)")  # Dash adds a query string
# the anomaly chart's opacity as seen: its own and its ancestors' (dcc.Loading fades a wrapper)
OPACITY_JS = """(() => { let o = 1;
  for (let e = document.querySelector('#analytics-anomaly-graph'); e; e = e.parentElement) {
    o *= Number(getComputedStyle(e).opacity); }
  return o; })()"""


def test_analyst_sees_anomalies_listed_and_marked_and_every_analysis(open_as, demo_server, demo_db_url):
    first, last, lo, hi = local_days()
    labels = house_labels(demo_db_url)
    events = api(demo_server, "analyst", "anomalies", lo, hi)["anomalies"]
    if injected(demo_db_url, lo, hi):  # scored properly in tests/ui/test_analytics_page.py
        assert events, "the demo holds injected anomalies in the last 30 days but none were detected"
    per_house = Counter(e["house_id"] for e in events)
    house = per_house.most_common(1)[0][0] if per_house else min(labels)
    label = labels[house]
    mine = [e for e in events if e["house_id"] == house]

    page = open_as("analyst", "/analytics")
    wait_for_traces(page, "analytics-anomaly-graph")  # the first house over the last 7 days
    choose(page, "analytics-scope", label)
    # the house's own chart first (its callback done and the fade gone), so the range change below is the
    # only callback in flight when the fade is looked for
    until(page, lambda: label in chart(page, "analytics-anomaly-graph")["title"], True)
    page.wait_for_function(f"() => {OPACITY_JS} > 0.9", timeout=10_000)
    # while its callback runs, the chart stays in place, faded under a spinner: the old range never looks
    # current (the callback's answer is held here until that shows; the other callbacks go through)
    held: list = []
    holding = [True]

    def hold_the_chart(route):
        if holding[0] and "analytics-anomaly-graph" in (route.request.post_data or ""):
            held.append(route)
        else:
            route.continue_()

    page.route(CALLBACKS, hold_the_chart)
    page.locator("#analytics-range").get_by_text("30 d", exact=True).click()
    page.wait_for_function(f"() => {OPACITY_JS} < 0.6", timeout=10_000)
    assert page.locator(
        "#analytics-anomaly-card .dash-spinner, #analytics-anomaly-card [class*=spinner]"
    ).count()
    assert page.locator("#analytics-anomaly-graph .js-plotly-plot").is_visible()  # the chart is not hidden
    holding[0] = False
    for route in held:
        route.continue_()
    page.unroute(CALLBACKS)
    page.wait_for_function(
        "(d) => document.querySelector('#analytics-dates').value === d", arg=first, timeout=10_000
    )

    # anomalies: listed in the table, shaded and marked on the house's 15-minute consumption chart
    until(
        page, lambda: [r[:4] for r in table_rows(page, "analytics-anomaly-rows")], anomaly_cells(mine, labels)
    )
    until(page, lambda: points(chart(page, "analytics-anomaly-graph"), "Consumption (kW)") >= 28 * 96, True)
    figure = chart(page, "analytics-anomaly-graph")
    assert label in figure["title"]
    page.wait_for_function(f"() => {OPACITY_JS} === 1", timeout=10_000)  # drawn: no longer faded
    marked = sum(t["points"] for t in figure["traces"] if (t["name"] or "").startswith("Anomaly: "))
    assert marked == figure["shapes"] == len(mine)
    if not mine:
        assert "No anomalies found" in page.inner_text("#analytics-anomaly-message")

    shot(page, "analytics-analyst-house")

    # power factor: a point per local day; load profile: weekday and weekend lines of 96 slots
    days = api(demo_server, "analyst", "power-factor", lo, hi, house_id=house)["days"]
    assert len(days) >= 29
    show_tab(page, "pf")
    until(page, lambda: points(chart(page, "analytics-pf-graph"), "Daily mean power factor"), len(days))
    assert label in chart(page, "analytics-pf-graph")["title"]
    profile = api(demo_server, "analyst", "load-profile", lo, hi, house_id=house)
    show_tab(page, "profile")
    until(page, lambda: page.inner_text("#analytics-profile-peak"), f"{profile['peak_kw']:.2f} kW")
    lines = chart(page, "analytics-profile-graph")["traces"]
    assert [t["length"] for t in lines] == [96, 96] and min(t["points"] for t in lines) >= 90
    summary = api(demo_server, "analyst", "voltage-events", lo, hi, house_id=house)["summary"]
    voltage = lambda: [[r[0], r[1], r[3], r[5]] for r in table_rows(page, "analytics-voltage-rows")]  # noqa: E731
    show_tab(page, "voltage")
    until(page, voltage, voltage_counts(summary, labels))
    shot(page, "analytics-analyst-house-voltage")
    # back to the anomalies: the same house and days, still listed and marked
    show_tab(page, "anomaly")
    until(
        page, lambda: [r[:4] for r in table_rows(page, "analytics-anomaly-rows")], anomaly_cells(mine, labels)
    )
    assert points(chart(page, "analytics-anomaly-graph"), "Consumption (kW)") >= 28 * 96

    # all houses, from the voltage tab: the background scan (its progress above the tabs) fills every
    # house's voltage row and the event timeline, the anomaly list and counts by kind, the power factor
    show_tab(page, "voltage")
    choose(page, "analytics-scope", "All houses")
    result = api(demo_server, "analyst", "voltage-events", lo, hi)
    until(page, voltage, voltage_counts(result["summary"], labels))
    assert len(table_rows(page, "analytics-voltage-rows")) == len(labels)
    if result["events"]:
        timeline = wait_for_traces(page, "analytics-voltage-graph")
        assert sum(t["points"] for t in timeline) == 2 * len(result["events"])  # start and end of each
        assert {t["name"] for t in timeline} == {e["kind"].capitalize() for e in result["events"]}
    show_tab(page, "anomaly")
    until(
        page,
        lambda: [r[:4] for r in table_rows(page, "analytics-anomaly-rows")],
        anomaly_cells(events, labels),
    )
    if events:
        bars = wait_for_traces(page, "analytics-anomaly-graph")
        assert {t["type"] for t in bars} == {"bar"}
        assert f"{len(events)} anomal" in page.inner_text("#analytics-anomaly-counts")
    show_tab(page, "pf")
    until(page, lambda: "All houses (time-weighted)" in chart(page, "analytics-pf-graph")["title"], True)
    show_tab(page, "profile")
    until(page, lambda: "All houses (summed)" in chart(page, "analytics-profile-graph")["title"], True)
    shot(page, "analytics-analyst-all")
    assert page.errors == []


def test_consumer_sees_only_their_house(open_as, demo_server, demo_db_url):
    first, last, lo, hi = local_days()
    labels = house_labels(demo_db_url)
    page = open_as("consumer", "/analytics")
    page.click("#analytics-scope")
    options = page.locator('[role="option"]')
    options.first.wait_for(timeout=5_000)
    names = [text.strip() for text in options.all_inner_texts()]
    assert names[0] == "All my houses" and len(names) == 2, names  # the demo consumer has one house
    options.first.click()
    page.locator("#analytics-range").get_by_text("30 d", exact=True).click()
    mine = names[1]
    assert mine in labels.values()
    summary = api(demo_server, "consumer", "voltage-events", lo, hi)["summary"]
    show_tab(page, "voltage")
    rows = until(
        page,
        lambda: [[r[0], r[1], r[3], r[5]] for r in table_rows(page, "analytics-voltage-rows")],
        voltage_counts(summary, labels),
    )
    assert [r[0] for r in rows] == [mine]
    show_tab(page, "profile")
    until(page, lambda: "All my houses" in chart(page, "analytics-profile-graph")["title"], True)
    days = api(demo_server, "consumer", "power-factor", lo, hi)["days"]
    assert {d["house_id"] for d in days} == {h for h, name in labels.items() if name == mine}
    show_tab(page, "pf")
    until(page, lambda: points(chart(page, "analytics-pf-graph"), "Daily mean power factor"), len(days))
    events = api(demo_server, "consumer", "anomalies", lo, hi)["anomalies"]
    show_tab(page, "anomaly")
    until(
        page,
        lambda: [r[:4] for r in table_rows(page, "analytics-anomaly-rows")],
        anomaly_cells(events, labels),
    )
    assert {r[0] for r in table_rows(page, "analytics-anomaly-rows")} <= {mine}
    shot(page, "analytics-consumer")
    assert page.errors == []


def test_all_my_houses_with_one_house_draws_its_consumption_chart(open_as, demo_server):
    """The demo consumer has one house: "All my houses" draws that house's consumption line on the
    anomaly tab, as choosing the house does, not an empty placeholder."""
    page = open_as("consumer", "/analytics")
    week = points({"traces": wait_for_traces(page, "analytics-anomaly-graph")}, "Consumption (kW)")
    assert week > 0  # the default: the consumer's house, the last 7 days
    choose(page, "analytics-scope", "All my houses")
    page.locator("#analytics-range").get_by_text(
        "30 d", exact=True
    ).click()  # a longer range: more points, so the new chart is told apart
    until(page, lambda: points(chart(page, "analytics-anomaly-graph"), "Consumption (kW)") > week, True)
    assert "All my houses" in page.inner_text("#analytics-scope")
    shot(page, "analytics-consumer-all-my-houses")
    assert page.errors == []
