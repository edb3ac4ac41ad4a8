"""The Forecasts page's callbacks through Dash's real endpoint, on PostgreSQL, with real in-process jobs:
history from the rollups in blue, the forecast (the same as the API's) in red, its band in orange; the
scope from the cookie, never the browser; training for admins and analysts only, polled as a job."""

from __future__ import annotations

import base64
import json
import math
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select

from callbacks.forecasts import TRAIN_REFUSED, UNKNOWN_JOB
from dashboard.auth import user_scope
from dashboard.forecast_cache import SETTLE_S
from dashboard.queries import energy_series
from dashboard.schema import ModelRun, ModelVersion, User
from dashboard.scope import Scope
from jobs.training import TRAIN_FUNC
from pages._charts import BAND_ORANGE, BAND_ORANGE_LINE, FORECAST_RED, HISTORY_BLUE
from pages.forecasts_view import NO_MODEL, PREPARING
from tests.ui.helpers import component, cookie_login, router_payload

DAYS = 16  # the forecasters need 15 days of history
H1_BASE_WH, H2_BASE_WH = 200.0, 9000.0  # house B uses far more, so a leak shows
CONTROLS = ("product", "horizon", "model", "strategy", "scope")
RENDER_OUTPUTS = [
    ("forecasts-consumption-graph", "figure"),
    ("forecasts-production-graph", "figure"),
    ("forecasts-consumption-model", "children"),
    ("forecasts-production-model", "children"),
    ("forecasts-message", "children"),
    ("forecasts-message", "color"),
    ("forecasts-message", "is_open"),
]
TRAIN_OUTPUTS = [
    ("forecasts-jobs", "data"),
    ("forecasts-train-message", "children"),
    ("forecasts-train-message", "color"),
    ("forecasts-train-message", "is_open"),
]
POLL_OUTPUTS = [
    ("forecasts-progress", "value"),
    ("forecasts-progress", "label"),
    ("forecasts-progress-box", "style"),
    ("forecasts-job-status", "children"),
    ("forecasts-poll", "disabled"),
    ("forecasts-trained", "data"),
]


def _outputs(outputs):
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
    }


def _controls(product, horizon, model, strategy, choice) -> list[dict]:
    values = (product, horizon, model, strategy, choice)
    return [
        {"id": f"forecasts-{name}", "property": "value", "value": value}
        for name, value in zip(CONTROLS, values, strict=True)
    ]


def render_payload(choice="all", product="next-24-hours", horizon=8, model="sarima", strategy="direct",
                   trained=None):  # fmt: skip
    return _outputs(RENDER_OUTPUTS) | {
        "inputs": _controls(product, horizon, model, strategy, choice)
        + [
            {"id": "forecasts-trained", "property": "data", "value": trained},
            {"id": "forecasts-kick", "property": "n_intervals", "value": None},
        ],
        "changedPropIds": ["forecasts-scope.value"],
        "state": [],
    }


def train_payload(choice="all", product="next-24-hours", horizon=8, model="sarima", strategy="direct"):
    return _outputs(TRAIN_OUTPUTS) | {
        "inputs": [{"id": "forecasts-train", "property": "n_clicks", "value": 1}],
        "changedPropIds": ["forecasts-train.n_clicks"],
        "state": _controls(product, horizon, model, strategy, choice),
    }


def poll_payload(job_ids, n=1):
    return _outputs(POLL_OUTPUTS) | {
        "inputs": [
            {"id": "forecasts-poll", "property": "n_intervals", "value": n},
            {"id": "forecasts-jobs", "property": "data", "value": job_ids},
        ],
        "changedPropIds": ["forecasts-poll.n_intervals"],
        "state": [],
    }


def horizon_payload(product):
    return {  # a single-output callback: Dash names it without the ".." wrapping
        "output": "forecasts-horizon.disabled",
        "outputs": {"id": "forecasts-horizon", "property": "disabled"},
        "inputs": [{"id": "forecasts-product", "property": "value", "value": product}],
        "changedPropIds": ["forecasts-product.value"],
        "state": [],
    }


def post(client, payload, headers=None):
    return client.post("/_dash-update-component", json=payload, headers=headers or {})


def values(array) -> list:
    """A trace array as a list: plain JSON, or Plotly's typed-array dict {"dtype", "bdata"}."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array or [])


def traces(figure: dict) -> list[dict]:
    out = []
    for t in figure.get("data", []):
        color = (t.get("line") or {}).get("color") or (t.get("marker") or {}).get("color")
        out.append(t | {"color": color, "xs": values(t.get("x")), "ys": values(t.get("y"))})
    return out


def trace(figure: dict, name: str) -> dict:
    return next(t for t in traces(figure) if t.get("name") == name)


def text_of(component) -> str:
    return json.dumps(component)


@pytest.fixture
def forecasts_ui(client, world, app):
    """DAYS days of 15-minute readings up to now: house A consumes and produces (PV) with a daily shape,
    house B consumes about 40 times more. Dash warmed up. The session app's in-process queue forgets the
    earlier tests' ended jobs first (a training that failed in another test must not answer here)."""
    queue = app.server.extensions["aggregator"].job_queue
    for status in list(queue.jobs.values()):
        status.done.wait(600)
    with queue.lock:
        queue.jobs.clear()
        queue.unique.clear()
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    end -= timedelta(minutes=end.minute % 15 + 15)  # the last complete quarter
    items = []
    for step in range(DAYS * 96):
        ts = end - timedelta(minutes=15 * step)
        hour = ts.hour + ts.minute / 60
        shape = 1 + 0.5 * math.sin(2 * math.pi * (hour - 8) / 24)
        sun = max(0.0, math.sin(math.pi * (hour - 4) / 14)) if 4 <= hour <= 18 else 0.0
        for device, wh in (
            ("H1-MAIN", H1_BASE_WH * shape),
            ("H2-MAIN", H2_BASE_WH * shape),
            ("H1-PV", 300.0 * sun),
        ):
            items.append(
                {
                    "device_id": device,
                    "timestamp": ts.isoformat(),
                    "power_w": 4 * wh,
                    "energy_wh": round(wh, 3),
                }
            )
    r = client.post("/api/v1/measurements", json={"measurements": items}, headers=world.headers["admin"])
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    assert client.get("/").status_code == 200
    settings = app.server.extensions["aggregator"].settings
    services = app.server.extensions["aggregator"]
    yield {"client": client, "timezone": settings.timezone, "settings": settings, "services": services}
    # a view without a model queues its training (jobs/autotrain.py): let it end before the next test
    for status in list(services.job_queue.jobs.values()):
        status.done.wait(600)


def service_history(factory, username, resolution, start, end, **kwargs) -> list[dict]:
    with factory() as s:
        scope = user_scope(s, s.scalar(select(User).where(User.username == username)))
        return energy_series(s, scope, resolution, start, end, **kwargs)


def clear_of_the_origin(settled_s: float = SETTLE_S + 10, margin_s: float = 60) -> None:
    """Wait until the forecast origin (the current UTC hour) stays put for `margin_s` s and a forecast issued
    now is settled (one issued within SETTLE_S of its origin is cached only until then), so views taken
    seconds apart show the same issued forecast."""
    now = datetime.now(UTC)
    into = now.minute * 60 + now.second + now.microsecond / 1e6
    if into > 3600 - margin_s:
        time.sleep(3600 - into + settled_s)
    elif into < settled_s:
        time.sleep(settled_s - into)


def wait_for_training(client, csrf, job_ids, timeout_s=600) -> list[dict]:
    """Poll as the page does until the jobs end; every poll's response."""
    seen = []
    deadline = time.monotonic() + timeout_s
    n = 0
    while time.monotonic() < deadline:
        n += 1
        body = post(client, poll_payload(job_ids, n), csrf).json["response"]
        seen.append(body)
        if body["forecasts-poll"]["disabled"]:
            return seen
        time.sleep(0.5)
    raise AssertionError(f"training did not finish in {timeout_s} s: {seen[-1]}")


# ---- layout ------------------------------------------------------------------------------------------


def test_layout_has_train_button_for_analysts_only(forecasts_ui, world):
    client = forecasts_ui["client"]
    csrf = cookie_login(client, "analyst")
    text = post(client, router_payload("/forecasts"), csrf).get_data(as_text=True)
    assert "forecasts-consumption-graph" in text and "forecasts-production-graph" in text
    assert '"forecasts-train"' in text and '"forecasts-poll"' in text and "Train" in text
    assert "Community: Solar Street" in text and "House B" in text

    csrf = cookie_login(client, "consumer")
    text = post(client, router_payload("/forecasts"), csrf).get_data(as_text=True)
    assert "forecasts-consumption-graph" in text
    assert (
        '"forecasts-train"' not in text and '"forecasts-poll"' not in text and '"forecasts-jobs"' not in text
    )
    assert '"Train"' not in text
    assert "House A" in text and "House B" not in text and "Solar Street" not in text


def test_horizon_is_enabled_for_short_term_only(forecasts_ui):
    client = forecasts_ui["client"]
    csrf = cookie_login(client, "consumer")
    assert (
        post(client, horizon_payload("short-term"), csrf).json["response"]["forecasts-horizon"]["disabled"]
        is False
    )
    assert post(client, horizon_payload("next-24-hours"), csrf).json["response"]["forecasts-horizon"][
        "disabled"
    ]


# ---- no model yet -------------------------------------------------------------------------------------


def test_without_a_model_the_history_shows_and_the_training_is_queued(forecasts_ui, factory, world):
    client = forecasts_ui["client"]
    csrf = cookie_login(client, "analyst")
    r = post(client, render_payload(str(world.house1)), csrf)
    assert r.status_code == 200
    body = r.json["response"]
    assert body["forecasts-message"]["is_open"] is True and body["forecasts-message"]["color"] == "info"
    assert PREPARING in body["forecasts-message"]["children"]  # being prepared, not "ask someone"
    assert NO_MODEL in text_of(body["forecasts-consumption-model"]["children"])
    trainings = [s for s in forecasts_ui["services"].job_queue.jobs.values() if s.func == TRAIN_FUNC]
    assert len(trainings) == 2  # consumption and production of house A's slot, once each
    figure = body["forecasts-consumption-graph"]["figure"]
    assert {t["color"] for t in traces(figure)} == {HISTORY_BLUE}  # history only: no forecast, no band
    history = trace(figure, "History")

    # the last 48 h of hourly rollups before the current hour, house A's
    now = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    expected = service_history(
        factory, "analyst", "hour", now - timedelta(hours=48), now, house_id=world.house1
    )
    assert len(expected) == 48
    assert [y for y in history["ys"] if y is not None] == pytest.approx(
        [e["consumption_kwh"] for e in expected]
    )
    assert max(history["ys"]) < 2.0  # house A: at most 1.2 kWh an hour; house B: at least 18


def test_short_term_history_is_the_last_six_hours_at_15_minutes(forecasts_ui, factory, world):
    client = forecasts_ui["client"]
    csrf = cookie_login(client, "analyst")
    body = post(client, render_payload(str(world.house2), product="short-term", horizon=4), csrf).json[
        "response"
    ]
    history = trace(body["forecasts-consumption-graph"]["figure"], "History")
    now = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
    now -= timedelta(minutes=now.minute % 15)
    expected = service_history(
        factory, "analyst", "15min", now - timedelta(hours=6), now, house_id=world.house2
    )
    assert 23 <= len(expected) <= 24  # the newest quarter may still be under way
    assert [y for y in history["ys"] if y is not None] == pytest.approx(
        [e["consumption_kwh"] for e in expected]
    )


def test_bad_controls_show_a_message_not_a_crash(forecasts_ui):
    client = forecasts_ui["client"]
    csrf = cookie_login(client, "analyst")
    for payload, field in (
        (render_payload(product="short-term", horizon=25), "horizon"),
        (render_payload(product="short-term", horizon=None), "horizon"),
        (render_payload(model="lstm"), "model"),
        (render_payload(strategy="sideways"), "strategy"),
        (render_payload(product="next-week"), "product"),
    ):
        r = post(client, payload, csrf)
        assert r.status_code == 200
        body = r.json["response"]
        assert (
            body["forecasts-message"]["color"] == "danger" and field in body["forecasts-message"]["children"]
        )
        assert traces(body["forecasts-consumption-graph"]["figure"]) == []


# ---- forged requests ----------------------------------------------------------------------------------


def test_consumer_forging_house_b_or_the_community_gets_no_data(forecasts_ui, world):
    client = forecasts_ui["client"]
    csrf = cookie_login(client, "consumer")
    for forged, words in (
        (str(world.house2), "house"),
        (f"c{world.community}", "community"),
        ("999999", "house"),
    ):
        r = post(client, render_payload(forged), csrf)
        assert r.status_code == 200
        body = r.json["response"]
        assert body["forecasts-message"]["color"] == "danger"
        assert f"That {words} is not in your scope" in body["forecasts-message"]["children"]
        for target in ("consumption", "production"):
            assert traces(body[f"forecasts-{target}-graph"]["figure"]) == []
        assert "9.0" not in r.get_data(as_text=True) and "13.5" not in r.get_data(as_text=True)


def test_consumer_cannot_train_even_with_a_forged_click(forecasts_ui, factory, world):
    client = forecasts_ui["client"]
    queue = forecasts_ui["services"].job_queue
    before = len(queue.jobs)
    csrf = cookie_login(client, "consumer")
    for choice in ("all", str(world.house1), str(world.house2)):
        r = post(client, train_payload(choice), csrf)
        assert r.status_code == 200
        body = r.json["response"]
        assert body["forecasts-jobs"]["data"] is None
        assert body["forecasts-train-message"]["children"] == TRAIN_REFUSED
    assert len(queue.jobs) == before  # nothing was queued
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(ModelVersion)) == 0
        assert s.scalar(select(func.count()).select_from(ModelRun)) == 0


def test_poll_rechecks_the_job_on_the_server(forecasts_ui, world):
    client = forecasts_ui["client"]
    csrf = cookie_login(client, "analyst")
    for junk in (["../../etc/passwd"], ["nope"], [1, 2], ["a", "b", "c"], "abc", {"id": "x"}):
        body = post(client, poll_payload(junk), csrf).json["response"]
        assert body["forecasts-job-status"]["children"] == UNKNOWN_JOB
        assert body["forecasts-poll"]["disabled"] is True and "forecasts-trained" not in body

    # a real job that is not a training (a forecast, which fails for want of a model) is not shown as one
    queue = forecasts_ui["services"].job_queue
    admin = Scope(role="admin", user_id=world.users["admin"], username="admin").to_fields()
    job_id = queue.enqueue(
        "jobs.forecasting.forecast", "consumption", "next-24-hours", {}, admin, queue="forecast"
    )
    status = queue.wait(job_id, 30)
    assert status.status == "finished" and status.result["failed"] == "model"
    body = post(client, poll_payload([job_id]), csrf).json["response"]
    assert body["forecasts-job-status"]["children"] == UNKNOWN_JOB
    assert "train a model" not in json.dumps(body)


def test_no_cookie_and_third_party_are_refused(forecasts_ui, world):
    client = forecasts_ui["client"]
    payloads = (
        render_payload(str(world.house1)),
        train_payload(),
        poll_payload(["abc"]),
        horizon_payload("short-term"),
    )
    for payload in payloads:
        r = post(client, payload)
        assert r.status_code == 401
        assert "History" not in r.get_data(as_text=True)
    csrf = cookie_login(client, "partner")
    for payload in payloads:
        assert post(client, payload, csrf).status_code == 401


# ---- training, progress, and the forecast ---------------------------------------------------------------


def test_training_job_progress_then_forecast_in_three_colours(forecasts_ui, factory, world):
    client = forecasts_ui["client"]
    house_a = str(world.house1)
    csrf = cookie_login(client, "analyst")
    r = post(client, train_payload(house_a), csrf)
    assert r.status_code == 200
    body = r.json["response"]
    job_ids = body["forecasts-jobs"]["data"]
    assert (
        isinstance(job_ids, list)
        and len(job_ids) == 2
        and body["forecasts-train-message"]["is_open"] is False
    )

    # a consumer cannot read the analyst's jobs, whatever ids they send
    consumer_csrf = cookie_login(client, "consumer")
    body = post(client, poll_payload(job_ids), consumer_csrf).json["response"]
    assert body["forecasts-job-status"]["children"] == TRAIN_REFUSED and "forecasts-trained" not in body

    csrf = cookie_login(client, "analyst")
    seen = wait_for_training(client, csrf, job_ids)
    final = seen[-1]
    assert final["forecasts-progress"]["value"] == 100 and final["forecasts-progress"]["label"] == "done"
    assert final["forecasts-trained"]["data"] == job_ids  # the charts redraw
    percents = [b["forecasts-progress"]["value"] for b in seen]
    assert percents == sorted(percents)  # progress only moves forward
    assert percents[0] < 100 and any(
        b["forecasts-progress-box"]["style"] == {"display": "block"} for b in seen
    )
    with factory() as s:
        rows = {v.target: v for v in s.scalars(select(ModelVersion).where(ModelVersion.is_active.is_(True)))}
    assert set(rows) == {"consumption", "production"}
    assert all(
        v.scope_kind == "house" and v.scope_id == world.house1 and v.model == "sarima" for v in rows.values()
    )
    status_text = text_of(final["forecasts-job-status"]["children"])
    assert rows["consumption"].version in status_text and rows["production"].version in status_text

    # the charts: history blue, forecast red, band orange, and the model version with its metrics
    clear_of_the_origin()  # the render, the API and the consumer's render below share one origin
    r = post(client, render_payload(house_a, trained=job_ids), csrf)
    body = r.json["response"]
    assert body["forecasts-message"]["is_open"] is False, body["forecasts-message"]
    api = client.post(
        "/aggregator/consumption/forecast/next-24-hours",
        query_string={"house_id": world.house1, "model": "sarima", "strategy": "direct"},
        headers=world.headers["analyst"],
    )
    assert api.status_code == 200
    for target in ("consumption", "production"):
        figure = body[f"forecasts-{target}-graph"]["figure"]
        ts = traces(figure)
        assert {t["color"] for t in ts} == {HISTORY_BLUE, FORECAST_RED, BAND_ORANGE_LINE}
        assert [t.get("fillcolor") for t in ts if t.get("fill") == "tonexty"] == [BAND_ORANGE]
        history, forecast = trace(figure, "History"), trace(figure, "Forecast")
        assert len(forecast["ys"]) == 24
        assert max(history["xs"]) < min(forecast["xs"])  # the forecast starts after the last history point
        lower = next(t for t in ts if t["name"] == "Confidence range (lower)")["ys"]
        upper = next(t for t in ts if t.get("fill") == "tonexty")["ys"]
        assert all(lo <= y <= hi for lo, y, hi in zip(lower, forecast["ys"], upper, strict=True))
        panel = text_of(body[f"forecasts-{target}-model"]["children"])
        assert rows[target].version in panel and "MAE" in panel and "trained" in panel
    consumption = trace(body["forecasts-consumption-graph"]["figure"], "Forecast")["ys"]
    assert consumption == pytest.approx([row["forecasted_energy_usage"] for row in api.json["forecast"]])

    # the consumer's forecast is their house's slot and series: the same numbers, no house B
    consumer_csrf = cookie_login(client, "consumer")
    r = post(client, render_payload("all"), consumer_csrf)
    body = r.json["response"]
    assert body["forecasts-message"]["is_open"] is False
    figure = body["forecasts-consumption-graph"]["figure"]
    assert trace(figure, "Forecast")["ys"] == pytest.approx(consumption)
    assert max(y for y in trace(figure, "History")["ys"] if y is not None) < 2.0  # house B: >= 18 kWh/h
    panel = text_of(body["forecasts-consumption-model"]["children"])
    assert rows["consumption"].version in panel and "MAE" not in panel  # metrics: models:read roles only

    # a consumer forging house B still gets nothing, even with a model trained for house A
    body = post(client, render_payload(str(world.house2)), consumer_csrf).json["response"]
    assert traces(body["forecasts-consumption-graph"]["figure"]) == []


def test_layout_draws_the_default_view_once_its_forecasts_are_issued(forecasts_ui, world):
    """A fresh tab's layout carries the default view (next 24 hours, XGBoost, direct) when nothing needs a
    forecast job, so the page needs no render round trip; when one does, the layout leaves the charts to the
    render callback and its kick interval fires it once. The view is the cookie's scope, as in the callback."""
    client, house_a = forecasts_ui["client"], world.house1
    consumer = cookie_login(client, "consumer")

    def layout():
        body = post(client, router_payload("/forecasts"), consumer).json["response"]
        return body["_pages_content"]["children"]

    # no model yet: the layout leaves the view to the render callback, which queues the training
    page = layout()
    assert "figure" not in component(page, "forecasts-consumption-graph")
    assert component(page, "forecasts-kick")["disabled"] is False

    for target in ("consumption", "production"):  # the page's default model for house A
        r = client.post(
            f"/aggregator/{target}/train/next-24-hours",
            query_string={"house_id": house_a},  # model=auto
            headers=world.headers["admin"],
        )
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
    forecasts_ui["services"].cache.clear()  # no forecast issued for the new versions yet

    page = layout()  # a forecast job is needed: no charts in the layout, the callback is kicked instead
    assert "figure" not in component(page, "forecasts-consumption-graph")
    assert component(page, "forecasts-kick")["disabled"] is False
    clear_of_the_origin()  # the layout below reads the kick's forecast from the cache, for the same origin
    body = post(client, render_payload("all", model="auto") | {"changedPropIds": ["forecasts-kick.n_intervals"]},
                consumer).json["response"]  # fmt: skip
    assert body["forecasts-message"]["is_open"] is False, body["forecasts-message"]
    issued = trace(body["forecasts-consumption-graph"]["figure"], "Forecast")["ys"]
    assert len(issued) == 24

    page = layout()  # now issued: the layout draws it, the same numbers as the callback, no kick
    assert component(page, "forecasts-kick")["disabled"] is True
    assert component(page, "forecasts-message")["is_open"] is False
    for target in ("consumption", "production"):
        figure = component(page, f"forecasts-{target}-graph")["figure"]
        assert {t["color"] for t in traces(figure)} == {HISTORY_BLUE, FORECAST_RED, BAND_ORANGE_LINE}
    figure = component(page, "forecasts-consumption-graph")["figure"]
    assert trace(figure, "Forecast")["ys"] == pytest.approx(issued)
    assert max(y for y in trace(figure, "History")["ys"] if y is not None) < 2.0
    panel = text_of(component(page, "forecasts-consumption-model")["children"])
    assert "auto" in panel and "MAE" not in panel  # the version, no metrics for a consumer


def test_history_gaps_stay_gaps():
    """A missing hour breaks the blue line (a None between the samples) instead of joining across it."""
    from pages.forecasts_view import forecast_figure

    history = [
        {"timestamp": f"2026-06-19T{h:02d}:00:00Z", "consumption_kwh": 1.0 + h, "production_kwh": 0.0}
        for h in (0, 1, 2, 5, 6)
    ]
    forecast = [
        {"timestamp": f"2026-06-19 {h:02d}:00:00", "forecasted_energy_usage": 2.0, "lower": 1.0, "upper": 3.0}
        for h in (7, 8)
    ]
    figure = forecast_figure("consumption", "next-24-hours", history, forecast, "Europe/Athens", 0.9)
    blue = trace(figure, "History")
    assert blue["ys"] == [1.0, 2.0, 3.0, None, 6.0, 7.0]
    assert blue["xs"][0] == datetime(2026, 6, 19, 3, 0)  # local wall-clock time (Athens, UTC+3)
    assert max(x for x, y in zip(blue["xs"], blue["ys"], strict=True) if y is not None) < min(
        trace(figure, "Forecast")["xs"]
    )
