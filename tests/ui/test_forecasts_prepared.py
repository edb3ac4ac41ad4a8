"""A consumer's Forecasts page without a model: the view queues the training of their own house's slot and
says the forecast is being prepared, a progress bar follows the job (found from the cookie's scope and the
controls, never from the browser), and when it ends the view is drawn again with the forecast."""

from __future__ import annotations

import time

from jobs.training import TRAIN_FUNC
from pages._charts import FORECAST_RED
from pages.forecasts_view import PREPARING
from tests.ui.helpers import cookie_login
from tests.ui.test_forecasts_page import (  # noqa: F401, F811 - forecasts_ui is a fixture
    _controls,
    _outputs,
    forecasts_ui,  # noqa: F811
    post,
    render_payload,
    traces,
)

PREPARE_OUTPUTS = [
    ("forecasts-prepare-poll", "disabled"),
    ("forecasts-prepare-box", "style"),
    ("forecasts-prepare-progress", "value"),
    ("forecasts-prepare-progress", "label"),
    ("forecasts-prepare-status", "children"),
    ("forecasts-trained", "data"),
]


def prepare_outputs(app) -> dict:
    """The prepare callback's outputs as Dash registered them (its TRAINED output is a duplicate, which
    Dash names with a hash)."""
    key = next(k for k in app.callback_map if k.startswith("..forecasts-prepare-poll.disabled"))
    trained = key.rsplit("...", 1)[1].rstrip(".")
    outputs = _outputs(PREPARE_OUTPUTS[:-1] + [tuple(trained.split(".", 1))])
    return outputs | {"output": key}


def prepare_payload(app, choice, n=None, model="ridge", changed="forecasts-prepare-poll.n_intervals"):
    return prepare_outputs(app) | {
        "inputs": [
            {"id": "forecasts-message", "property": "children", "value": "x"},
            {"id": "forecasts-prepare-poll", "property": "n_intervals", "value": n},
        ],
        "changedPropIds": [changed],
        "state": _controls("next-24-hours", 8, model, "direct", choice),
    }


def trainings(forecasts_ui) -> list:  # noqa: F811 - the fixture
    return [s for s in forecasts_ui["services"].job_queue.jobs.values() if s.func == TRAIN_FUNC]


def test_consumer_sees_being_prepared_with_progress_then_the_forecast(forecasts_ui, world, app):  # noqa: F811 - the fixture
    client = forecasts_ui["client"]
    consumer = cookie_login(client, "consumer")  # house A only
    before = len(trainings(forecasts_ui))
    body = post(client, render_payload("all", model="ridge"), consumer).json["response"]
    message = body["forecasts-message"]["children"]
    assert PREPARING in message and "analyst" not in message and "admin" not in message
    assert len(trainings(forecasts_ui)) == before + 2  # consumption and production of house A

    shown = post(client, prepare_payload(app, "all", changed="forecasts-message.children"), consumer).json[
        "response"
    ]
    if "forecasts-prepare-box" in shown:  # still training: the bar is shown and polled
        assert shown["forecasts-prepare-box"]["style"] == {"display": "block"}
        assert shown["forecasts-prepare-poll"]["disabled"] is False
        assert 0 <= shown["forecasts-prepare-progress"]["value"] <= 100

    deadline, n, bumped = time.monotonic() + 300, 0, None
    while time.monotonic() < deadline:
        n += 1
        body = post(client, prepare_payload(app, "all", n), consumer).json["response"]
        if "forecasts-trained" in body:  # the trainings ended: the view is asked to draw again
            bumped = body["forecasts-trained"]["data"]
            assert body["forecasts-prepare-poll"]["disabled"] is True
            break
        time.sleep(0.5)
    assert bumped, "the page never heard that the training ended"
    # The page heard "ended" because both models are stored (what it draws from); a job records its own
    # result a moment after its model is committed, so that is awaited, not assumed (it raced under load).
    stored = time.monotonic() + 60
    mine = trainings(forecasts_ui)[before:]
    while time.monotonic() < stored and not all(s.result and s.result.get("model_version") for s in mine):
        time.sleep(0.2)
        mine = trainings(forecasts_ui)[before:]
    assert len(mine) == 2 and all(s.result and s.result.get("model_version") for s in mine), [
        (s.status, s.message) for s in mine
    ]

    body = post(client, render_payload("all", model="ridge", trained=bumped), consumer).json["response"]
    assert body["forecasts-message"]["is_open"] is False, body["forecasts-message"]
    for graph in ("forecasts-consumption-graph", "forecasts-production-graph"):
        forecast = [t for t in traces(body[graph]["figure"]) if t.get("name") == "Forecast"]
        assert forecast and forecast[0]["color"] == FORECAST_RED and len(forecast[0]["ys"]) == 24


def test_consumer_cannot_queue_or_watch_another_house_training(forecasts_ui, world, app):  # noqa: F811 - the fixture
    client = forecasts_ui["client"]
    consumer = cookie_login(client, "consumer")
    before = len(trainings(forecasts_ui))
    body = post(client, render_payload(str(world.house2), model="ridge"), consumer).json["response"]
    assert "not in your scope" in body["forecasts-message"]["children"]
    assert len(trainings(forecasts_ui)) == before  # nothing queued for house B

    analyst = cookie_login(client, "analyst")  # house B's training, queued by staff
    post(client, render_payload(str(world.house2), model="ridge"), analyst)
    assert len(trainings(forecasts_ui)) == before + 2  # both targets (production fails: no PV there)
    consumer = cookie_login(client, "consumer")
    body = post(client, prepare_payload(app, str(world.house2), 1), consumer).json["response"]
    assert body["forecasts-prepare-box"]["style"] == {"display": "none"}  # nothing of house B's shown
    assert body["forecasts-prepare-status"]["children"] == ""
