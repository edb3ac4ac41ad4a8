"""Links that keep the view, in chromium on the demo server: a reload keeps the Historical selection, a
shared link opens the same view in a fresh session, and clicking a day bar drills down to its hours
(the URL follows each step)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest

from tests.browser.helpers import click_point, shot, wait_for_length, wait_for_traces

pytestmark = pytest.mark.browser
ZONE = ZoneInfo("Europe/Athens")  # the demo server's TIMEZONE (the default)


def query(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def test_a_reload_keeps_the_selection_and_a_shared_link_opens_the_same_view(open_as):
    page = open_as("analyst", "/historical")
    wait_for_traces(page, "historical-consumption")
    shot(page, "urlstate-historical-24h")
    page.locator("#historical-range").get_by_text("7 d", exact=True).click()
    wait_for_length(page, "historical-consumption", 7 * 24)
    page.wait_for_function("() => location.search.includes('range=7d')", timeout=10_000)
    page.reload()
    page.wait_for_selector("#nav-logout")
    wait_for_length(page, "historical-consumption", 7 * 24)  # still 7 days of hourly bars
    assert page.locator("#historical-range input[value='7d']").is_checked()
    shot(page, "urlstate-historical-7d-after-reload")

    today = datetime.now(ZONE).date()
    first, last = today - timedelta(days=20), today - timedelta(days=1)
    link = f"/historical?range=custom&from={first}&to={last}&bars=day"
    other = open_as("consumer", link)  # another user, another session
    other.wait_for_selector("#historical-dates")
    bars = wait_for_length(other, "historical-consumption", 20)[0]
    assert bars["x0"] == first.isoformat() and bars["x1"] == last.isoformat()
    assert query(other) == {"range": "custom", "from": str(first), "to": str(last), "bars": "day"}
    assert other.errors == [] and page.errors == []
    shot(other, "urlstate-historical-shared-link")


def test_clicking_a_day_bar_drills_down_to_its_hours(open_as):
    today = datetime.now(ZONE).date()
    first, last = today - timedelta(days=9), today - timedelta(days=2)
    page = open_as("analyst", f"/historical?range=custom&from={first}&to={last}&bars=day")
    wait_for_length(page, "historical-consumption", 8)
    day = first + timedelta(days=3)
    drilled = f"() => location.search.includes('from={day}&to={day}&bars=hour')"
    click_point(
        page, "historical-consumption", page.locator("#historical-consumption .bars .point").nth(3), drilled
    )
    # hours of the local day: 23 or 25 on a DST day
    midnight = datetime(day.year, day.month, day.day, tzinfo=ZONE)
    length = (midnight + timedelta(days=1)).astimezone(UTC) - midnight.astimezone(UTC)
    hours = wait_for_length(page, "historical-consumption", round(length / timedelta(hours=1)))[0]
    assert hours["x0"].startswith(day.isoformat())
    shot(page, "urlstate-historical-drilled-to-hours")
    page.locator("#historical-previous").click()  # previous: the day before, still one day long
    before = day - timedelta(days=1)
    page.wait_for_function(f"() => location.search.includes('from={before}&to={before}')", timeout=15_000)
    assert page.errors == []
