"""The Household page in chromium on the demo server (6 houses x 30 days, the live simulator on): a consumer
with PV types their login, lands on /home and sees the numbers, where the energy came from and went, the
appliances, the comparison and their community, with no console errors; a screenshot is kept."""

from __future__ import annotations

import pytest

from tests.browser.conftest import CHROMIUM  # noqa: F401 - the fixtures' module
from tests.browser.helpers import shot, wait_for_traces
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def kpi(page, element_id: str, timeout: float = 20_000) -> float:
    page.wait_for_function(
        "(id) => { const t = document.getElementById(id)?.innerText.trim();"
        " return !!t && t !== '-' && !isNaN(parseFloat(t.replace(/,/g, ''))); }",
        arg=element_id,
        timeout=timeout,
    )
    return float(page.inner_text(f"#{element_id}").replace(",", ""))


def test_prosumer_lands_on_household_and_sees_flow_and_appliances(browser, demo_server):
    context = browser.new_context(base_url=demo_server, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto("/")  # a fresh visitor: to the login form, then back to the landing page
        page.wait_for_selector("#login-username")
        page.fill("#login-username", "prosumer")
        page.fill("#login-password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_selector("#home-house")
        assert page.url.endswith("/home")
        # today's numbers are drawn with the page: wait for yesterday's, a whole local day with daylight ("This
        # week" is Monday alone on a Monday, and a Monday before sunrise has no PV yet)
        page.get_by_text("Yesterday", exact=True).click()
        page.wait_for_function(
            "() => (document.getElementById('home-caption')?.innerText || '').startsWith('Yesterday')",
            timeout=20_000,
        )
        consumption, production = kpi(page, "home-consumption"), kpi(page, "home-production")
        imported, exported = kpi(page, "home-import"), kpi(page, "home-export")
        assert consumption > 0 and production > 0  # houses 2 and 3 have PV: any whole day has some
        assert 0 < kpi(page, "home-self-sufficiency") <= 100 and 0 < kpi(page, "home-self-consumption") <= 100
        # PV used on site = consumption - import = production - export (shown to 2 decimals)
        assert consumption - imported == pytest.approx(production - exported, abs=0.02)
        flow = wait_for_traces(page, "home-flow")
        assert [t["name"] for t in flow] == ["Solar → home", "Grid → home", "Solar → grid"]
        appliances = page.evaluate(
            "() => document.querySelector('#home-appliances .js-plotly-plot').data[0].y"
        )
        assert "Other / unmetered" in appliances and "Heat pump" in appliances
        page.wait_for_selector("#home-comparison-table")
        table = page.inner_text("#home-comparison-table")  # which earlier periods depends on today's date
        assert "Previous " in table and "Same period last year" in table
        page.wait_for_selector("#home-communities li, #home-no-community")
        assert "Household" in page.inner_text("nav")
        shot(page, "home-prosumer")
        assert errors == []
    finally:
        context.close()
