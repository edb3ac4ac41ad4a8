"""The Alerts page in chromium: a consumer creates a threshold rule on their house in the form, the rule
fires on the live simulator's readings, and the notification appears in the navbar's bell and the list."""

from __future__ import annotations

import pytest

from tests.browser.helpers import dropdown_labels, shot

pytestmark = pytest.mark.browser


def evaluate_now(demo_db_url, tmp_path) -> dict:
    """One evaluation run against the demo server's database (the server's own loop runs every 60 s)."""
    from dashboard.alerts import run_alerts
    from dashboard.db import make_engine, make_session_factory
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, DATABASE_URL=demo_db_url)
    engine = make_engine(settings)
    try:
        return run_alerts(make_session_factory(engine), settings)
    finally:
        engine.dispose()


def test_a_fired_rule_appears_in_the_bell_and_the_list(open_as, demo_db_url, tmp_path):
    page = open_as("consumer", "/alerts")
    page.wait_for_selector("#alerts-create")
    assert page.locator("#alerts-webhook-url").is_hidden()  # consumers: in-app and e-mail only
    labels, options = dropdown_labels(page, "alerts-target")
    assert labels and all("(#" in label for label in labels)  # their own houses, no fleet, no community
    options.first.click()
    page.fill("#alerts-name", "Using power")
    _labels, kinds = dropdown_labels(page, "alerts-kind")
    kinds.filter(has_text="Threshold").click()
    page.fill("#alerts-threshold", "0.001")
    page.fill("#alerts-minutes", "1")
    page.click("#alerts-create")
    page.wait_for_function("document.querySelector('#alerts-message')?.innerText.includes('created')")
    page.wait_for_selector("#alerts-rules-table >> text=Using power")
    counts = evaluate_now(demo_db_url, tmp_path)
    assert counts.get("fired", 0) + counts.get("firing", 0) >= 1, counts
    page.goto("/")
    page.wait_for_function("document.querySelector('#nav-bell-count')?.innerText.trim() === '1'")
    shot(page, "alerts-bell")
    page.click("#nav-bell")
    page.wait_for_selector("#alerts-notification-items >> text=Alert: Using power")
    shot(page, "alerts-page")
    page.click("#alerts-read-all")
    page.wait_for_function("document.querySelector('#alerts-message')?.innerText.includes('marked read')")
    page.goto("/")
    page.wait_for_selector("#nav-logout")
    assert page.locator("#nav-bell-count").inner_text().strip() == ""
    assert page.errors == []
