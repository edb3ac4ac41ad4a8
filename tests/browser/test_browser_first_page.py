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
    # its charts came with the layout too (callbacks.common.drawn_with_layout): not called on load
    assert not any("historical-consumption.figure" in c for c in calls), calls
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


def test_a_chart_page_loads_plotly_once_while_the_layout_is_drawn(open_as):
    """assets/first_page.js starts plotly.js with the layout request of a page with charts (dcc.Graph takes
    that load instead of adding its own: one request, and the charts draw); a page without charts never
    loads it; Dash's babel polyfill is regenerator-runtime (app.py), and the lazy components still load."""
    first = open_as("analyst", "/")
    page = first.context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url.split("?")[0]))

    page.goto("/historical")
    wait_for_traces(page, "historical-consumption")
    assert len([url for url in sent if url.endswith("/plotly.min.js")]) == 1, sent
    order = [url.rsplit("/", 1)[1] for url in sent]
    # asked for before the layout's answer was drawn: before the lazy graph chunk dcc asks for on drawing
    assert order.index("plotly.min.js") < order.index("async-graph.js"), order
    assert order.index("_dash-layout") < order.index("plotly.min.js"), order
    assert page.evaluate("() => typeof window.Plotly.react === 'function' && typeof regeneratorRuntime")
    assert page.evaluate("() => window._babelPolyfill === undefined")
    # a dropdown (a lazy dcc component, loaded through regeneratorRuntime) opens and lists its options
    page.locator("#historical-scope").click()
    page.wait_for_selector("[role='option']", timeout=10_000)
    page.keyboard.press("Escape")

    other = first.context.new_page()
    other_sent: list[str] = []
    other.on("request", lambda r: other_sent.append(r.url))
    other.goto("/exports")
    other.wait_for_selector("#nav-logout", timeout=15_000)
    other.wait_for_timeout(1500)
    assert not any("plotly.min.js" in url for url in other_sent), other_sent
    assert errors == []
