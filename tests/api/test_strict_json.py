"""Every JSON response is strict JSON: NaN and Infinity go out as null (dashboard/api/json_provider.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from flask import jsonify

from dashboard.clock import utcnow
from dashboard.schema import ModelVersion


def strict(text: str):
    """Parse as a browser's JSON.parse would: NaN, Infinity and -Infinity are errors."""

    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@dataclass
class Point:
    value: float


def test_non_finite_numbers_reach_clients_as_null_in_any_json_response(app):
    body = {
        "nan": float("nan"),
        "inf": float("inf"),
        "nested": [{"neg_inf": -float("inf"), "ok": 1.5}, (float("nan"), 2)],
        "numpy": [np.float64("nan"), np.float32("inf"), np.float32(0.5), np.int64(3)],
        "array": np.array([1.0, np.nan]),
        "dataclass": Point(float("nan")),
    }
    with app.server.test_request_context():
        text = jsonify(body).get_data(as_text=True)
    assert strict(text) == {
        "nan": None,
        "inf": None,
        "nested": [{"neg_inf": None, "ok": 1.5}, [None, 2]],
        "numpy": [None, None, 0.5, 3],
        "array": [1.0, None],
        "dataclass": {"value": None},
    }


def test_a_stored_nan_metric_is_listed_as_null(client, factory, world):
    with factory() as s:
        s.add(
            ModelVersion(version="v-nan", target="production", product="next-24-hours", horizon=24,
                         scope_kind="house", scope_id=world.house2, model="xgboost", strategy="direct",
                         object_key="models/test/none.bin", trained_at=utcnow(), is_active=True,
                         metrics_json=json.dumps({"mae": 0.0, "mape": float("nan"), "r2": float("-inf")}))
        )  # fmt: skip
        s.commit()
    r = client.get("/api/v1/models", headers=world.headers["analyst"])
    assert r.status_code == 200
    [model] = strict(r.get_data(as_text=True))["models"]
    assert model["metrics"] == {"mae": 0.0, "mape": None, "r2": None}


def test_route_bodies_without_nan_are_unchanged(client, world):
    r = client.get("/healthz")
    assert r.get_data(as_text=True) == '{"status":"ok"}\n'
