"""The range picker beyond Historical, in chromium on the demo server: on Analytics and Exports, "7 d" then
previous gives the week before, drawn; a reload keeps that range, and its URL opened in another tab (a new
session) shows the same range; next comes back but never past today."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest

from tests.browser.helpers import graph_traces, shot
from tests.clock import local_today_clear_of_midnight

pytestmark = pytest.mark.browser
ZONE = ZoneInfo("Europe/Athens")  # the demo server's TIMEZONE (the default)
DEFAULT_RANGE = {"analytics": "7d", "exports": "30d"}


def query(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def picked_days(page, prefix: str) -> tuple[str, str]:
    """The date picker's days as the browser shows them (Dash 4: the start input carries the picker's id)."""
    return page.input_value(f"#{prefix}-dates"), page.input_value(f"#{prefix}-dates-end-date")


def wait_for_days(page, prefix: str, first, last, timeout: float = 15_000) -> None:
    page.wait_for_function(
        """([p, a, b]) => { const s = document.querySelector('#' + p + '-dates'),
                                  e = document.querySelector('#' + p + '-dates-end-date');
                            return !!(s && e && s.value === a && e.value === b); }""",
        arg=[prefix, str(first), str(last)],
        timeout=timeout,
    )


def drawn(page, prefix: str, first, last) -> None:
    """The page shows data for exactly these local days: Exports a row per day, Analytics the house's
    consumption from the first day to the last."""
    if prefix == "exports":
        days = (last - first).days + 1
        page.wait_for_function(
            """([a, n]) => { const rows = [...document.querySelectorAll('#exports-rows tbody tr')];
                             return rows.length === n && rows[0].innerText.includes(a); }""",
            arg=[str(first), days],
            timeout=20_000,
        )
        return
    page.wait_for_function(
        """([a, b]) => { const el = document.querySelector('#analytics-anomaly-graph .js-plotly-plot');
                         const t = el && el.data && el.data[0];
                         return !!(t && t.x && t.x.length && String(t.x[0]).startsWith(a)
                                   && String(t.x[t.x.length - 1]).startsWith(b)); }""",
        arg=[str(first), str(last)],
        timeout=30_000,
    )
    assert graph_traces(page, "analytics-anomaly-graph")[0]["points"] > 0


@pytest.mark.parametrize("prefix", ["analytics", "exports"])
def test_last_7_days_then_previous_survives_a_reload_and_a_shared_link(open_as, prefix):
    today = local_today_clear_of_midnight(margin_s=120)
    page = open_as("analyst", f"/{prefix}")
    for label, days in (("30 d", 30), ("7 d", 7)):  # 7 d is Analytics' default: 30 d first, then 7 d
        page.locator(f"#{prefix}-range").get_by_text(label, exact=True).click()
        wait_for_days(page, prefix, today - timedelta(days=days - 1), today)  # the preset's days
    page.wait_for_function(  # the URL holds the range (a page's default range is left out)
        "(d) => (new URLSearchParams(location.search).get('range') || d) === '7d'",
        arg=DEFAULT_RANGE[prefix],
        timeout=10_000,
    )
    drawn(page, prefix, today - timedelta(days=6), today)
    assert page.locator(f"#{prefix}-next").is_disabled()  # a preset ends now

    page.locator(f"#{prefix}-previous").click()
    first, last = today - timedelta(days=13), today - timedelta(days=7)
    wait_for_days(page, prefix, first, last)
    page.wait_for_function(
        f"() => location.search.includes('range=custom&from={first}&to={last}')", timeout=10_000
    )
    drawn(page, prefix, first, last)
    shot(page, f"ranges-{prefix}-previous-week")

    page.reload()
    page.wait_for_selector("#nav-logout")
    wait_for_days(page, prefix, first, last)  # the reload keeps the range
    assert page.locator(f"#{prefix}-range input[value='custom']").is_checked()
    drawn(page, prefix, first, last)
    assert query(page)["from"] == str(first) and query(page)["to"] == str(last)
    shot(page, f"ranges-{prefix}-after-reload")

    other = open_as("analyst", urlparse(page.url).path + "?" + urlparse(page.url).query)  # another tab
    wait_for_days(other, prefix, first, last)
    drawn(other, prefix, first, last)
    assert picked_days(other, prefix) == (str(first), str(last))
    shot(other, f"ranges-{prefix}-shared-link")

    # next: the week after, which ends today; then next is disabled (never past today)
    other.locator(f"#{prefix}-next").click()
    wait_for_days(other, prefix, today - timedelta(days=6), today)
    other.wait_for_selector(f"#{prefix}-next[disabled]", timeout=10_000)
    assert page.errors == [] and other.errors == []


def picker_calls(page) -> list[int]:
    """The statuses of the range picker's server callback on Analytics from now on (204: a wasted request
    that changed nothing)."""
    statuses: list[int] = []
    page.on(
        "response",
        lambda r: (
            statuses.append(r.status)
            if "_dash-update-component" in r.url
            and "analytics-range.value" in (r.request.post_data or "")[:200]
            else None
        ),
    )
    return statuses


def watch_relayout(page, graph_id: str) -> None:
    """Keep the chart's last Plotly relayout event (what a zoom asked for) in window.__relayout."""
    page.evaluate(
        """(id) => { const el = document.querySelector('#' + id + ' .js-plotly-plot');
                     window.__relayout = null; el.on('plotly_relayout', (e) => { window.__relayout = e; }); }""",
        graph_id,
    )


def zoomed_days(event: dict) -> tuple[str, str]:
    """The local days a relayout's x range covers (a range ending at a midnight ends the day before)."""
    lo, hi = event["xaxis.range[0]"], event["xaxis.range[1]"]
    last = datetime.fromisoformat(hi.replace(" ", "T"))
    if last.time() == datetime.min.time():
        last -= timedelta(microseconds=1)
    return lo[:10], last.date().isoformat()


def test_a_drag_zoom_on_an_analytics_chart_sets_the_range_and_a_double_click_zooms_out(open_as):
    """Zoom on a chart applies to the page (as on Historical and in Grafana): the picker shows the zoomed
    local days, the URL holds them and the chart is drawn for them; a double-click zooms out (twice as
    long, never past today); Back returns to the range before, and a preset after it shows its days.
    Choosing "Custom" and a chart's draws never call the server for nothing."""
    today = local_today_clear_of_midnight(margin_s=120)
    page = open_as("analyst", "/analytics")
    drawn(page, "analytics", today - timedelta(days=6), today)
    statuses = picker_calls(page)
    page.locator("#analytics-range").get_by_text("Custom", exact=True).click()  # the days shown stay
    page.wait_for_selector("#analytics-dates:not([disabled])", timeout=10_000)

    graph = "analytics-anomaly-graph"
    watch_relayout(page, graph)
    box = page.locator(f"#{graph} .nsewdrag").first.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.30, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.45, y, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.62, y, steps=5)
    page.mouse.up()
    page.wait_for_function("() => window.__relayout && window.__relayout['xaxis.range[0]']", timeout=10_000)
    first, last = zoomed_days(page.evaluate("() => window.__relayout"))
    assert first < last <= str(today), (first, last)  # a span of days inside the week
    wait_for_days(page, "analytics", first, last, 30_000)
    page.wait_for_function(
        f"() => location.search.includes('range=custom&from={first}&to={last}')", timeout=10_000
    )
    assert page.locator("#analytics-range input[value='custom']").is_checked()
    drawn(page, "analytics", date.fromisoformat(first), date.fromisoformat(last))
    shot(page, "ranges-analytics-zoomed")

    # a double-click zooms out: twice as long around the middle, moved back to end today if need be
    length = (date.fromisoformat(last) - date.fromisoformat(first)).days + 1
    wide_first = date.fromisoformat(first) - timedelta(days=(length + 1) // 2)
    wide_last = date.fromisoformat(last) + timedelta(days=length // 2)
    if wide_last > today:
        wide_first, wide_last = wide_first - (wide_last - today), today
    box = page.locator(f"#{graph} .nsewdrag").first.bounding_box()
    page.evaluate("() => { window.__relayout = null; }")
    page.mouse.dblclick(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function("() => window.__relayout && window.__relayout['xaxis.autorange']", timeout=10_000)
    wait_for_days(page, "analytics", wide_first, wide_last, 30_000)
    page.wait_for_function(
        f"() => location.search.includes('range=custom&from={wide_first}&to={wide_last}')", timeout=10_000
    )
    drawn(page, "analytics", wide_first, wide_last)

    page.go_back()  # the zoomed range again
    wait_for_days(page, "analytics", first, last, 30_000)
    drawn(page, "analytics", date.fromisoformat(first), date.fromisoformat(last))
    page.locator("#analytics-range").get_by_text("30 d", exact=True).click()  # back to a preset
    wait_for_days(page, "analytics", today - timedelta(days=29), today, 30_000)
    page.wait_for_function("() => location.search.includes('range=30d')", timeout=10_000)
    page.wait_for_selector("#analytics-dates[disabled]", timeout=10_000)
    drawn(page, "analytics", today - timedelta(days=29), today)
    assert statuses and 204 not in statuses, statuses  # "Custom" and the draws sent nothing to the picker
    assert page.errors == []
