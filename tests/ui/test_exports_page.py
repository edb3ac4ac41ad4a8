"""The Exports page's callbacks through Dash's real endpoint, on PostgreSQL: the rows are the export
service's, the CSV is the API's, and the scope comes from the cookie, never from the browser."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callbacks.exports import cell_text
from dashboard.auth import user_scope
from dashboard.clock import local_midnight_utc
from dashboard.exports import COLUMNS, summary
from dashboard.schema import User
from pages.exports import default_range
from tests.ui.helpers import cookie_login, router_payload

API_HEADER = (
    "period,period_start,period_end,hours,consumption_kwh,production_kwh,net_kwh,avg_kw,peak_kw,"
    "voltage_event_intervals,mean_power_factor"
)
INPUTS = ("exports-period.value", "exports-dates.start_date", "exports-dates.end_date", "exports-scope.value")
PREVIEW_OUTPUTS = [
    ("exports-table", "children"),
    ("exports-message", "children"),
    ("exports-message", "color"),
    ("exports-message", "is_open"),
]
DOWNLOAD_OUTPUTS = [("exports-download", "data"), ("exports-download-status", "children")]
H1_WH, H2_WH = 1000.0, 9000.0  # per 15-minute reading: house B uses far more, so a leak shows


def _outputs(outputs):
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
    }


def _props(values) -> list[dict]:
    return [
        {"id": key.split(".")[0], "property": key.split(".")[1], "value": value}
        for key, value in zip(INPUTS, values, strict=True)
    ]


def preview_payload(period, start, end, choice):
    return _outputs(PREVIEW_OUTPUTS) | {
        "inputs": _props([period, start, end, choice]),
        "changedPropIds": ["exports-scope.value"],
        "state": [],
    }


def download_payload(period, start, end, choice):
    return _outputs(DOWNLOAD_OUTPUTS) | {
        "inputs": [{"id": "exports-download-button", "property": "n_clicks", "value": 1}],
        "changedPropIds": ["exports-download-button.n_clicks"],
        "state": _props([period, start, end, choice]),
    }


@pytest.fixture
def exports_ui(client, world, app):
    """Readings on three recent local days for both houses (house B's voltage swells), Dash warmed up."""
    timezone = app.server.extensions["aggregator"].settings.timezone
    zone = ZoneInfo(timezone)
    first, last = default_range(timezone)
    items = []
    for days_ago in (2, 3, 5):
        noon = datetime(last.year, last.month, last.day, 12, tzinfo=zone) - timedelta(days=days_ago)
        for quarter in range(4):
            ts = (noon + timedelta(minutes=15 * quarter)).astimezone(UTC).isoformat()
            for device, wh, volts in (("H1-MAIN", H1_WH, 231.0), ("H2-MAIN", H2_WH, 260.0)):
                items.append(
                    {
                        "device_id": device,
                        "timestamp": ts,
                        "power_w": 4 * wh,
                        "energy_wh": wh,
                        "voltage_v": volts,
                        "power_factor": 0.95,
                    }
                )
    r = client.post("/api/v1/measurements", json={"measurements": items}, headers=world.headers["admin"])
    assert r.status_code == 200, r.get_data(as_text=True)
    assert client.get("/").status_code == 200
    return {"client": client, "timezone": timezone, "start": first.isoformat(), "end": last.isoformat()}


def service_rows(app, factory, username, start, end, period="daily", house_id=None) -> list[dict]:
    """The export service called directly for the same local days, as the API would."""
    settings = app.server.extensions["aggregator"].settings
    zone = ZoneInfo(settings.timezone)
    lo = local_midnight_utc(datetime.fromisoformat(start).date(), zone)
    hi = local_midnight_utc(datetime.fromisoformat(end).date() + timedelta(days=1), zone)
    with factory() as s:
        scope = user_scope(s, s.scalar(select(User).where(User.username == username)))
        result = summary(s, scope, period, lo, hi, settings.timezone, settings.secret_key, house_id=house_id)
    return result.rows


def table(body) -> list[dict]:
    """The preview table's rows (Dash component JSON) as {column: cell text}; [] when there is none."""
    children = body["exports-table"]["children"]
    if not children:
        return []
    head, tbody = children["props"]["children"]
    names = [th["props"]["children"] for th in head["props"]["children"]["props"]["children"]]
    return [
        dict(zip(names, [td["props"]["children"] for td in tr["props"]["children"]], strict=True))
        for tr in tbody["props"]["children"]
    ]


def as_cells(rows: list[dict]) -> list[dict]:
    return [{column: cell_text(column, row[column]) for column in COLUMNS} for row in rows]


def post(ui, payload, headers=None):
    return ui["client"].post("/_dash-update-component", json=payload, headers=headers or {})


@pytest.mark.parametrize("period", ["daily", "weekly", "monthly"])
def test_analyst_preview_is_the_services_rows(exports_ui, app, factory, world, period):
    csrf = cookie_login(exports_ui["client"], "analyst")
    r = post(exports_ui, preview_payload(period, exports_ui["start"], exports_ui["end"], "all"), csrf)
    assert r.status_code == 200
    body = r.json["response"]
    expected = service_rows(app, factory, "analyst", exports_ui["start"], exports_ui["end"], period)
    assert table(body) == as_cells(expected)
    assert body["exports-message"]["is_open"] is False
    total = sum(float(row["consumption_kwh"]) for row in table(body))
    assert total == pytest.approx(3 * 4 * (H1_WH + H2_WH) / 1000.0)
    if period == "daily":
        assert len(expected) == 3
        assert all(row["voltage_event_intervals"] == 4 for row in expected)  # house B's swells
        assert list(expected[0]) == list(COLUMNS)


def test_analyst_preview_of_one_house(exports_ui, app, factory, world):
    csrf = cookie_login(exports_ui["client"], "analyst")
    payload = preview_payload("daily", exports_ui["start"], exports_ui["end"], str(world.house2))
    data = table(post(exports_ui, payload, csrf).json["response"])
    expected = service_rows(
        app, factory, "analyst", exports_ui["start"], exports_ui["end"], house_id=world.house2
    )
    assert data == as_cells(expected)
    assert [float(row["consumption_kwh"]) for row in data] == [pytest.approx(4 * H2_WH / 1000.0)] * 3


def test_download_is_the_apis_csv_rounded_with_units_in_the_header(exports_ui, app, factory, world):
    csrf = cookie_login(exports_ui["client"], "analyst")
    payload = download_payload("daily", exports_ui["start"], exports_ui["end"], "all")
    r = post(exports_ui, payload, csrf)
    assert r.status_code == 200
    download = r.json["response"]["exports-download"]["data"]
    assert download["filename"].startswith("summary_daily_") and download["filename"].endswith(".csv")
    assert download["type"] == "text/csv"
    lines = download["content"].splitlines()
    assert lines[0] == API_HEADER  # units in the header names: kWh, kW
    rows = list(csv.DictReader(io.StringIO(download["content"])))
    expected = service_rows(app, factory, "analyst", exports_ui["start"], exports_ui["end"])
    assert len(rows) == len(expected) == 3
    for got, want in zip(rows, expected, strict=True):
        assert got == {column: cell_text(column, want[column]) for column in COLUMNS}

    # the same rows and columns as GET /api/v1/exports/summary for the same local days, rounded
    zone = ZoneInfo(exports_ui["timezone"])
    lo = datetime.fromisoformat(exports_ui["start"]).replace(tzinfo=zone)
    hi = datetime.fromisoformat(exports_ui["end"]).replace(tzinfo=zone) + timedelta(days=1)
    api = exports_ui["client"].get(
        "/api/v1/exports/summary",
        query_string={"period": "daily", "start": lo.isoformat(), "end": hi.isoformat()},
        headers=world.headers["analyst"],
    )
    assert api.status_code == 200
    api_rows = list(csv.DictReader(io.StringIO(api.get_data(as_text=True))))
    assert api.get_data(as_text=True).splitlines()[0] == API_HEADER
    for got, full in zip(rows, api_rows, strict=True):
        for column in COLUMNS:
            if full[column] in ("", got[column]):
                assert got[column] == full[column]
            else:  # a number the page rounded
                decimals = len(got[column].split(".")[1])
                assert float(got[column]) == pytest.approx(float(full[column]), abs=0.5 * 10**-decimals)


def test_page_rounds_for_people_and_the_api_keeps_full_precision(exports_ui, app, factory, world):
    """1234.5678 Wh in one quarter: the API says 1.234568 kWh, the page's table and CSV 1.23."""
    client = exports_ui["client"]
    zone = ZoneInfo(exports_ui["timezone"])
    day = datetime.fromisoformat(exports_ui["start"]).date()
    ts = datetime(day.year, day.month, day.day, 9, tzinfo=zone).astimezone(UTC).isoformat()
    item = {"device_id": "H1-MAIN", "timestamp": ts, "power_w": 4938.2712, "energy_wh": 1234.5678}
    r = client.post("/api/v1/measurements", json={"measurements": [item]}, headers=world.headers["admin"])
    assert r.status_code == 200, r.get_data(as_text=True)
    csrf = cookie_login(client, "analyst")
    start = end = exports_ui["start"]
    (row,) = table(
        post(exports_ui, preview_payload("daily", start, end, str(world.house1)), csrf).json["response"]
    )
    assert row["consumption_kwh"] == "1.23" and row["hours"] in ("23.00", "24.00", "25.00")
    assert row["avg_kw"] == f"{1.2345678 / float(row['hours']):.3f}" and row["mean_power_factor"] == ""
    download = post(exports_ui, download_payload("daily", start, end, str(world.house1)), csrf)
    (csv_row,) = csv.DictReader(io.StringIO(download.json["response"]["exports-download"]["data"]["content"]))
    assert csv_row["consumption_kwh"] == "1.23" and csv_row["peak_kw"] == "4.938"
    (api_row,) = service_rows(app, factory, "analyst", start, end, house_id=world.house1)
    assert api_row["consumption_kwh"] == 1.234568 and api_row["peak_kw"] == 4.938271


def test_consumer_sees_only_their_house(exports_ui, app, factory, world):
    csrf = cookie_login(exports_ui["client"], "consumer")
    payload = preview_payload("daily", exports_ui["start"], exports_ui["end"], "all")
    data = table(post(exports_ui, payload, csrf).json["response"])
    assert data == as_cells(service_rows(app, factory, "consumer", exports_ui["start"], exports_ui["end"]))
    assert [float(row["consumption_kwh"]) for row in data] == [pytest.approx(4 * H1_WH / 1000.0)] * 3


def test_consumer_posting_another_house_gets_no_data(exports_ui, world):
    csrf = cookie_login(exports_ui["client"], "consumer")
    forged = str(world.house2)
    r = post(exports_ui, preview_payload("daily", exports_ui["start"], exports_ui["end"], forged), csrf)
    assert r.status_code == 200
    body = r.json["response"]
    assert table(body) == []
    assert body["exports-message"]["is_open"] is True and body["exports-message"]["color"] == "danger"
    assert "not in your scope" in body["exports-message"]["children"]
    assert "36.0" not in r.get_data(as_text=True)  # house B's 4 x 9 kWh a day

    r = post(exports_ui, download_payload("daily", exports_ui["start"], exports_ui["end"], forged), csrf)
    assert r.status_code == 200
    body = r.json["response"]
    assert body["exports-download"]["data"] is None
    assert "not in your scope" in body["exports-download-status"]["children"]
    for junk in ("999999", "not-a-number", 3.5):  # unknown ids and garbage are refused alike
        payload = preview_payload("daily", exports_ui["start"], exports_ui["end"], junk)
        assert table(post(exports_ui, payload, csrf).json["response"]) == []


def test_no_cookie_is_refused(exports_ui):
    for payload in (
        preview_payload("daily", exports_ui["start"], exports_ui["end"], "all"),
        download_payload("daily", exports_ui["start"], exports_ui["end"], "all"),
    ):
        r = post(exports_ui, payload)
        assert r.status_code == 401
        assert "consumption" not in r.get_data(as_text=True)


def test_third_party_user_is_refused(exports_ui):
    csrf = cookie_login(exports_ui["client"], "partner")
    payload = preview_payload("daily", exports_ui["start"], exports_ui["end"], "all")
    assert post(exports_ui, payload, csrf).status_code == 401


def test_bad_range_shows_a_message_not_a_crash(exports_ui):
    csrf = cookie_login(exports_ui["client"], "analyst")
    payload = preview_payload("daily", exports_ui["end"], exports_ui["start"], "all")  # reversed
    body = post(exports_ui, payload, csrf).json["response"]
    assert table(body) == [] and body["exports-message"]["color"] == "danger"
    payload = preview_payload("hourly", exports_ui["start"], exports_ui["end"], "all")
    assert "period" in post(exports_ui, payload, csrf).json["response"]["exports-message"]["children"]


def test_page_scope_dropdown_is_built_from_the_callers_scope(exports_ui, world):
    client = exports_ui["client"]
    csrf = cookie_login(client, "consumer")
    page = client.post("/_dash-update-component", json=router_payload("/exports"), headers=csrf)
    text = page.get_data(as_text=True)
    assert "exports-table" in text and "All my houses" in text
    assert "House A" in text and "House B" not in text

    csrf = cookie_login(client, "analyst")
    text = client.post("/_dash-update-component", json=router_payload("/exports"), headers=csrf).get_data(
        as_text=True
    )
    assert "All houses" in text and "House A" in text and "House B" in text


def test_anonymous_page_router_gets_the_login_prompt(exports_ui):
    r = exports_ui["client"].post("/_dash-update-component", json=router_payload("/exports"))
    text = r.get_data(as_text=True)
    assert "Please log in" in text and "exports-table" not in text
