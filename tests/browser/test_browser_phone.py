"""The phone layout (390x844) in chromium on the demo server (review B5, B6, B7, gap 13): the menu closes
after a choice, no chart's legend, modebar or title overlaps another or an axis title, no page scrolls
sideways, and tables show their key columns first (Exports: the period, then the kWh columns, the period
on one line; Admin: the username column stays in view when the table scrolls)."""

from __future__ import annotations

import pytest

from tests.browser.helpers import shot
from tests.browser.theme_helpers import CHART_BOXES_JS, overlaps

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
CHART_PAGES = {"admin": ["/", "/real-time", "/historical", "/forecasts", "/analytics"], "consumer": ["/home"]}

CHARTS_DRAWN_JS = """() => {
    const plots = Array.from(document.querySelectorAll('.js-plotly-plot'));
    const busy = (p) => ((p.layout && p.layout.annotations) || []).some(a => /Loading|Scanning/.test(a.text));
    return plots.length > 0 && plots.every(p => p._fullLayout && !busy(p))
        && !document.querySelector('[data-dash-is-loading="true"]');
}"""
# The text of the first cell of each body row, and how many line boxes it is drawn on.
PERIOD_LINES_JS = """() => Array.from(document.querySelectorAll('#exports-rows tbody tr > td:first-child'))
    .map(td => { const range = document.createRange(); range.selectNodeContents(td);
                 const tops = new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top)));
                 return {text: td.innerText, lines: tops.size}; })"""


def phone(page, path: str) -> None:
    page.set_viewport_size(PHONE)
    page.goto(path)
    page.wait_for_selector("#nav-logout", state="attached")


def no_sideways_scroll(page) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide"


@pytest.mark.parametrize("username", sorted(CHART_PAGES))
def test_phone_charts_have_no_overlapping_legend_modebar_or_titles(open_as, username):
    page = open_as(username)
    checked = 0
    for path in CHART_PAGES[username]:
        phone(page, path)
        page.wait_for_function(CHARTS_DRAWN_JS, timeout=30_000)
        page.wait_for_timeout(600)  # plotly's resize to the narrow column
        no_sideways_scroll(page)
        for chart in page.evaluate(CHART_BOXES_JS):
            where = f"{path} #{chart['id']}"
            parts = {k: chart[k] for k in ("legend", "modebar", "gtitle", "xtitle") if chart[k]}
            names = sorted(parts)
            for i, a in enumerate(names):
                for b in names[i + 1 :]:
                    assert not overlaps(parts[a], parts[b]), f"{where}: {a} overlaps {b}"
            for tick in chart["xticks"]:
                assert not overlaps(chart["legend"], tick), f"{where}: the legend covers a tick label"
            figure = chart["figure"]
            for name, box in parts.items():  # inside the figure: not cut at either side
                assert figure["left"] - 1 <= box["left"] and box["right"] <= figure["right"] + 1, (
                    where,
                    name,
                )
            checked += 1
        shot(page, f"phone-{username}-{path.strip('/') or 'overview'}")
    assert checked >= len(CHART_PAGES[username])
    assert page.errors == []


def test_phone_menu_closes_after_a_choice_and_stays_open_on_desktop(open_as):
    page = open_as("consumer")
    phone(page, "/home")
    toggler = page.locator(".navbar-toggler")
    assert toggler.is_visible()
    assert not page.locator("#nav-historical").is_visible()  # collapsed to start with
    toggler.click()
    page.locator("#nav-historical").wait_for(state="visible")
    shot(page, "phone-menu-open")
    page.click("#nav-historical")
    page.wait_for_url("**/historical")
    page.locator("#nav-historical").wait_for(state="hidden")
    assert page.locator(".navbar-collapse.show").count() == 0
    page.wait_for_selector("#historical-consumption .js-plotly-plot")
    shot(page, "phone-menu-closed-after-choice")
    # the theme choice inside the open menu does not close it (not a page choice)
    toggler.click()
    page.locator("#theme-choice").wait_for(state="visible")
    page.select_option("#theme-choice", "dark")
    assert page.locator("#nav-historical").is_visible()
    # desktop: no toggler, the links stay where they are after a choice
    page.set_viewport_size({"width": 1400, "height": 900})
    page.click("#nav-exports")
    page.wait_for_url("**/exports")
    assert page.locator("#nav-historical").is_visible()
    assert page.errors == []


def test_phone_exports_table_shows_period_and_kwh_first_on_one_line(open_as):
    page = open_as("consumer")
    phone(page, "/exports")
    page.wait_for_selector("#exports-rows tbody tr")
    headers = page.locator("#exports-rows thead th").all_inner_texts()
    assert headers[0] == "period"
    assert all(h.endswith("_kwh") for h in headers[1:4]), headers
    assert "consumption_kwh" in headers[1:4]
    periods = page.evaluate(PERIOD_LINES_JS)
    assert periods and all(p["lines"] == 1 for p in periods), periods  # "2026-11-08", never "2026-" / "11-08"
    consumption = page.locator("#exports-rows thead th", has_text="consumption_kwh").bounding_box()
    assert consumption["x"] + consumption["width"] <= PHONE["width"]  # on screen without scrolling
    no_sideways_scroll(page)
    shot(page, "phone-exports")
    assert page.errors == []


def test_phone_admin_users_table_keeps_its_first_column_in_view(open_as):
    page = open_as("admin")
    phone(page, "/admin")
    page.wait_for_selector("#admin-users-rows tbody tr")
    no_sideways_scroll(page)
    holder = page.locator(".table-responsive:has(#admin-users-rows)")
    wide = page.evaluate(
        "() => { const h = document.querySelector('#admin-users-rows').parentElement;"
        " const before = h.scrollWidth > h.clientWidth; h.scrollLeft = h.scrollWidth; return before; }"
    )
    box = holder.bounding_box()
    first = page.locator("#admin-users-rows tbody tr:first-child > td:first-child").bounding_box()
    if wide:  # scrolled to the far right, the username column is still at the left edge
        assert abs(first["x"] - box["x"]) <= 2, (first, box)
    assert first["x"] >= 0 and first["x"] + first["width"] <= PHONE["width"]
    shot(page, "phone-admin-users")
    assert page.errors == []
