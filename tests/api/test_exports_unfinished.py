"""The unfinished period of an export (today, this week, this month): `hours` and `avg_kw` count only the
hours elapsed so far (wall clock in the app's TIMEZONE), not the whole period; the API keeps full precision.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dashboard.auth import user_scope
from dashboard.clock import local_midnight_utc, utcnow
from dashboard.exports import summary
from dashboard.schema import User

WH = 1000.0  # per 15-minute reading: 4 kW


def post_quarters(client, world, first_utc: datetime, quarters: int, wh: float = WH) -> None:
    items = [
        {
            "device_id": "H1-MAIN",
            "timestamp": (first_utc + timedelta(minutes=15 * i)).replace(tzinfo=UTC).isoformat(),
            "power_w": 4 * wh,
            "energy_wh": wh,
        }
        for i in range(quarters)
    ]
    r = client.post("/api/v1/measurements", json={"measurements": items}, headers=world.headers["admin"])
    assert r.status_code == 200, r.get_data(as_text=True)


def run(app, factory, period: str, first: date, last: date, now: datetime):
    settings = app.server.extensions["aggregator"].settings
    zone = ZoneInfo(settings.timezone)
    with factory() as s:
        scope = user_scope(s, s.scalar(select(User).where(User.username == "analyst")))
        return summary(
            s,
            scope,
            period,
            local_midnight_utc(first, zone),
            local_midnight_utc(last + timedelta(days=1), zone),
            settings.timezone,
            settings.secret_key,
            now=now,
        ).rows


def test_the_unfinished_day_week_and_month_count_only_elapsed_hours(client, app, factory, world):
    zone = ZoneInfo(app.server.extensions["aggregator"].settings.timezone)
    day = date(2026, 3, 11)  # a Wednesday: its ISO week began on Monday the 9th
    midnight = local_midnight_utc(day, zone)
    post_quarters(client, world, midnight, 24)  # 00:00-06:00 local: 24 kWh
    now = midnight + timedelta(hours=6)  # 06:00 local, the day unfinished

    (today,) = run(app, factory, "daily", day, day, now)
    assert today["hours"] == pytest.approx(6.0)  # not 24
    assert today["consumption_kwh"] == pytest.approx(24.0)
    assert today["avg_kw"] == pytest.approx(4.0)  # not 1.0

    monday, sunday = day - timedelta(days=2), day + timedelta(days=4)
    (week,) = run(app, factory, "weekly", monday, sunday, now)
    assert week["hours"] == pytest.approx(2 * 24 + 6)  # Monday and Tuesday whole, Wednesday so far
    assert week["avg_kw"] == pytest.approx(24.0 / 54)

    (month,) = run(app, factory, "monthly", date(2026, 3, 1), date(2026, 3, 31), now)
    elapsed = (now - local_midnight_utc(date(2026, 3, 1), zone)).total_seconds() / 3600  # DST-true
    assert month["hours"] == pytest.approx(elapsed) and month["avg_kw"] == pytest.approx(24.0 / elapsed)

    # once the day is over it has all its hours again
    (done,) = run(app, factory, "daily", day, day, midnight + timedelta(days=2))
    assert done["hours"] == 24.0 and done["avg_kw"] == pytest.approx(1.0)


def test_the_api_counts_todays_hours_up_to_now_at_full_precision(client, app, world):
    zone = ZoneInfo(app.server.extensions["aggregator"].settings.timezone)
    before = utcnow()
    today = before.replace(tzinfo=UTC).astimezone(zone).date()
    midnight = local_midnight_utc(today, zone)
    post_quarters(client, world, midnight, 1, wh=1234.5678)  # today's first quarter: always past
    r = client.get(
        "/api/v1/exports/summary",
        query_string={
            "period": "daily",
            "format": "json",
            "start": midnight.replace(tzinfo=UTC).isoformat(),
            "end": (midnight + timedelta(hours=1)).replace(tzinfo=UTC).isoformat(),
        },
        headers=world.headers["analyst"],
    )
    after = utcnow()
    assert r.status_code == 200, r.get_data(as_text=True)
    (row,) = r.json["rows"]
    lo, hi = ((t - midnight).total_seconds() / 3600 for t in (before, after))
    day_hours = (local_midnight_utc(today + timedelta(days=1), zone) - midnight).total_seconds() / 3600
    hi = min(hi, day_hours)  # local midnight may pass during the request: then the day is whole
    assert lo - 1e-6 <= row["hours"] <= hi + 1e-6
    assert row["consumption_kwh"] == 1.234568  # the API's full precision (Wh to the millionth of a kWh)
    # avg_kw comes from the unrounded hours; `hours` is shown to 6 decimals (5e-7 h), which right after local
    # midnight (hours < 0.05) is more than 1e-5 of it
    assert row["avg_kw"] == pytest.approx(1.2345678 / row["hours"], rel=1e-5 + 5e-7 / row["hours"])
