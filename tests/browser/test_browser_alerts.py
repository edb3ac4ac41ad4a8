"""The Alerts page in chromium: a consumer creates a threshold rule on their house in the form, the rule
fires on the live simulator's readings, and the notification appears in the navbar's bell and the list."""

from __future__ import annotations

import pytest
import requests

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


def post_meter_readings(base: str, username: str, power_w: float) -> None:
    """Three minutes of readings every 20 s on the user's house meter, through the API (the simulator's
    own cadence and lag are not what this test is about)."""
    from datetime import UTC, datetime, timedelta

    from tests.factories import PASSWORD

    token = requests.post(f"{base}/api/v1/auth/login", json={"username": username, "password": PASSWORD},
                          timeout=10).json()["access_token"]  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    devices = requests.get(f"{base}/api/v1/devices", headers=headers, timeout=10).json()
    devices = devices.get("devices", devices) if isinstance(devices, dict) else devices
    serial = next(d.get("serial") or d["device_id"] for d in devices if d["kind"] == "meter")
    now = datetime.now(UTC).replace(microsecond=0)
    items = [{"device_id": serial, "timestamp": (now - timedelta(seconds=20 * i)).isoformat(), "power_w": power_w}
             for i in range(1, 10)]  # fmt: skip
    r = requests.post(
        f"{base}/api/v1/measurements", json={"measurements": items}, headers=headers, timeout=30
    )
    assert r.status_code == 200, r.text


def test_a_fired_rule_appears_in_the_bell_and_the_list(open_as, demo_server, demo_db_url, tmp_path):
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
    page.wait_for_function("() => document.querySelector('#alerts-message')?.innerText.includes('created')")
    page.wait_for_selector("#alerts-rules-table >> text=Using power")
    post_meter_readings(demo_server, "consumer", 2500.0)
    counts = evaluate_now(demo_db_url, tmp_path)
    assert counts.get("fired", 0) + counts.get("firing", 0) >= 1, counts
    page.goto("/")
    page.wait_for_function("() => document.querySelector('#nav-bell-count')?.innerText.trim() === '1'")
    shot(page, "alerts-bell")
    page.click("#nav-bell")
    page.wait_for_selector("#alerts-notification-items >> text=Alert: Using power")
    shot(page, "alerts-page")
    page.click("#alerts-read-all")
    page.wait_for_function(
        "() => document.querySelector('#alerts-message')?.innerText.includes('marked read')"
    )
    page.goto("/")
    page.wait_for_selector("#nav-logout")
    assert page.locator("#nav-bell-count").inner_text().strip() == ""
    assert page.errors == []
