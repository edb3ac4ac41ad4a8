"""Historical's bars span their bucket on the local wall-clock axis, DST change days included
(callbacks/ranges.py `clock_spans`, callbacks/historical.py `bar_figure`): a daily bar covers its local day
from midnight to midnight whether the day lasts 23, 24 or 25 hours; hourly and 15-minute bars tile the day
without a gap where the clocks skip an hour (spring) and draw the hour repeated in autumn twice over the
same span (stacked). Europe/Athens, the app's default TIMEZONE: EET/EEST, changes at 03:00 / 04:00 local."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import pairwise

import pytest

from callbacks.historical import bar_figure, build_series, window_for

ZONE = "Europe/Athens"
NOW = datetime(2026, 12, 1, 12)  # naive UTC, after both changes of 2026
SPRING, AUTUMN = date(2026, 3, 29), date(2026, 10, 25)  # 23 and 25 local hours


def slots(first: date, last: date, bars: str) -> tuple[list[tuple[datetime, datetime]], list[str]]:
    """Each bar's slot on the axis, [start, end) in local wall-clock time (the bar less its gap either side),
    and the hover labels, as the figure draws them for the custom range [first, last]."""
    window = window_for("custom", first.isoformat(), last.isoformat(), bars, ZONE, NOW)
    series = build_series([], window, ZONE)
    trace = bar_figure(series, "Consumption", series.consumption, "#000", "test")["data"][0]
    assert "xperiod" not in trace  # one period for every bar could not follow the DST days
    out = []
    for x, offset, width in zip(trace["x"], trace["offset"], trace["width"], strict=True):
        start = datetime.fromisoformat(x)
        assert offset > 0 and width > 0
        out.append((start, start + timedelta(milliseconds=2 * offset + width)))
        bar = (start + timedelta(milliseconds=offset), start + timedelta(milliseconds=offset + width))
        assert out[-1][0] < bar[0] < bar[1] < out[-1][1]
    return out, trace["customdata"]


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


@pytest.mark.parametrize(("day", "hours"), [(SPRING, 23), (AUTUMN, 25), (date(2026, 7, 1), 24)])
def test_a_daily_bar_covers_its_local_day_however_long(day, hours):
    drawn, labels = slots(day - timedelta(days=1), day + timedelta(days=1), "day")
    days = [day - timedelta(days=1), day, day + timedelta(days=1)]
    assert drawn == [(midnight(d), midnight(d + timedelta(days=1))) for d in days]
    assert labels[1].endswith(f"({hours} h)")


@pytest.mark.parametrize("bars", ["hour", "15min"])
def test_the_skipped_spring_hour_belongs_to_the_bucket_before_it(bars):
    drawn, labels = slots(SPRING, SPRING, bars)
    per_hour = 1 if bars == "hour" else 4
    assert len(drawn) == 23 * per_hour
    assert drawn[0][0] == midnight(SPRING) and drawn[-1][1] == midnight(SPRING + timedelta(days=1))
    assert all(a[1] == b[0] for a, b in pairwise(drawn)), "no gap, no overlap"
    last_eet = drawn[3 * per_hour - 1]  # 02:00 or 02:45 EET: its end shows 04:00
    assert last_eet[1] == midnight(SPRING) + timedelta(hours=4)
    assert last_eet[1] - last_eet[0] == (timedelta(hours=2) if bars == "hour" else timedelta(minutes=75))
    assert "EET" in labels[3 * per_hour - 1] and "04:00 EEST" in labels[3 * per_hour]


@pytest.mark.parametrize("bars", ["hour", "15min"])
def test_the_repeated_autumn_hour_is_drawn_twice_over_the_same_span(bars):
    drawn, labels = slots(AUTUMN, AUTUMN, bars)
    per_hour = 1 if bars == "hour" else 4
    assert len(drawn) == 25 * per_hour
    step = timedelta(hours=1) / per_hour
    assert all(end - start == step for start, end in drawn)
    three = midnight(AUTUMN) + timedelta(hours=3)
    repeated = [i for i, (start, _end) in enumerate(drawn) if three <= start < three + timedelta(hours=1)]
    assert len(repeated) == 2 * per_hour
    first, second = repeated[:per_hour], repeated[per_hour:]
    assert [drawn[i] for i in first] == [drawn[i] for i in second]  # stacked: both hours' energy shows
    assert all("EEST" in labels[i] for i in first) and all(" EET" in labels[i] for i in second)
    unique = sorted(set(drawn))
    assert unique[0][0] == midnight(AUTUMN) and unique[-1][1] == midnight(AUTUMN + timedelta(days=1))
    assert all(a[1] == b[0] for a, b in pairwise(unique))
