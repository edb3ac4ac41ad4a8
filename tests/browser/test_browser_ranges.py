"""The range picker beyond Historical, in chromium on the demo server: on Analytics and Exports, "7 d" then
previous gives the week before, drawn; a reload keeps that range, and its URL opened in another tab (a new
session) shows the same range; next comes back but never past today."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest

from tests.browser.helpers import graph_traces, shot

pytestmark = pytest.mark.browser
ZONE = ZoneInfo("Europe/Athens")  # the demo server's TIMEZONE (the default)
DEFAULT_RANGE = {"analytics": "7d", "exports": "30d"}


def query(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def picked_days(page, prefix: str) -> tuple[str, str]:
    """The date picker's days as the browser shows them (Dash 4: the start input carries the picker's id)."""
    return page.input_value(f"#{prefix}-dates"), page.input_value(f"#{prefix}-dates-end-date")


def wait_for_days(page, prefix: str, first, last) -> None:
    page.wait_for_function(
        """([p, a, b]) => { const s = document.querySelector('#' + p + '-dates'),
                                  e = document.querySelector('#' + p + '-dates-end-date');
                            return !!(s && e && s.value === a && e.value === b); }""",
        arg=[prefix, str(first), str(last)],
        timeout=15_000,
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
    today = datetime.now(ZONE).date()
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
