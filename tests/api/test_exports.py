"""GET /api/v1/exports/summary on the real PostgreSQL with seeded demo data.

Every number is checked against an independent computation from the 15-minute rollups, grouped into
local days in the test itself (zoneinfo), so the export's use of the day rollups, its week/month grouping
and its DST handling are all proved, not restated.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask_jwt_extended import create_access_token
from sqlalchemy import and_, select, text, update

from dashboard import exports
from dashboard.auth import create_api_key
from dashboard.schema import EnergyRollup, House, User
from dashboard.scope import Scope
from dashboard.seed import seed_demo

TZ = "Europe/Athens"
ZONE = ZoneInfo(TZ)
HEADER = (
    "period,period_start,period_end,hours,consumption_kwh,production_kwh,net_kwh,avg_kw,peak_kw,"
    "voltage_event_intervals,mean_power_factor"
)
# Spring forward in Athens on 2026-03-29 (a 23-hour day); the range covers it and two months.
SPRING_END = datetime(2026, 4, 3, tzinfo=UTC)
START, END = "2026-03-21T00:00:00+02:00", "2026-04-02T00:00:00+03:00"
DAYS = [date(2026, 3, 21) + timedelta(days=i) for i in range(12)]


def headers_of(app, factory, username: str) -> dict:
    with factory() as s:
        user_id = s.scalar(select(User.id).where(User.username == username))
    with app.server.app_context():
        return {"Authorization": f"Bearer {create_access_token(identity=str(user_id))}"}


@pytest.fixture
def demo(app, factory, pg_snapshots):
    """Four demo houses over 14 days around the spring DST change, logins for every role."""
    pg_snapshots.demo(factory, TZ, houses=4, days=14, end=SPRING_END)
    with factory() as s:
        houses = s.scalars(select(House.id).order_by(House.id)).all()
        consumer_houses = s.scalar(select(User).where(User.username == "consumer")).houses
        own = [h.id for h in consumer_houses]
        _row, key = create_api_key(s, "exports test app")
        s.commit()
    headers = {name: headers_of(app, factory, name) for name in ("admin", "analyst", "consumer", "partner")}
    headers["api_key"] = {"X-API-Key": key}
    headers["anonymous"] = {}
    return {"houses": houses, "consumer_house": own[0], "headers": headers}


def quarter_rollups(factory, house_id: int | None = None) -> list:
    """15-minute rollups of houses and PV parks (or one house), straight from the table."""
    sql = (
        "SELECT entity_kind, entity_id, bucket_start, consumption_wh, production_wh, voltage_min, "
        "voltage_max, pf_sum, pf_count FROM energy_rollups WHERE resolution = '15min' "
        "AND entity_kind IN ('house', 'pv_park')"
    )
    params = {}
    if house_id is not None:
        sql += " AND entity_kind = 'house' AND entity_id = :h"
        params["h"] = house_id
    with factory() as s:
        return s.execute(text(sql), params).all()


def expected_days(rows, key=lambda row: None) -> dict:
    """Per (key, local day): energy, 15-min peak of the key's sum, voltage intervals, pf, buckets."""
    out: dict = defaultdict(
        lambda: {"c": 0.0, "p": 0.0, "pf_sum": 0.0, "pf_n": 0, "v": 0, "buckets": defaultdict(float)}
    )
    for r in rows:
        day = r.bucket_start.replace(tzinfo=UTC).astimezone(ZONE).date()
        e = out[(key(r), day)]
        e["c"] += r.consumption_wh
        e["p"] += r.production_wh
        e["pf_sum"] += r.pf_sum
        e["pf_n"] += r.pf_count
        e["buckets"][r.bucket_start] += r.consumption_wh
        if (r.voltage_min is not None and r.voltage_min < 207.0) or (
            r.voltage_max is not None and r.voltage_max > 253.0
        ):
            e["v"] += 1
    return out


def get(client, headers, **params):
    return client.get("/api/v1/exports/summary", query_string=params, headers=headers)


def json_rows(client, headers, **params) -> list[dict]:
    r = get(client, headers, start=START, end=END, format="json", **params)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.json["rows"]


def test_daily_export_equals_the_15_minute_rollups_of_each_local_day(client, factory, demo):
    expected = expected_days(quarter_rollups(factory))
    rows = json_rows(client, demo["headers"]["admin"], period="daily")
    assert [r["period"] for r in rows] == [d.isoformat() for d in DAYS]
    for row in rows:
        e = expected[(None, date.fromisoformat(row["period"]))]
        assert row["consumption_kwh"] == pytest.approx(e["c"] / 1000, abs=1e-5)
        assert row["production_kwh"] == pytest.approx(e["p"] / 1000, abs=1e-5)
        assert row["net_kwh"] == pytest.approx((e["c"] - e["p"]) / 1000, abs=1e-5)
        assert row["peak_kw"] == pytest.approx(max(e["buckets"].values()) * 4 / 1000, abs=1e-5)
        assert row["avg_kw"] == pytest.approx(e["c"] / 1000 / row["hours"], abs=1e-5)
        assert row["voltage_event_intervals"] == e["v"]
        assert row["mean_power_factor"] == pytest.approx(e["pf_sum"] / e["pf_n"], abs=1e-4)
        assert row["consumption_kwh"] > 10  # real data, not zeros
        assert row["period_end"] == (date.fromisoformat(row["period"]) + timedelta(days=1)).isoformat()
    assert sum(row["production_kwh"] > 50 for row in rows) >= len(rows) - 2  # the demo has dark days
    assert sum(row["voltage_event_intervals"] for row in rows) > 0  # the demo injects voltage events


@pytest.mark.parametrize("rows", ["fleet", "houses_and_parks", "per_house"])
def test_the_embedded_databases_python_grouping_equals_the_postgresql_one(factory, demo, rows):
    """SQLite has no time zones, so dashboard.exports groups quarter hours into local days in Python
    there; both paths must give the same peaks, whether they sum the fleet's pre-summed rows, every
    house's and park's rows, or stay per house."""
    days = exports.local_days(datetime(2026, 3, 20, 22), datetime(2026, 4, 1, 21), TZ)
    bounds = (days[0].start, days[-1].end)
    per_house = rows == "per_house"
    with factory() as s:
        where = exports.scope_filter(s, Scope(role="admin"), None, None)
        if per_house:
            where = and_(where, EnergyRollup.entity_kind == "house")
        if rows == "fleet":
            where = exports.fleet_rows()
        in_db = exports._peaks_postgres(s, where, per_house, *bounds, TZ)
        in_python = exports._peaks_python(s, where, per_house, *bounds, TZ)
    normal = lambda rows: sorted((e or 0, d, round(w, 6)) for e, d, w in rows)  # noqa: E731
    assert normal(in_db) == normal(in_python)
    assert len(in_db) == len(days) * (len(demo["houses"]) if per_house else 1)


def test_the_fleet_peaks_equal_the_peaks_of_the_summed_houses_and_parks(factory, demo):
    days = exports.local_days(datetime(2026, 3, 20, 22), datetime(2026, 4, 1, 21), TZ)
    bounds = (days[0].start, days[-1].end)
    with factory() as s:
        fleet = exports._peaks_postgres(s, exports.fleet_rows(), False, *bounds, TZ)
        summed = exports._peaks_postgres(s, exports.scope_filter(s, Scope(role="admin"), None, None), False,
                                         *bounds, TZ)  # fmt: skip
    normal = lambda rows: sorted((d, round(w, 6)) for _e, d, w in rows)  # noqa: E731
    assert normal(fleet) == normal(summed) and len(fleet) == len(days)


def test_bounds_inside_local_days_export_every_day_they_touch_whole(client, demo):
    admin = demo["headers"]["admin"]
    whole = get(client, admin, period="daily", start=START, end=END, format="json").json
    inside = get(client, admin, period="daily", start="2026-03-21T10:00:00+02:00",
                 end="2026-04-01T12:00:00+03:00", format="json")  # fmt: skip
    assert inside.status_code == 200
    assert [r["period"] for r in inside.json["rows"]] == [d.isoformat() for d in DAYS]
    assert inside.json["rows"] == whole["rows"]
    assert (inside.json["start"], inside.json["end"]) == ("2026-03-20T22:00:00Z", "2026-04-01T21:00:00Z")
    assert (whole["start"], whole["end"]) == (inside.json["start"], inside.json["end"])
    csv_file = get(client, admin, period="daily", start="2026-03-21T10:00:00+02:00",
                   end="2026-04-01T12:00:00+03:00")  # fmt: skip
    assert 'filename="summary_daily_20260321_20260402.csv"' in csv_file.headers["Content-Disposition"]


def test_the_spring_dst_day_has_23_hours_of_buckets(client, factory, demo):
    expected = expected_days(quarter_rollups(factory))
    rows = {r["period"]: r for r in json_rows(client, demo["headers"]["admin"], period="daily")}
    assert rows["2026-03-29"]["hours"] == 23
    assert len(expected[(None, date(2026, 3, 29))]["buckets"]) == 23 * 4
    assert rows["2026-03-28"]["hours"] == 24
    assert len(expected[(None, date(2026, 3, 28))]["buckets"]) == 24 * 4


def test_the_autumn_dst_day_has_25_hours_of_buckets(client, factory, app):
    seed_demo(factory, TZ, houses=1, days=3, end=datetime(2025, 10, 27, 12, tzinfo=UTC), progress=False)
    admin = headers_of(app, factory, "admin")
    r = get(client, admin, period="daily", start="2025-10-26T00:00:00+03:00", end="2025-10-27T00:00:00+02:00",
            format="json")  # fmt: skip
    assert r.status_code == 200
    [row] = r.json["rows"]
    expected = expected_days(quarter_rollups(factory))[(None, date(2025, 10, 26))]
    assert row["period"] == "2025-10-26" and row["hours"] == 25
    assert len(expected["buckets"]) == 25 * 4
    assert row["consumption_kwh"] == pytest.approx(expected["c"] / 1000, abs=1e-5)
    assert row["avg_kw"] == pytest.approx(expected["c"] / 1000 / 25, abs=1e-5)


def test_weekly_and_monthly_rows_are_the_sums_of_their_days(client, demo):
    admin = demo["headers"]["admin"]
    daily = json_rows(client, admin, period="daily")
    for period, label in (
        ("weekly", lambda d: f"{d.isocalendar()[0]}-W{d.isocalendar()[1]:02d}"),
        ("monthly", lambda d: d.strftime("%Y-%m")),
    ):
        rows = json_rows(client, admin, period=period)
        groups: dict = defaultdict(list)
        for row in daily:
            groups[label(date.fromisoformat(row["period"]))].append(row)
        assert [r["period"] for r in rows] == list(groups)
        for row in rows:
            days = groups[row["period"]]
            assert row["period_start"] == days[0]["period"] and row["period_end"] == days[-1]["period_end"]
            for column in ("consumption_kwh", "production_kwh", "net_kwh", "hours"):
                assert row[column] == pytest.approx(sum(d[column] for d in days), abs=1e-4), column
            assert row["voltage_event_intervals"] == sum(d["voltage_event_intervals"] for d in days)
            assert row["peak_kw"] == pytest.approx(max(d["peak_kw"] for d in days))
            assert row["avg_kw"] == pytest.approx(row["consumption_kwh"] / row["hours"], abs=1e-5)
    monthly = json_rows(client, admin, period="monthly")
    assert [(r["period"], r["period_start"], r["period_end"]) for r in monthly] == [
        ("2026-03", "2026-03-21", "2026-04-01"),
        ("2026-04", "2026-04-01", "2026-04-02"),
    ]
    assert monthly[0]["hours"] == 11 * 24 - 1  # partial month, with the 23-hour day
    weekly = json_rows(client, admin, period="weekly")
    assert [r["period"] for r in weekly] == ["2026-W12", "2026-W13", "2026-W14"]
    assert weekly[1]["hours"] == 7 * 24 - 1


def test_csv_is_an_attachment_with_units_in_the_header_and_the_json_numbers(client, demo):
    admin = demo["headers"]["admin"]
    r = get(client, admin, period="weekly", start=START, end=END)  # csv is the default
    assert r.status_code == 200
    assert r.mimetype == "text/csv"
    assert r.headers["Content-Disposition"].startswith("attachment; filename=")
    assert r.headers["Content-Disposition"].endswith('filename="summary_weekly_20260321_20260402.csv"')
    lines = r.get_data(as_text=True).splitlines()
    assert lines[0] == HEADER
    parsed = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    rows = json_rows(client, admin, period="weekly")
    assert len(parsed) == len(rows) == 3
    for got, want in zip(parsed, rows, strict=True):
        assert got["period"] == want["period"]
        assert float(got["consumption_kwh"]) == pytest.approx(want["consumption_kwh"])
        assert int(got["voltage_event_intervals"]) == want["voltage_event_intervals"]
    per_house = get(client, admin, period="daily", start=START, end=END, per_house="true")
    header = per_house.get_data(as_text=True).splitlines()[0]
    assert header == HEADER.replace("period_end,", "period_end,house_id,")


def test_a_consumer_exports_only_their_own_house(client, factory, demo):
    own = demo["consumer_house"]
    expected = expected_days(quarter_rollups(factory, own))
    rows = json_rows(client, demo["headers"]["consumer"], period="daily")
    assert len(rows) == len(DAYS)
    for row in rows:
        e = expected[(None, date.fromisoformat(row["period"]))]
        assert row["consumption_kwh"] == pytest.approx(e["c"] / 1000, abs=1e-5)
        assert row["production_kwh"] == pytest.approx(e["p"] / 1000, abs=1e-5)
        assert row["peak_kw"] == pytest.approx(max(e["buckets"].values()) * 4 / 1000, abs=1e-5)
    admin_all = json_rows(client, demo["headers"]["admin"], period="daily")
    assert sum(r["consumption_kwh"] for r in rows) < 0.9 * sum(r["consumption_kwh"] for r in admin_all)
    # per-house rows name only their own house, with its real id
    per_house = json_rows(client, demo["headers"]["consumer"], period="monthly", per_house="true")
    assert {r["house_id"] for r in per_house} == {own}


def test_a_consumer_naming_another_house_gets_404_and_no_data(client, demo):
    other = next(h for h in demo["houses"] if h != demo["consumer_house"])
    for fmt in ("csv", "json"):
        r = get(client, demo["headers"]["consumer"], period="daily", start=START, end=END, house_id=other,
                format=fmt)  # fmt: skip
        assert r.status_code == 404
        assert r.is_json and set(r.json) <= {"error", "detail"} and "rows" not in r.json


def test_third_party_gets_aggregates_and_stable_pseudonymous_house_rows(client, demo, factory):
    admin, app_key = demo["headers"]["admin"], demo["headers"]["api_key"]
    with factory() as s:  # every owner consented (without consent: tests/api/test_privacy.py)
        s.execute(update(House).values(share_with_third_parties=True))
        s.commit()
    assert json_rows(client, app_key, period="daily") == json_rows(client, admin, period="daily")

    real = json_rows(client, admin, period="monthly", per_house="true")
    first = json_rows(client, app_key, period="monthly", per_house="true")
    again = json_rows(client, demo["headers"]["partner"], period="monthly", per_house="true")
    assert first == again  # stable across calls and callers
    ids = {r["house_id"] for r in first}
    assert len(ids) == len(demo["houses"])
    assert all(isinstance(i, str) and i.startswith("h-") for i in ids)
    assert not ids & {str(h) for h in demo["houses"]}
    # the same numbers as the real per-house rows, only the names differ
    for period in ("2026-03", "2026-04"):
        want = sorted(r["consumption_kwh"] for r in real if r["period"] == period)
        got = sorted(r["consumption_kwh"] for r in first if r["period"] == period)
        assert got == pytest.approx(want)
    csv_text = get(client, app_key, period="monthly", start=START, end=END, per_house="true").get_data(
        as_text=True
    )
    for row in csv.DictReader(io.StringIO(csv_text)):
        assert row["house_id"] in ids
    # one house by its real id is refused
    r = get(client, app_key, period="daily", start=START, end=END, house_id=demo["houses"][0])
    assert r.status_code == 403 and "rows" not in r.json


def test_anonymous_callers_get_401(client, demo):
    r = get(client, {}, period="daily", start=START, end=END)
    assert r.status_code == 401 and r.json["error"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "hourly"}, "period"),
        ({"period": ""}, "period"),
        ({"period": "daily", "start": "yesterday"}, "start"),
        ({"period": "daily", "end": "2026-03-21T00:00:00"}, "end"),  # no offset
        ({"period": "daily", "end": START}, "end"),  # end == start
        ({"period": "daily", "start": "2022-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}, "end"),
        ({"period": "daily", "format": "xlsx"}, "format"),
        ({"period": "daily", "per_house": "maybe"}, "per_house"),
        ({"period": "daily", "house_id": "one"}, "house_id"),
    ],
)
def test_bad_parameters_get_422_with_the_standard_error_body(client, demo, params, field):
    query = {"start": START, "end": END, "format": "json"} | params
    r = get(client, demo["headers"]["analyst"], **query)
    assert r.status_code == 422, r.get_data(as_text=True)
    assert r.json["error"] == "Invalid or missing input"
    assert field in {d["field"] for d in r.json["details"]}
