"""The Historical page in chromium on the demo server: bars render with data, 24 h -> 7 d -> a custom
range of local days changes the bars, the summary panels show numbers, a consumer's dropdown holds only
their house."""

from __future__ import annotations

import re
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from pages._charts import CONSUMPTION, PRODUCTION
from tests.browser.helpers import dropdown_labels, shot, wait_for_length, wait_for_traces
from tests.clock import local_today_clear_of_midnight

pytestmark = pytest.mark.browser
ZONE = ZoneInfo("Europe/Athens")  # the demo server's TIMEZONE (the default)
NUMBER = re.compile(r"^-?[\d,]+\.\d{3} kWh$")


def set_date(page, selector: str, value: str) -> None:
    """Type a date into one of the picker's inputs the way a user does, and confirm it."""
    box = page.locator(selector)
    box.click()
    box.fill(value)
    box.press("Enter")


def summary_numbers(page) -> dict[str, str]:
    ids = ["consumption-total", "consumption-average", "consumption-max", "production-total", "net"]
    return {name: page.inner_text(f"#historical-{name}") for name in ids}


def test_ranges_change_the_bars_and_the_panels(open_as):
    # the custom range below ends today, as the picker's last day
    today = local_today_clear_of_midnight(margin_s=120)
    page = open_as("analyst", "/historical")
    cons = wait_for_traces(page, "historical-consumption")[0]
    prod = wait_for_traces(page, "historical-production")[0]
    assert cons["type"] == "bar" and cons["color"] == CONSUMPTION and prod["color"] == PRODUCTION
    assert cons["length"] == 24 and cons["points"] >= 20  # 30 demo days up to now plus the simulator
    numbers = summary_numbers(page)
    assert all(NUMBER.match(text) for text in numbers.values()), numbers
    assert float(numbers["consumption-total"].split()[0].replace(",", "")) > 0
    assert re.match(r"^\d+ / 24 ", page.inner_text("#historical-coverage"))
    shot(page, "historical-analyst-24h")

    page.locator("#historical-range").get_by_text("7 d", exact=True).click()
    week = wait_for_length(page, "historical-consumption", 7 * 24)[0]
    assert week["points"] >= 150 and week["x0"] < cons["x0"]  # further back, still hourly
    assert page.inner_text("#historical-consumption-total") != numbers["consumption-total"]
    shot(page, "historical-analyst-7d")

    page.locator("#historical-range").get_by_text("Custom", exact=True).click()
    page.wait_for_selector("#historical-dates:not([disabled])")
    first = today - timedelta(days=20)
    set_date(page, "#historical-dates", first.isoformat())
    set_date(page, "#historical-dates-end-date", today.isoformat())
    custom = wait_for_length(page, "historical-consumption", 21)[0]  # daily bars: one per local day
    assert date.fromisoformat(custom["x0"][:10]) == first and date.fromisoformat(custom["x1"][:10]) == today
    assert custom["points"] >= 20
    assert "Daily bars" in page.inner_text("#historical-caption")
    assert re.match(r"^\d+ / 21 ", page.inner_text("#historical-coverage"))
    assert NUMBER.match(page.inner_text("#historical-production-max"))
    page.keyboard.press("Escape")  # close the calendar before the screenshot
    page.click("h2")
    shot(page, "historical-analyst-custom")
    assert page.errors == []


def test_consumer_dropdown_holds_only_their_house(open_as):
    page = open_as("consumer", "/historical")
    wait_for_traces(page, "historical-consumption")
    labels, options = dropdown_labels(page, "historical-scope")
    assert labels[0] == "All my houses" and len(labels) == 2, labels  # the demo consumer has one house
    assert not any("Community" in label for label in labels)
    options.nth(1).click()
    page.wait_for_function(
        "() => document.querySelector('#historical-caption').innerText.includes('(#')", timeout=10_000
    )
    assert wait_for_traces(page, "historical-consumption")[0]["points"] >= 20
    shot(page, "historical-consumer")
    assert page.errors == []
