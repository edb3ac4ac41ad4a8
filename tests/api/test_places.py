"""Places of houses and communities (time zone, holiday country, coordinates): the API contract, and the
place a forecast's config gets (house, else its one community, else the environment's defaults)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from dashboard import forecasting
from dashboard.model_store import ModelStore
from dashboard.places import Place, default_place
from dashboard.schema import Community, House
from dashboard.scope import system_scope
from dashboard.storage import object_store_from_settings

DEFAULTS = Place("Europe/Athens", "GR", 37.98, 23.73)
MELBOURNE = {"timezone": "Australia/Melbourne", "country": "AU-VIC", "latitude": -37.81, "longitude": 144.96}


def houses_in_db(factory) -> list[tuple]:
    with factory() as s:
        return s.execute(
            select(House.id, House.name, House.timezone, House.country, House.latitude, House.longitude)
        ).all()


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", "IANA"),
        ({"timezone": 3}, "timezone", "string"),
        ({"country": "XX"}, "country", "public holidays"),
        ({"country": "Greece"}, "country", "public holidays"),
        ({"country": "AU-XYZ"}, "country", "no subdivision"),
        ({"latitude": 91, "longitude": 0}, "latitude", "[-90, 90]"),
        ({"latitude": 0, "longitude": -180.5}, "longitude", "[-180, 180]"),
        ({"latitude": True, "longitude": 0}, "latitude", "number"),
        ({"latitude": "38", "longitude": 23}, "latitude", "number"),
        ({"latitude": 38.0}, "longitude", "together"),
        ({"longitude": 23.0}, "latitude", "together"),
    ],
)
def test_bad_place_is_refused_with_422_and_changes_nothing(client, world, factory, body, field, message):
    h = world.headers["admin"]
    before = houses_in_db(factory)
    r = client.post("/api/v1/houses", json={"name": "House Z"} | body, headers=h)
    assert r.status_code == 422, r.json
    assert r.json["error"] == "Invalid or missing input"
    assert any(d["field"] == field and message in d["message"] for d in r.json["details"]), r.json
    r = client.patch(f"/api/v1/houses/{world.house1}", json={"name": "Renamed"} | body, headers=h)
    assert r.status_code == 422, r.json
    r = client.patch(f"/api/v1/communities/{world.community}", json={"name": "Renamed"} | body, headers=h)
    assert r.status_code == 422, r.json
    assert houses_in_db(factory) == before
    with factory() as s:
        assert s.scalar(select(Community.name)) == "Solar Street"


def test_place_is_set_shown_and_cleared_on_houses_and_communities(client, world):
    h = world.headers["admin"]
    r = client.patch(f"/api/v1/houses/{world.house1}", json=MELBOURNE | {"country": "au-vic"}, headers=h)
    assert r.status_code == 200, r.json
    assert {k: r.json[k] for k in MELBOURNE} == MELBOURNE  # the subdivision in its canonical spelling
    assert {k: v for k, v in client.get(f"/api/v1/houses/{world.house1}", headers=h).json.items()
            if k in MELBOURNE} == MELBOURNE  # fmt: skip
    # the consumer of the house sees where it is; only its own house
    mine = client.get("/api/v1/houses", headers=world.headers["consumer"]).json["houses"]
    assert [(x["id"], x["timezone"]) for x in mine] == [(world.house1, "Australia/Melbourne")]

    r = client.patch(f"/api/v1/houses/{world.house1}", json={"latitude": None, "longitude": None}, headers=h)
    assert r.status_code == 200 and (r.json["latitude"], r.json["longitude"]) == (None, None)
    assert r.json["timezone"] == "Australia/Melbourne"

    r = client.post(
        "/api/v1/communities",
        json={
            "name": "Crete",
            "country": "GR",
            "latitude": 35.34,
            "longitude": 25.13,
            "house_ids": [world.house1],
        },
        headers=h,
    )  # fmt: skip (a community third parties may see: MIN_AGGREGATE_HOUSES is 1 here)
    assert r.status_code == 201, r.json
    assert (r.json["country"], r.json["latitude"], r.json["timezone"]) == ("GR", 35.34, None)
    # a third-party app learns the community's calendar, not where it is
    partner = client.get(f"/api/v1/communities/{r.json['id']}", headers=world.headers["partner"]).json
    assert partner["country"] == "GR" and "latitude" not in partner and "longitude" not in partner


def test_openapi_documents_the_place_fields(client):
    doc = client.get("/api/openapi.json").json
    for path in ("/api/v1/houses", "/api/v1/communities"):
        schema = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        props = schema["properties"]
        assert props["latitude"]["type"] == "number" and props["timezone"]["type"] == "string"
        assert "AU-VIC" in props["country"]["description"]
    patch = doc["paths"]["/api/v1/houses/{object_id}"]["patch"]
    assert "longitude" in patch["requestBody"]["content"]["application/json"]["schema"]["properties"]


# ---- the place a forecast gets -----------------------------------------------------------------------


def config_place(factory, defaults=DEFAULTS, **params) -> Place:
    task = forecasting.resolve_task(system_scope(), "consumption", "next-24-hours", params, defaults)
    with factory() as s:
        return Place.of_config(forecasting.with_place(s, task).cfg)


def set_place(factory, model, object_id, **fields):
    with factory() as s:
        obj = s.get(model, object_id)
        for k, v in fields.items():
            setattr(obj, k, v)
        s.commit()


def test_forecast_config_takes_the_house_then_its_community_then_the_defaults(world, factory):
    # nothing set anywhere: the environment's defaults, for every scope
    for params in (
        {},
        {"house_id": world.house1},
        {"house_id": world.house2},
        {"community_id": world.community},
    ):
        assert config_place(factory, **params) == DEFAULTS
    set_place(factory, Community, world.community, timezone="Europe/Berlin", country="DE-BY", latitude=48.14,
              longitude=11.58)  # fmt: skip
    bavaria = Place("Europe/Berlin", "DE-BY", 48.14, 11.58)
    assert config_place(factory, community_id=world.community) == bavaria
    assert config_place(factory, house_id=world.house1) == bavaria  # house 1 is in that community
    assert config_place(factory, house_id=world.house2) == DEFAULTS  # house 2 in none
    assert config_place(factory) == DEFAULTS  # the fleet: the defaults
    # the house's own fields win one by one; coordinates as a pair
    set_place(factory, House, world.house1, country="DE-BE", latitude=52.52, longitude=13.40)
    assert config_place(factory, house_id=world.house1) == Place("Europe/Berlin", "DE-BE", 52.52, 13.40)
    # in two communities: neither is "its" community, so the defaults fill what the house lacks
    with factory() as s:
        other = Community(
            name="Second", created_at=datetime.now(UTC).replace(tzinfo=None), timezone="Asia/Tokyo"
        )
        other.houses.append(s.get(House, world.house1))
        s.add(other)
        s.commit()
    assert config_place(factory, house_id=world.house1) == Place("Europe/Athens", "DE-BE", 52.52, 13.40)


def test_the_environment_gives_the_defaults(world, factory, tmp_path):
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, TIMEZONE="America/New_York", HOLIDAY_COUNTRY="US-NY", LATITUDE="40.71",
                             LONGITUDE="-74.01")  # fmt: skip
    place = default_place(settings)
    assert place == Place("America/New_York", "US-NY", 40.71, -74.01)
    assert config_place(factory, defaults=place, house_id=world.house2) == place


# ---- a trained model keeps its place -------------------------------------------------------------------

END = datetime(2026, 6, 20, 0, 0, tzinfo=UTC)
AS_OF = {"as_of": "2026-06-19T00:00:00Z"}
PARIS = {"latitude": 48.8566, "longitude": 2.3522}


@pytest.fixture
def seeded(app, factory, pg_snapshots):
    pg_snapshots.demo(factory, "Europe/Athens", houses=2, days=20, end=END)
    with factory() as s:
        house_id = s.scalar(select(func.min(House.id)))
    return factory, house_id


def train_house(factory, store, house_id):
    task = forecasting.resolve_task(system_scope(), "consumption", "next-24-hours",
                                    AS_OF | {"house_id": house_id, "model": "xgboost"}, DEFAULTS)  # fmt: skip
    with factory() as s:
        model_id, _version, report = forecasting.train(s, store, system_scope(), task)
        s.commit()
    return task, report


def test_a_model_keeps_the_place_and_weather_it_was_trained_for(seeded, tmp_path):
    from tests.conftest import make_settings

    factory, house_id = seeded
    settings = make_settings(tmp_path)
    store = ModelStore(settings, object_store_from_settings(settings))  # the embedded folder store

    # no place of its own: the defaults, where the demo site's weather is stored
    task, report = train_house(factory, store, house_id)
    assert any("temperature_c" in f for f in report.features), report.features
    with factory() as s:
        _row, model = store.load_active(s, task.slot)
    assert Place.of_config(model.cfg) == DEFAULTS

    # the house moves to Paris (no weather within 50 km): the stored model still forecasts as trained
    set_place(factory, House, house_id, timezone="Europe/Paris", country="FR", **PARIS)
    with factory() as s:
        version, frame = forecasting.forecast(s, store, system_scope(), task)
        _row, served = store.load_active(s, task.slot)
    assert len(frame) == 24 and Place.of_config(served.cfg) == DEFAULTS

    # retraining takes the new place; Paris has no stored weather, so the model learns without it
    task, report = train_house(factory, store, house_id)
    assert not any("temperature_c" in f for f in report.features), report.features
    with factory() as s:
        _row, model = store.load_active(s, task.slot)
    assert Place.of_config(model.cfg) == Place("Europe/Paris", "FR", PARIS["latitude"], PARIS["longitude"])
