"""A fresh tab, in chromium on the demo server: its page comes with the app's layout (app.py
page_container, assets/first_page.js), so the tab asks Dash's page router nothing and the navbar's bell
nothing on load; in-app navigation, Back and the bell then work through the router as before."""

from __future__ import annotations

import json

import pytest

from tests.browser.helpers import shot, wait_for_traces

pytestmark = pytest.mark.browser
ROUTER = "_pages_content.children"


def dash_calls(page) -> list[str]:
    """Every Dash callback request the page sends from now on, by its output."""
    calls: list[str] = []

    def seen(request):
        if "/_dash-update-component" in request.url:
            calls.append(json.loads(request.post_data or "{}").get("output", "?"))

    page.on("request", seen)
    return calls


def test_a_fresh_tab_draws_its_page_without_asking_the_router(open_as):
    first = open_as("analyst", "/")  # logs the browser context in
    page = first.context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    calls = dash_calls(page)
    page.goto("/historical?range=7d")
    wait_for_traces(page, "historical-consumption")
    assert page.locator("#historical-range input[value='7d']").is_checked()  # the link's state
    assert page.title() == "Historical - Aggregator"
    assert calls, "the page's own callbacks ran"
    assert not any(ROUTER in c for c in calls), calls
    assert not any("nav-bell-count" in c for c in calls), calls
    shot(page, "first-page-historical")

    calls.clear()  # in-app navigation goes through the router, and the bell follows the page
    page.locator('a.nav-link[href="/analytics"]').click()
    page.wait_for_selector("#analytics-tabs", timeout=15_000)
    assert any(ROUTER in c for c in calls), calls
    page.wait_for_function("() => document.title === 'Analytics - Aggregator'", timeout=10_000)
    page.go_back()
    page.wait_for_selector("#historical-range", timeout=15_000)
    assert page.locator("#historical-range input[value='7d']").is_checked()
    assert page.url.endswith("/historical?range=7d")
    assert errors == []


def test_a_fresh_tab_of_a_refused_page_shows_the_refusal(open_as):
    first = open_as("consumer", "/home")
    page = first.context.new_page()
    calls = dash_calls(page)
    page.goto("/admin")
    page.wait_for_selector("#forbidden", timeout=15_000)
    assert "cannot open this page" in page.locator("#forbidden").inner_text()
    assert not any(ROUTER in c for c in calls), calls
