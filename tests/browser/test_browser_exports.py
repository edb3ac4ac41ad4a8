"""The Exports page in chromium: the preview fills, the CSV download arrives with the rows the export
service computes for the same local days and scope, and a consumer's export covers their house only."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from dashboard.exports import PEOPLE_DECIMALS, people_cell
from tests.browser.helpers import shot

pytestmark = pytest.mark.browser
HEADER = ["period", "period_start", "period_end", "hours", "consumption_kwh", "production_kwh", "net_kwh",
          "avg_kw", "peak_kw", "voltage_event_intervals", "mean_power_factor"]  # fmt: skip


def api_csv(base: str, username: str, start: str, end: str, period: str = "daily") -> list[dict]:
    """The same export through the API (JWT login), for the same local days."""
    from tests.factories import PASSWORD

    token = requests.post(f"{base}/api/v1/auth/login", json={"username": username, "password": PASSWORD},
                          timeout=10).json()["access_token"]  # fmt: skip
    zone = ZoneInfo("Europe/Athens")  # the demo server's TIMEZONE (the default)
    lo = datetime.combine(date.fromisoformat(start), time(), zone)
    hi = datetime.combine(date.fromisoformat(end) + timedelta(days=1), time(), zone)
    r = requests.get(
        f"{base}/api/v1/exports/summary",
        params={"period": period, "start": lo.isoformat(), "end": hi.isoformat(), "format": "csv"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return list(csv.DictReader(io.StringIO(r.text)))


def rounded_for_people(rows: list[dict]) -> list[dict]:
    """The API's full-precision CSV rows as the page's CSV rounds them."""
    return [
        {c: people_cell(c, float(v)) if v and c in PEOPLE_DECIMALS else v for c, v in row.items()}
        for row in rows
    ]


def download(page) -> list[dict]:
    with page.expect_download() as info:
        page.click("#exports-download-button")
    path = info.value.path()
    text = open(path, encoding="utf-8").read()
    assert text.splitlines()[0].split(",") == HEADER  # units in the header names
    assert info.value.suggested_filename.startswith("summary_")
    return list(csv.DictReader(io.StringIO(text)))


def preview_rows(page) -> int:
    """Rows in the preview table once the callback has filled it."""
    page.wait_for_selector("#exports-rows tbody tr", timeout=20_000)
    return page.locator("#exports-rows tbody tr").count()


@pytest.mark.parametrize("username", ["analyst", "consumer"])
def test_csv_download_matches_the_api_for_the_scope(open_as, demo_server, username):
    page = open_as(username, "/exports")
    start = page.input_value("#exports-dates")  # Dash 4: the start input carries the picker's id
    end = page.input_value("#exports-dates-end-date")
    assert start and end
    assert preview_rows(page) >= 28
    rows = download(page)
    expected = api_csv(demo_server, username, start, end)
    assert len(rows) == len(expected) >= 28  # a row per local day of the 30-day default (demo: 30 days)
    # the simulator keeps adding readings to today; every closed day must match exactly
    assert rows[:-1] == rounded_for_people(expected[:-1])  # the page is for people: rounded
    assert float(rows[0]["consumption_kwh"]) > 0
    shot(page, f"exports-{username}")

    page.click("text=Monthly")
    page.wait_for_timeout(500)
    monthly = download(page)
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    months = (last.year - first.year) * 12 + last.month - first.month + 1  # 3 on 1 March of a common year
    assert len(monthly) == months, (start, end, [r["period"] for r in monthly])
    total_daily = sum(float(r["consumption_kwh"]) for r in rows[:-1])
    total_monthly = sum(float(r["consumption_kwh"]) for r in monthly)
    assert total_monthly >= total_daily  # the monthly rows include today as well
    assert page.errors == []
