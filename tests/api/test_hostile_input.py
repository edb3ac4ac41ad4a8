"""Hostile input never reaches a 500 (issue 13, section 1; the December 2026 probe, items 4.x and F2/F3).

Every case runs against the real PostgreSQL app and the embedded SQLite app, and asserts the status, the
usual JSON error body, that nothing was written (the row count of every table but the access log, before
and after) and that no traceback was logged (an unauthenticated client could flood the log).
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from dashboard.schema import Base
from dashboard.untrusted import MAX_JSON_DEPTH
from tests.conftest import make_settings, truncate_all
from tests.factories import PASSWORD, World, build_world, login_form_fields

DEEP = "[" * 100_000 + "]" * 100_000
MEASUREMENTS = "/api/v1/measurements"
LOGIN = "/api/v1/auth/login"
DASH = "/_dash-update-component"
FORECAST = "/aggregator/consumption/forecast/next-24-hours"
TRAIN = "/aggregator/consumption/train/next-24-hours"
OK_TS = "2026-11-02T06:00:00Z"
TOO_BIG = 2**63  # one past the largest 64-bit id


@dataclass
class Env:
    app: object
    client: object
    world: World
    db: str

    def counts(self) -> dict[str, int]:
        factory = self.app.server.extensions["aggregator"].session_factory
        with factory() as s:
            return {
                t.name: s.scalar(select(func.count()).select_from(t))
                for t in Base.metadata.sorted_tables
                if t.name != "api_access_log"  # every API request is logged, by design
            }

    def headers(self, role: str = "admin") -> dict:
        return self.world.headers[role]


@pytest.fixture(scope="module")
def sqlite_module_app(tmp_path_factory):
    from app import create_app

    app = create_app(make_settings(tmp_path_factory.mktemp("hostile_sqlite")))
    yield app
    app.server.extensions["aggregator"].engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def env(request) -> Env:
    if request.param == "postgresql":
        app = request.getfixturevalue("app")  # emptied before the test
    else:
        app = request.getfixturevalue("sqlite_module_app")
        truncate_all(app.server.extensions["aggregator"].engine)
    return Env(app, app.server.test_client(), build_world(app), request.param)


@pytest.fixture
def no_traceback(caplog):
    """After the test: no log record carries a traceback, and no ERROR was logged."""
    caplog.set_level(logging.WARNING)
    yield
    noisy = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert noisy == [], [r.getMessage() for r in noisy]


def refused(env: Env, response, statuses=(422,), mentions: str | None = None) -> dict:
    """The response is one of `statuses` with the JSON error body (naming `mentions`, if given)."""
    assert response.status_code in statuses, (response.status_code, response.get_data(as_text=True)[:300])
    body = response.get_json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str), response.get_data(as_text=True)[
        :300
    ]
    if mentions is not None:
        assert mentions in response.get_data(as_text=True), body
    return body


def send(env: Env, method: str, path: str, raw: str | bytes | None = None, role: str | None = "admin", **kw):
    headers = dict(env.headers(role)) if role else {}
    if raw is not None:
        kw["data"] = raw
        kw["content_type"] = "application/json"
    return env.client.open(path, method=method, headers=headers, **kw)


def raw_batch(device_json: str, power: str = "1") -> str:
    """A one-reading batch as JSON text, with the device id's JSON and the power literal as given."""
    return (
        '{"measurements":[{"device_id":'
        + device_json
        + ',"timestamp":"'
        + OK_TS
        + '","power_w":'
        + power
        + "}]}"
    )


def reading(**fields) -> dict:
    return {"device_id": "H1-MAIN", "timestamp": OK_TS, "power_w": 500.0} | fields


# ---- deep JSON, lone surrogates, NUL --------------------------------------------------------------------

DEEP_TARGETS = [
    ("POST", MEASUREMENTS, "admin", '{"measurements":' + DEEP + "}"),
    ("POST", "/api/v1/houses", "admin", DEEP),
    ("POST", LOGIN, None, DEEP),
    ("POST", FORECAST, "admin", DEEP),
    ("POST", DASH, None, DEEP),
    ("PATCH", "/api/v1/users/1", "admin", '{"username":' + DEEP + "}"),
]


@pytest.mark.parametrize(("method", "path", "role", "raw"), DEEP_TARGETS, ids=[t[1] for t in DEEP_TARGETS])
def test_deeply_nested_json_is_refused_everywhere(env, no_traceback, method, path, role, raw):
    before = env.counts()
    r = send(env, method, path, raw, role=role)
    refused(env, r, statuses=(400, 422))
    if path != FORECAST:  # the spec's endpoint answers its own body ("send a JSON object ...")
        assert f"nested more than {MAX_JSON_DEPTH} levels" in r.get_data(as_text=True)
    assert env.counts() == before


SURROGATE_CASES = [
    ("POST", LOGIN, None, '{"username":"\\ud800","password":"x"}'),
    ("POST", MEASUREMENTS, "admin", raw_batch('"\\udc80"')),
    ("POST", "/api/v1/houses", "admin", '{"name":"\\ud800x"}'),
    ("POST", "/api/v1/api-keys", "admin", '{"name":"k\\udfff"}'),
    ("POST", DASH, None, '{"output":"a.children","inputs":[],"x":"\\udc80"}'),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "role", "raw"), SURROGATE_CASES, ids=[c[1] for c in SURROGATE_CASES]
)
def test_a_lone_surrogate_is_refused(env, no_traceback, method, path, role, raw):
    before = env.counts()
    r = send(env, method, path, raw, role=role)
    refused(env, r, statuses=(400, 422), mentions="lone UTF-16 surrogate")
    assert env.counts() == before


NUL_CASES = [
    ("POST", LOGIN, None, '{"username":"a\\u0000b","password":"x"}'),
    ("POST", MEASUREMENTS, "admin", raw_batch('"H1\\u0000"')),
    ("POST", "/api/v1/houses", "admin", '{"name":"x\\u0000y"}'),
    ("PATCH", "/api/v1/houses/1", "admin", '{"name":"x\\u0000y"}'),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "role", "raw"), NUL_CASES, ids=[c[0] + c[1] for c in NUL_CASES])
def test_a_nul_character_in_a_body_is_refused(env, no_traceback, method, path, role, raw):
    before = env.counts()
    r = send(env, method, path.replace("/1", f"/{env.world.house1}"), raw, role=role)
    refused(env, r, mentions="NUL character")
    assert env.counts() == before


@pytest.mark.parametrize(
    "url",
    [
        f"{MEASUREMENTS}?device_id=a%00b&start=2026-11-01T00:00:00Z&end=2026-11-02T00:00:00Z",
        "/api/v1/energy?resolution=day&start=2026-11-01T00:00:00Z%00&end=2026-11-02T00:00:00Z",
        "/api/v1/houses%00",
    ],
)
def test_a_nul_character_in_a_query_or_path_is_refused(env, no_traceback, url):
    r = env.client.get(url, headers=env.headers())
    refused(env, r, mentions="NUL character")


def test_a_nul_character_in_the_login_form_is_refused(env, no_traceback):
    before = env.counts()
    r = env.client.post("/auth/login", data={"username": "admin\x00", "password": "x"})
    assert r.status_code == 422
    assert "NUL character" in r.get_data(as_text=True)
    assert env.counts() == before


# ---- times ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "mentions"),
    [
        ("9999-12-31T23:45:00-14:00", "out of range"),
        ("0001-01-01T00:00:00+05:00", "out of range"),
        ("1900-01-01T00:00:00Z", "before 1990-01-01"),
        ("1989-12-31T23:45:00Z", "before 1990-01-01"),
    ],
)
def test_out_of_range_and_implausible_reading_times_are_refused(env, no_traceback, timestamp, mentions):
    before = env.counts()
    r = env.client.post(
        MEASUREMENTS, json={"measurements": [reading(timestamp=timestamp)]}, headers=env.headers()
    )
    body = refused(env, r, mentions=mentions)
    assert body["details"][0]["field"] == "timestamp" and body["details"][0]["index"] == 0
    assert env.counts() == before


@pytest.mark.parametrize(
    "bound", ["9999-12-31T23:00:00-14:00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00Z"]
)
def test_out_of_range_query_times_are_refused(env, no_traceback, bound):
    for url in (
        f"/api/v1/energy?resolution=day&start=2026-11-01T00:00:00Z&end={bound}",
        f"/api/v1/exports/summary?period=monthly&start={bound}&end=2026-11-02T00:00:00Z&format=json",
        f"/api/v1/analytics/load-profile?start=2026-11-01T00:00:00Z&end={bound}",
    ):
        r = env.client.get(url.replace("+", "%2B"), headers=env.headers())
        refused(env, r, mentions="out of range")


def test_an_out_of_range_as_of_is_refused_by_the_spec_endpoint(env, no_traceback):
    before = env.counts()
    r = env.client.post(f"{FORECAST}?as_of=0001-01-01T00:00:00%2B05:00", headers=env.headers())
    refused(env, r, mentions="out of range")
    assert env.counts() == before


# ---- ids and integers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/api/v1/houses/{TOO_BIG}"),
        ("GET", "/api/v1/devices/36893488147419103231"),
        ("PATCH", "/api/v1/users/14014090342141253067472896"),
        ("DELETE", "/api/v1/api-keys/300450938436912037238732792021435547648"),
        ("POST", f"/api/v1/models/{TOO_BIG}/activate"),
        ("DELETE", f"/api/v1/communities/{TOO_BIG}"),
    ],
)
def test_an_id_beyond_64_bits_in_a_path_is_404_json(env, no_traceback, method, path):
    before = env.counts()
    r = env.client.open(path, method=method, json={} if method == "PATCH" else None, headers=env.headers())
    assert refused(env, r, statuses=(404,))["error"] in ("Not Found", "Not found")
    assert env.counts() == before


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/energy?resolution=day&start=2026-11-01T00:00:00Z&end=2026-11-02T00:00:00Z&house_id=99999999999999999999",
        f"/api/v1/energy?resolution=day&start=2026-11-01T00:00:00Z&end=2026-11-02T00:00:00Z&community_id={TOO_BIG}",
        f"/api/v1/exports/summary?period=daily&start=2026-11-01T00:00:00Z&end=2026-11-02T00:00:00Z&house_id={TOO_BIG}",
        f"/api/v1/access-log?limit={TOO_BIG}",
    ],
)
def test_an_integer_beyond_64_bits_in_a_query_is_refused(env, no_traceback, url):
    r = env.client.get(url, headers=env.headers())
    refused(env, r, mentions="out of range")


@pytest.mark.parametrize(
    ("path", "query"),
    [
        (TRAIN, "house_id=99999999999999999999999"),
        (FORECAST, "house_id=99999999999999999999999"),
        (TRAIN, f"community_id={TOO_BIG}"),
        (FORECAST, f"community_id={TOO_BIG}"),
        ("/aggregator/production/train/short-term", "horizon=1e400&house_id=1"),
        ("/aggregator/production/forecast/short-term", f"horizon={TOO_BIG}"),
    ],
)
def test_the_spec_endpoints_refuse_an_integer_beyond_64_bits(env, no_traceback, path, query):
    before = env.counts()
    r = env.client.post(f"{path}?{query}", headers=env.headers())
    body = refused(env, r)
    assert body["details"][0]["field"] in ("house_id", "community_id", "horizon"), body
    assert env.counts() == before


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/api/v1/communities", '{"house_ids":[32589158477190044731],"name":"x"}'),
        ("/api/v1/devices", '{"name":"d","kind":"meter","house_id":9223372036854775808}'),
        (MEASUREMENTS, raw_batch('"H1-MAIN"', "9" * 400)),
    ],
)  # fmt: skip
def test_an_integer_beyond_64_bits_in_a_body_is_refused(env, no_traceback, path, raw):
    before = env.counts()
    refused(env, send(env, "POST", path, raw), mentions="out of range")
    assert env.counts() == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/devices", {"name": "d", "kind": "meter", "house_id": 2**40}),
        ("/api/v1/devices", {"name": "d", "kind": "pv", "pv_park_id": 2**40}),
        ("/api/v1/devices", {"name": "d", "kind": "meter", "house_id": 1, "pv_id": 2**40}),
        ("/api/v1/pvs", {"house_id": 2**40, "name": "x", "capacity_kwp": 1}),
        ("/api/v1/pv-parks", {"name": "p", "community_id": 2**40, "capacity_kw": 1}),
        (
            "/api/v1/users",
            {"username": "u", "role": "consumer", "password": "long-enough", "house_ids": [2**40]},
        ),
    ],
)
def test_a_reference_past_a_32_bit_column_is_refused(env, no_traceback, path, body):
    """PostgreSQL's INTEGER ids end at 2^31: a larger reference is a 4xx there too, never a DataError 500."""
    before = env.counts()
    refused(env, env.client.post(path, json=body, headers=env.headers()), statuses=(409, 422))
    assert env.counts() == before


# ---- wrong JSON types ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/api-keys", {"name": [1, 2]}, "name"),
        ("/api/v1/api-keys", {"name": [None, None]}, "name"),
        ("/api/v1/api-keys", {"name": {"a": 1}}, "name"),
        ("/api/v1/communities", {"name": "x", "house_ids": "1"}, "house_ids"),
        ("/api/v1/communities", {"name": "x", "house_ids": ["1"]}, "house_ids"),
        ("/api/v1/communities", {"name": "x", "house_ids": [True]}, "house_ids"),
        ("/api/v1/houses", {"name": 5}, "name"),
        ("/api/v1/devices", {"name": "d", "kind": "meter", "house_id": "1"}, "house_id"),
        ("/api/v1/users", {"username": ["x"], "role": "admin", "password": "long-enough-pw"}, "username"),
        (LOGIN, {"username": [1], "password": "x"}, None),
    ],
)
def test_a_wrong_json_type_is_422_naming_the_field(env, no_traceback, path, body, field):
    before = env.counts()
    result = refused(env, env.client.post(path, json=body, headers=env.headers()))
    if field is not None:
        assert field in {d["field"] for d in result["details"]}
    assert env.counts() == before


@pytest.mark.parametrize("body", ["[]", '"text"', "42", "null", "{", '{"a":1}x', "\xff"])
def test_a_body_that_is_not_a_json_object_is_422(env, no_traceback, body):
    before = env.counts()
    for path in (MEASUREMENTS, "/api/v1/houses", LOGIN):
        refused(env, send(env, "POST", path, body.encode("latin-1")))
    assert env.counts() == before


# ---- the Dash callback endpoint ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ['{"output": 1}', "[]", '{"output":"a.b","inputs":"x"}', '{"output":"a.b","inputs":[5]}', "{", '"x"'],
)
@pytest.mark.parametrize("role", [None, "admin"])
def test_a_malformed_dash_callback_is_400_json(env, no_traceback, raw, role):
    headers = {}
    if role:  # a logged-in browser: its cookies and the CSRF header
        r = env.client.post(
            "/auth/login", data={"username": "admin", "password": PASSWORD} | login_form_fields(env.client)
        )
        assert r.status_code in (302, 303), r.status_code
        csrf = env.client.get_cookie("csrf_access_token")
        headers = {"X-CSRF-TOKEN": csrf.value} if csrf else {}
    r = env.client.post(DASH, data=raw, content_type="application/json", headers=headers)
    refused(env, r, statuses=(400,), mentions="callback body")


def browser_login(env: Env) -> dict:
    """Log the test client in as the admin through the login form: the CSRF header its callbacks send."""
    r = env.client.post(
        "/auth/login", data={"username": "admin", "password": PASSWORD} | login_form_fields(env.client)
    )
    assert r.status_code in (302, 303) and "error" not in r.headers["Location"], r.headers
    return {"X-CSRF-TOKEN": env.client.get_cookie("csrf_access_token").value}


HISTORICAL_OUTPUTS = [
    ("historical-consumption", "figure"), ("historical-production", "figure"), ("historical-summary", "children"),
    ("historical-caption", "children"), ("historical-message", "children"), ("historical-message", "color"),
    ("historical-message", "is_open"),
]  # fmt: skip


def historical_callback(start_date, end_date, scope="all") -> dict:
    values = [("historical-range", "value", "custom"), ("historical-dates", "start_date", start_date),
              ("historical-dates", "end_date", end_date), ("historical-bars", "value", "15min"),
              ("historical-scope", "value", scope)]  # fmt: skip
    return {
        "output": "...".join(f"{i}.{p}" for i, p in HISTORICAL_OUTPUTS).join(["..", ".."]),
        "outputs": [{"id": i, "property": p} for i, p in HISTORICAL_OUTPUTS],
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in values],
        "changedPropIds": ["historical-range.value"],
        "state": [],
    }


@pytest.mark.parametrize(
    ("start", "end", "scope"),
    [
        ("0001-01-01", "9999-12-31", "all"),
        ("2026-11-01", "2026-11-02", 2**63),
        ("x\u0000", "2026-11-02", "all"),
    ],
)
def test_a_logged_in_dash_callback_with_hostile_values_is_4xx_without_traceback(
    env, no_traceback, start, end, scope
):
    headers = browser_login(env)
    payload = json.dumps(historical_callback(start, end, scope))  # the NUL goes out as \u0000
    r = env.client.post(DASH, data=payload, content_type="application/json", headers=headers)
    refused(env, r, statuses=(400, 422))
    ok = env.client.post(DASH, json=historical_callback("2026-11-01", "2026-11-02"), headers=headers)
    assert ok.status_code == 200 and "historical-consumption" in ok.get_json()["response"]


# ---- unknown paths, methods and assets -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/nonexistent", 404),
        ("POST", "/api/v1/nonexistent", 404),
        ("GET", "/api/nothing/here", 404),
        ("GET", "/aggregator/nothing", 404),
        ("POST", "/aggregator/consumption/train/next-week", 404),
        ("GET", TRAIN, 405),
        ("GET", FORECAST, 405),
        ("GET", "/aggregator/production/forecast/short-term", 405),
        ("POST", "/api/v1/energy", 405),
        ("PUT", "/api/v1/houses/1", 405),
    ],
)
@pytest.mark.parametrize("role", [None, "admin"])
def test_unknown_api_paths_are_404_and_wrong_methods_405_in_json(
    env, no_traceback, method, path, status, role
):
    before = env.counts()
    r = env.client.open(path, method=method, headers=env.headers(role) if role else {})
    assert r.mimetype == "application/json", r.get_data(as_text=True)[:200]
    refused(env, r, statuses=(status,))
    if status == 405:
        assert r.headers["Allow"], r.headers
        assert method not in r.headers["Allow"]
    assert env.counts() == before


def test_json_just_within_the_depth_limit_is_parsed(env, no_traceback):
    nested = "[" * (MAX_JSON_DEPTH - 2) + "]" * (MAX_JSON_DEPTH - 2)
    r = send(env, "POST", "/api/v1/houses", '{"name":"n","x":' + nested + "}")
    assert "unknown field" in refused(env, r)["details"][0]["message"]  # parsed: the route judged it


def test_the_dash_page_is_still_served_on_page_paths(env, no_traceback):
    for path in ("/", "/historical", "/no-such-page"):
        r = env.client.get(path)
        assert r.status_code == 200 and r.mimetype == "text/html"


@pytest.mark.parametrize(
    "path",
    ["/_dash-component-suites/dash/nonexistent.js", "/_dash-component-suites/dash/deps/nope.min.js",
     "/_dash-component-suites/nolib/x.js"],
)  # fmt: skip
def test_unknown_dash_assets_are_404(env, caplog, path):
    caplog.set_level(logging.WARNING)
    r = env.client.get(path)
    assert r.status_code == 404
    assert not [rec for rec in caplog.records if rec.exc_info], "a traceback was logged"


# ---- body size -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [MEASUREMENTS, LOGIN, FORECAST, DASH])
def test_a_chunked_body_over_the_limit_is_413(env, no_traceback, path):
    limit = env.app.server.config["MAX_CONTENT_LENGTH"]
    body = b'{"measurements":[' + b"1," * (limit // 2 + 10) + b"1]}"
    before = env.counts()
    r = env.client.post(
        path,
        input_stream=io.BytesIO(body),
        headers=env.headers() | {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    refused(env, r, statuses=(413,))
    assert env.counts() == before


def test_a_chunked_body_under_the_limit_is_taken(env, no_traceback):
    body = b'{"measurements":[{"device_id":"H1-MAIN","timestamp":"%s","power_w":500}]}' % OK_TS.encode()
    r = env.client.post(
        MEASUREMENTS,
        input_stream=io.BytesIO(body),
        headers=env.headers() | {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert r.status_code == 200 and r.get_json()["accepted"] == 1


# ---- plausibility bounds of readings -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "bound"),
    [
        ({"power_w": 1e308}, "power_w", "1e+08 W"),
        ({"power_w": 1.7e308, "energy_wh": 1.7e308}, "energy_wh", "2.5e+07 Wh"),
        ({"energy_wh": 25_000_001.0}, "energy_wh", "2.5e+07 Wh"),
        ({"current_a": 2e6}, "current_a", "1e+06 A"),
        ({"power_w": 100_000_001}, "power_w", "1e+08 W"),
    ],
)
def test_an_implausible_reading_is_422_naming_field_bound_and_remedy(env, no_traceback, fields, field, bound):
    before = env.counts()
    r = env.client.post(
        MEASUREMENTS, json={"measurements": [reading(**fields)]}, headers=env.headers("consumer")
    )
    body = refused(env, r)
    [detail] = [d for d in body["details"] if d["field"] == field]
    assert bound in detail["message"] and "MAX_POWER_W" in detail["message"], detail
    assert "check the device's units" in detail["message"]
    assert env.counts() == before


def test_readings_at_the_bounds_are_accepted(env, no_traceback):
    r = env.client.post(
        MEASUREMENTS,
        json={"measurements": [reading(power_w=1e8, energy_wh=2.5e7, current_a=1e6)]},
        headers=env.headers(),
    )
    assert r.status_code == 200 and r.get_json()["accepted"] == 1


def test_a_device_bound_set_by_the_api_refuses_readings_above_it(env, no_traceback):
    h = env.headers()
    device = next(d for d in env.client.get("/api/v1/devices", headers=h).get_json()["devices"]
                  if d["device_id"] == "H1-MAIN")  # fmt: skip
    r = env.client.patch(f"/api/v1/devices/{device['id']}", json={"max_power_w": 30_000}, headers=h)
    assert r.status_code == 200 and r.get_json()["max_power_w"] == 30_000
    before = env.counts()
    r = env.client.post(MEASUREMENTS, json={"measurements": [reading(power_w=30_001)]}, headers=h)
    body = refused(env, r)
    assert body["details"] == [{"index": 0, "field": "power_w", "message": body["details"][0]["message"]}]
    message = body["details"][0]["message"]
    assert "30001 W" in message and "30000 W" in message and "max_power_w" in message
    assert "PATCH /api/v1/devices/" in message
    r = env.client.post(MEASUREMENTS, json={"measurements": [reading(energy_wh=7_500.5)]}, headers=h)
    assert refused(env, r)["details"][0]["field"] == "energy_wh"  # 30 kW over 15 minutes is 7,500 Wh
    assert env.counts() == before
    r = env.client.post(
        MEASUREMENTS, json={"measurements": [reading(power_w=30_000, energy_wh=7_500)]}, headers=h
    )
    assert r.status_code == 200 and r.get_json()["accepted"] == 1
    # cleared: MAX_POWER_W applies again
    r = env.client.patch(f"/api/v1/devices/{device['id']}", json={"max_power_w": None}, headers=h)
    assert r.status_code == 200 and r.get_json()["max_power_w"] is None
    r = env.client.post(MEASUREMENTS, json={"measurements": [reading(timestamp="2026-11-02T06:15:00Z", power_w=30_001)]},
                        headers=h)  # fmt: skip
    assert r.status_code == 200 and r.get_json()["accepted"] == 1


@pytest.mark.parametrize(
    ("value", "mentions"),
    [(2e8, "at most MAX_POWER_W"), (0, "must be > 0"), (-5, "must be > 0"), ("big", "must be a number"),
     (True, "must be a number")],
)  # fmt: skip
def test_a_device_bound_must_be_positive_and_within_max_power_w(env, no_traceback, value, mentions):
    before = env.counts()
    body = {"name": "Big", "kind": "meter", "house_id": env.world.house2, "max_power_w": value}
    result = refused(
        env, env.client.post("/api/v1/devices", json=body, headers=env.headers()), mentions=mentions
    )
    assert [d["field"] for d in result["details"]] == ["max_power_w"]
    assert env.counts() == before


def test_a_device_is_created_with_its_bound(env, no_traceback):
    body = {"name": "Heat pump", "kind": "appliance", "house_id": env.world.house2, "max_power_w": 12_000}
    r = env.client.post("/api/v1/devices", json=body, headers=env.headers())
    assert r.status_code == 201 and r.get_json()["max_power_w"] == 12_000


# ---- the CSV importer ----------------------------------------------------------------------------------


def run_cli(env: Env, monkeypatch, capsys, *argv: str) -> tuple[int, str]:
    from dashboard.__main__ import main

    settings = env.app.server.extensions["aggregator"].settings
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("DEMO_DATA", "0")
    code = 0
    try:
        main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize(
    ("content", "mentions"),
    [
        (b"device_id,timestamp,power_w\nH1-MAIN,9999-12-31T23:45:00-14:00,1\n", "out of range"),
        (b"device_id,timestamp,power_w\nH1-MAIN,1970-01-01T00:00:00Z,1\n", "before 1990-01-01"),
        (b"device_id,timestamp,power_w\nH1-MAIN,2026-11-02T06:00:00Z,1\xff\n", "not UTF-8"),
        (b"device_id,timestamp,power_w\nH1-MAIN,2026-11-02T06:00:00Z,1,5\n", "more field(s) than the header"),
        (
            b"device_id,timestamp,power_w,energy_wh\nH1-MAIN,2026-11-02T06:00:00Z,1e308,1.7e308\n",
            "MAX_POWER_W",
        ),
        (b"device_id,timestamp,power_w\nH1\x00,2026-11-02T06:00:00Z,1\n", "NUL"),
        (None, "no such file"),
    ],
    ids=["overflow", "before-1990", "non-utf8", "extra-column", "implausible", "nul", "missing"],
)
def test_import_csv_refuses_bad_files_in_one_line_and_writes_nothing(env, monkeypatch, capsys, tmp_path, content,
                                                                     mentions):  # fmt: skip
    path = tmp_path / "readings.csv"
    if content is not None:
        path.write_bytes(content)
    before = env.counts()
    code, err = run_cli(env, monkeypatch, capsys, "import-csv", str(path))
    assert code == 2, err
    assert mentions in err, err
    assert "Traceback" not in err
    assert env.counts() == before


def test_import_csv_takes_a_good_file(env, monkeypatch, capsys, tmp_path):
    path = tmp_path / "readings.csv"
    path.write_text("device_id,timestamp,power_w,energy_wh\nH1-MAIN,2026-11-02T06:00:00Z,500,125\n")
    code, err = run_cli(env, monkeypatch, capsys, "import-csv", str(path))
    assert code == 0, err
    assert env.counts()["measurements"] == 1


# ---- a flood of hostile requests logs no traceback -----------------------------------------------------


def test_hostile_requests_log_at_most_one_line_each(env, caplog):
    caplog.set_level(logging.DEBUG)
    requests = [
        ("POST", LOGIN, None, DEEP),
        ("POST", DASH, None, DEEP),
        ("POST", LOGIN, None, '{"username":"\\ud800","password":"x"}'),
        ("GET", f"/api/v1/houses/{TOO_BIG}", "admin", None),
        ("GET", "/_dash-component-suites/dash/nonexistent.js", None, None),
    ]
    for method, path, role, raw in requests * 3:
        r = send(env, method, path, raw, role=role)
        assert 400 <= r.status_code < 500
    assert not [rec for rec in caplog.records if rec.exc_info or rec.levelno >= logging.ERROR]
    warnings = [rec for rec in caplog.records if rec.levelno == logging.WARNING]
    assert len(warnings) <= len(requests) * 3
    assert all("\n" not in rec.getMessage() for rec in warnings)
