"""Privacy (issue 13 s.4, docs/privacy.md): k-anonymity and consent for third parties, a data subject's export
and erasure, a deleted house's models and forecasts, raw-reading retention and the access log's fields.

Real PostgreSQL (the `app` fixture), the real S3 server and Redis for the models and the forecast cache."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select, text

from dashboard import clients, privacy, subject_export
from dashboard.clock import utcnow
from dashboard.forecast_cache import cache_key
from dashboard.maintenance import prune_logs
from dashboard.rollups import FLEET, DeviceInfo, RollupAccumulator
from dashboard.schema import (
    ApiAccessLog,
    Community,
    Device,
    EnergyRollup,
    House,
    Measurement,
    ModelVersion,
    User,
)
from dashboard.storage import object_store_from_settings
from dashboard.ttl_cache import RedisCache
from tests.conftest import make_settings

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
START, END = "2026-11-01T00:00:00Z", "2026-11-04T00:00:00Z"


def services_of(app):
    return app.server.extensions["aggregator"]


@pytest.fixture
def k5(app, monkeypatch):
    """The production rule: no aggregate of fewer than 5 houses for third parties."""
    svc = services_of(app)
    monkeypatch.setattr(svc, "settings", replace(svc.settings, min_aggregate_houses=5))
    return 5


def post(client, headers, items, **query):
    url = "/api/v1/measurements" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    return client.post(url, json={"measurements": items}, headers=headers)


def readings(serial, hours=3, power=1000.0, start=T0, **extra):
    return [
        {"device_id": serial, "timestamp": (start + timedelta(minutes=15 * i)).isoformat(), "power_w": power,
         "energy_wh": power / 4 + i, "voltage_v": 229.0 + i % 3, "power_factor": 0.95} | extra
        for i in range(hours * 4)
    ]  # fmt: skip


def add_houses(factory, n, community_id=None, consent=False) -> list[int]:
    """n more houses, each with a main meter H<id>-M, optionally in a community."""
    now = utcnow()
    with factory() as s:
        houses = [
            House(name=f"Extra {i}", created_at=now, share_with_third_parties=consent) for i in range(n)
        ]
        s.add_all(houses)
        s.flush()
        community = s.get(Community, community_id) if community_id is not None else None
        for h in houses:
            s.add(Device(serial=f"X{h.id}-M", name="Main", kind="meter", direction="consumption", house_id=h.id,
                         created_at=now))  # fmt: skip
            if community is not None:
                community.houses.append(h)
        s.commit()
        return [h.id for h in houses]


def energy(client, headers, **query):
    params = {"resolution": "hour", "start": START, "end": END} | query
    return client.get("/api/v1/energy", query_string=params, headers=headers)


# ---- k-anonymity and consent --------------------------------------------------------------------------


def test_probe_f1_a_one_house_community_is_invisible_to_third_parties(client, world, k5):
    admin = world.headers["admin"]
    assert post(client, admin, readings("H1-MAIN")).status_code == 200
    solo = client.post(
        "/api/v1/communities", json={"name": "Solo", "house_ids": [world.house1]}, headers=admin
    )
    assert solo.status_code == 201
    solo_id = solo.json["id"]
    for tp in (world.headers["api_key"], world.headers["partner"]):
        listed = client.get("/api/v1/communities", headers=tp).json["communities"]
        assert listed == []  # neither the community nor its house_count
        assert client.get(f"/api/v1/communities/{solo_id}", headers=tp).status_code == 404
        r = energy(client, tp, community_id=solo_id)
        assert r.status_code == 404 and "series" not in r.json
        r = client.get("/api/v1/exports/summary", headers=tp, query_string={
            "period": "daily", "start": START, "end": END, "community_id": solo_id, "format": "json"})  # fmt: skip
        assert r.status_code == 404 and "rows" not in r.json
        r = client.post(f"/aggregator/consumption/forecast/next-24-hours?community_id={solo_id}", headers=tp)
        assert r.status_code == 404
    # staff still see it whole
    assert energy(client, admin, community_id=solo_id).json["series"]
    admin_view = client.get(f"/api/v1/communities/{solo_id}", headers=admin).json
    assert admin_view["house_count"] == 1


def test_a_fleet_of_fewer_houses_is_refused_to_third_parties(client, world, k5):
    admin, tp = world.headers["admin"], world.headers["api_key"]
    assert post(client, admin, readings("H1-MAIN") + readings("H2-MAIN")).status_code == 200
    r = energy(client, tp)
    assert r.status_code == 403
    assert "at least 5 houses" in r.json["detail"] and "series" not in r.json
    r = client.get("/api/v1/exports/summary", headers=tp,
                   query_string={"period": "daily", "start": START, "end": END, "format": "json"})  # fmt: skip
    assert r.status_code == 403 and "rows" not in r.json
    assert client.post("/aggregator/consumption/forecast/next-24-hours", headers=tp).status_code == 403
    assert energy(client, admin).status_code == 200  # staff are not third parties


def test_a_community_of_five_is_visible_but_each_bucket_needs_five_houses(client, world, factory, k5):
    admin, tp = world.headers["admin"], world.headers["api_key"]
    with factory() as s:
        big = Community(name="Big Street", created_at=utcnow())
        s.add(big)
        s.commit()
        big_id = big.id
    extra = add_houses(factory, 5, big_id)
    batch = [r for h in extra for r in readings(f"X{h}-M")]
    assert post(client, admin, batch).status_code == 200
    listed = client.get("/api/v1/communities", headers=tp).json["communities"]
    assert [(c["id"], c["house_count"]) for c in listed] == [(big_id, 5)]  # Solar Street (1 house) hidden
    r = energy(client, tp, community_id=big_id)
    assert r.status_code == 200, r.json
    assert r.json["series"] == energy(client, admin, community_id=big_id).json["series"]
    # one house alone in a later hour: that hour would be its own series, so the aggregate is refused
    late = T0 + timedelta(hours=5)
    assert post(client, admin, readings(f"X{extra[0]}-M", hours=1, start=late)).status_code == 200
    r = energy(client, tp, community_id=big_id)
    assert r.status_code == 403 and "has readings of 1 houses" in r.json["detail"]
    # a range without that hour is fine
    r = energy(client, tp, community_id=big_id, end=(T0 + timedelta(hours=3)).isoformat())
    assert r.status_code == 200


def test_a_summary_whose_peak_quarter_had_fewer_houses_is_refused(client, world, factory, k5):
    """A daily summary's peak is one quarter-hour's aggregate: a day of 5 houses is not enough when one of its
    quarters had readings of a single house (it could be the peak), so the export is refused."""
    admin, tp = world.headers["admin"], world.headers["api_key"]
    with factory() as s:
        street = Community(name="Peak Street", created_at=utcnow())
        s.add(street)
        s.commit()
        street_id = street.id
    extra = add_houses(factory, 5, street_id)
    assert post(client, admin, [r for h in extra for r in readings(f"X{h}-M")]).status_code == 200
    query = {"period": "daily", "start": START, "end": END, "format": "json", "community_id": street_id}
    assert client.get("/api/v1/exports/summary", headers=tp, query_string=query).status_code == 200
    alone = readings(f"X{extra[0]}-M", hours=1, power=9000.0, start=T0 + timedelta(hours=5))  # same day
    assert post(client, admin, alone).status_code == 200
    r = client.get("/api/v1/exports/summary", headers=tp, query_string=query)
    assert r.status_code == 403 and "rows" not in r.json, r.json
    assert client.get("/api/v1/exports/summary", headers=admin, query_string=query).status_code == 200


def test_per_house_rows_only_from_consenting_houses(client, world, factory, k5):
    admin, tp = world.headers["admin"], world.headers["api_key"]
    consenting = add_houses(factory, 2, consent=True)
    silent = add_houses(factory, 3)
    batch = [r for h in consenting + silent for r in readings(f"X{h}-M")]
    assert post(client, admin, batch).status_code == 200
    query = {"period": "daily", "start": START, "end": END, "per_house": "true", "format": "json"}
    got = client.get("/api/v1/exports/summary", headers=tp, query_string=query).json
    expected = {privacy_pseudonym(app_secret(client), h) for h in consenting}
    assert {r["house_id"] for r in got["rows"]} == expected
    real = client.get("/api/v1/exports/summary", headers=admin, query_string=query).json
    assert {r["house_id"] for r in real["rows"]} == set(consenting + silent)
    # consent is an admin's field on the house: PATCH it on, and the house appears
    r = client.patch(f"/api/v1/houses/{silent[0]}", json={"share_with_third_parties": True}, headers=admin)
    assert r.status_code == 200 and r.json["share_with_third_parties"] is True
    got = client.get("/api/v1/exports/summary", headers=tp, query_string=query).json
    assert len({r["house_id"] for r in got["rows"]}) == 3
    bad = client.patch(f"/api/v1/houses/{silent[1]}", json={"share_with_third_parties": "yes"}, headers=admin)
    assert bad.status_code == 422 and bad.json["details"][0]["field"] == "share_with_third_parties"
    consumer = client.patch(f"/api/v1/houses/{world.house1}", json={"share_with_third_parties": True},
                            headers=world.headers["consumer"])  # fmt: skip
    assert consumer.status_code == 403


def app_secret(client):
    return client.application.extensions["aggregator"].settings.secret_key


def privacy_pseudonym(secret, house_id):
    from dashboard.exports import pseudonym

    return pseudonym(house_id, secret)


# ---- export -------------------------------------------------------------------------------------------


def test_a_consumer_exports_everything_about_them(client, world):
    consumer = world.headers["consumer"]
    mine = readings("H1-MAIN") + readings("H1-EV", power=300.0)
    assert post(client, world.headers["admin"], mine + readings("H2-MAIN")).status_code == 200
    r = client.get("/api/v1/auth/me/export", headers=consumer)
    assert r.status_code == 200 and r.is_json
    body = r.json
    assert body["account"]["username"] == "consumer" and body["account"]["house_ids"] == [world.house1]
    assert "password_hash" not in json.dumps(body)
    assert [h["id"] for h in body["houses"]] == [world.house1]
    assert {d["device_id"] for d in body["devices"]} == {"H1-MAIN", "H1-PV", "H1-EV"}
    assert len(body["readings"]) == len(mine)
    assert {r["device_id"] for r in body["readings"]} == {"H1-MAIN", "H1-EV"}  # never H2's
    first = body["readings"][0]
    assert first["timestamp"] == "2026-11-02T10:00:00Z" and first["energy_wh"] == 250.0
    # an admin gets the same for any user; others may not ask for someone else's
    admin_copy = client.get(f"/api/v1/users/{world.users['consumer']}/export", headers=world.headers["admin"])
    assert admin_copy.json["readings"] == body["readings"]
    assert client.get(f"/api/v1/users/{world.users['consumer2']}/export", headers=consumer).status_code == 403
    assert client.get("/api/v1/users/999999/export", headers=world.headers["admin"]).status_code == 404
    assert client.get("/api/v1/auth/me/export").status_code == 401


def test_a_large_export_is_a_zip_of_csvs(client, world, monkeypatch):
    monkeypatch.setattr(subject_export, "EXPORT_ZIP_THRESHOLD", 10)  # the volume rule, at a test's size
    mine = readings("H1-MAIN", hours=6)
    assert post(client, world.headers["admin"], mine).status_code == 200
    r = client.get("/api/v1/auth/me/export", headers=world.headers["consumer"])
    assert r.status_code == 200 and r.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.get_data()))
    assert sorted(archive.namelist()) == ["account.json", "devices.csv", "houses.csv", "readings.csv"]
    assert json.loads(archive.read("account.json"))["username"] == "consumer"
    rows = list(csv.DictReader(io.StringIO(archive.read("readings.csv").decode())))
    assert len(rows) == len(mine)
    assert rows[0]["device_id"] == "H1-MAIN" and float(rows[0]["energy_wh"]) == 250.0
    # streamed in pieces, not one buffer: the generator answers the readings in chunks
    pieces = list(
        subject_export.export_zip(services_of_client(client).session_factory, world.users["consumer"], 5)
    )
    assert len(pieces) >= 2 + len(mine) // 5
    streamed = zipfile.ZipFile(io.BytesIO(b"".join(pieces))).read("readings.csv")
    assert streamed == archive.read("readings.csv")


def services_of_client(client):
    return client.application.extensions["aggregator"]


# ---- erasure ------------------------------------------------------------------------------------------


@pytest.fixture
def real_stores(app, s3_settings, redis_url, monkeypatch):
    """The app's services on the real S3 server and Redis (its forecast cache)."""
    svc = services_of(app)
    store = object_store_from_settings(s3_settings)
    cache = RedisCache(redis_url)
    monkeypatch.setattr(svc, "_object_store", store)
    monkeypatch.setattr(svc, "cache", cache)
    return store, cache


def add_model(factory, store, cache, scope_kind, scope_id) -> str:
    """A stored model version (its bytes in the object store) and an issued forecast in the cache."""
    key = f"models/consumption/next-24-hours-h96/{scope_kind}-{scope_id}/xgboost-direct/v-{scope_kind}{scope_id}.bin"
    store.put_bytes(key, b"encrypted model bytes")
    with factory() as s:
        s.add(ModelVersion(version=f"v-{scope_kind}{scope_id}", target="consumption", product="next-24-hours",
                           horizon=96, scope_kind=scope_kind, scope_id=scope_id, model="xgboost",
                           strategy="direct", object_key=key, trained_at=utcnow(), is_active=True))  # fmt: skip
        s.commit()
    cache.put(
        cache_key(key, pd.Timestamp("2026-11-03T00:00:00Z")), {"answer": {"v": 1}, "settled": True}, 600
    )
    return key


def rollups(factory, where="TRUE") -> dict:
    with factory() as s:
        rows = s.execute(text(
            "SELECT resolution, entity_kind, entity_id, bucket_start, consumption_wh, production_wh, voltage_sum, "
            f"voltage_count, pf_sum, pf_count, readings_count FROM energy_rollups WHERE {where}")).all()  # fmt: skip
    return {tuple(r[:4]): tuple(r[4:]) for r in rows}


def from_scratch(factory, timezone) -> dict:
    """Every rollup row recomputed from the raw readings that remain (the fleet included)."""
    acc = RollupAccumulator(timezone)
    with factory() as s:
        devices = {d.id: DeviceInfo(d.id, d.serial, d.house_id, d.pv_park_id, d.kind, d.direction)
                   for d in s.scalars(select(Device))}  # fmt: skip
        for m in s.scalars(select(Measurement)):
            acc.add(devices[m.device_id], m.ts, m.energy_wh, m.voltage_v, m.power_factor)
    return {
        (r["resolution"], r["entity_kind"], r["entity_id"], r["bucket_start"]): (
            r["consumption_wh"], r["production_wh"], r["voltage_sum"], r["voltage_count"], r["pf_sum"],
            r["pf_count"], r["readings_count"])
        for r in acc.records()
    }  # fmt: skip


def assert_rollups_equal(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key, values in want.items():
        assert got[key][3::2] == values[3::2], key  # counts exactly
        assert got[key] == pytest.approx(values, abs=1e-9), key


def test_erasing_a_user_leaves_no_trace_and_keeps_every_total_exact(client, world, factory, real_stores):
    store, cache = real_stores
    admin, consumer = world.headers["admin"], world.headers["consumer"]
    batch = readings("H1-MAIN") + readings("H1-PV", power=500.0) + readings("H1-EV", power=200.0)
    batch += readings("H2-MAIN", power=700.0) + readings("PARK-INV", power=9000.0)
    assert post(client, admin, batch).status_code == 200
    assert client.get("/api/v1/houses", headers=consumer).status_code == 200  # logged with the user's id
    house1_model = add_model(factory, store, cache, "house", world.house1)
    community_model = add_model(factory, store, cache, "community", world.community)
    house2_model = add_model(factory, store, cache, "house", world.house2)
    user_id = world.users["consumer"]
    with factory() as s:
        h1_devices = s.scalars(select(Device.id).where(Device.house_id == world.house1)).all()
        logged = s.scalar(
            select(func.count()).select_from(ApiAccessLog).where(ApiAccessLog.user_id == user_id)
        )
    assert logged >= 1

    r = client.delete(f"/api/v1/users/{user_id}?erase=true", headers=admin)
    assert r.status_code == 204

    with factory() as s:
        assert s.get(User, user_id) is None and s.get(House, world.house1) is None
        assert s.get(House, world.house2) is not None  # another user's house stays
        assert (
            s.scalar(
                select(func.count()).select_from(Measurement).where(Measurement.device_id.in_(h1_devices))
            )
            == 0
        )
        assert s.scalar(select(func.count()).select_from(Device).where(Device.id.in_(h1_devices))) == 0
        own = (EnergyRollup.entity_kind == "house") & (EnergyRollup.entity_id == world.house1)
        appliance = (EnergyRollup.entity_kind == "device") & EnergyRollup.entity_id.in_(h1_devices)
        assert s.scalar(select(func.count()).select_from(EnergyRollup).where(own | appliance)) == 0
        versions = s.scalars(select(ModelVersion.object_key)).all()
        assert versions == [house2_model]
        assert (
            s.scalar(select(func.count()).select_from(ApiAccessLog).where(ApiAccessLog.user_id == user_id))
            == 0
        )
        pseudonymised = s.scalars(select(ApiAccessLog).where(ApiAccessLog.user_pseudonym.is_not(None))).all()
    assert len(pseudonymised) == logged
    assert {row.user_pseudonym for row in pseudonymised} == {
        privacy.user_pseudonym(user_id, app_secret(client))
    }
    assert not store.exists(house1_model) and not store.exists(community_model) and store.exists(house2_model)
    origin = pd.Timestamp("2026-11-03T00:00:00Z")
    assert (
        cache.get(cache_key(house1_model, origin)) is None
        and cache.get(cache_key(community_model, origin)) is None
    )
    assert cache.get(cache_key(house2_model, origin)) is not None
    # every rollup left, the fleet's included, is exactly what the remaining readings give
    assert_rollups_equal(
        rollups(factory), from_scratch(factory, services_of_client(client).settings.timezone)
    )
    # the community (its PV park only now) and the fleet (house 2 + the park) from the API
    fleet = energy(client, admin).json["series"]
    park = energy(client, admin, community_id=world.community).json["series"]
    house2 = {p["timestamp"]: p for p in energy(client, admin, house_id=world.house2).json["series"]}
    for point, park_point in zip(fleet, park, strict=True):
        assert point["consumption_kwh"] == house2[point["timestamp"]]["consumption_kwh"]
        assert point["production_kwh"] == park_point["production_kwh"]
        assert park_point["consumption_kwh"] == 0.0
    # the access log keeps the erasure
    with factory() as s:
        entry = s.scalars(select(ApiAccessLog).where(ApiAccessLog.method == "DELETE")).one()
    assert entry.target.startswith(f"object_id={user_id}") and "erase: 1 houses" in entry.target


def test_erase_keeps_a_house_shared_with_another_user(client, world, factory):
    admin = world.headers["admin"]
    r = client.patch(f"/api/v1/users/{world.users['consumer2']}", json={"house_ids": [world.house1, world.house2]},
                     headers=admin)  # fmt: skip
    assert r.status_code == 200
    assert post(client, admin, readings("H1-MAIN")).status_code == 200
    assert (
        client.delete(f"/api/v1/users/{world.users['consumer']}?erase=true", headers=admin).status_code == 204
    )
    with factory() as s:
        assert s.get(House, world.house1) is not None
        assert s.scalar(select(func.count()).select_from(Measurement)) == len(readings("H1-MAIN"))


def test_erase_input_and_roles(client, world, factory):
    target = world.users["consumer2"]
    assert (
        client.delete(f"/api/v1/users/{target}?erase=maybe", headers=world.headers["admin"]).status_code
        == 422
    )
    assert (
        client.delete(f"/api/v1/houses/{world.house2}?erase=true", headers=world.headers["admin"]).status_code
        == 422
    )
    for caller in ("analyst", "consumer", "api_key"):
        assert (
            client.delete(f"/api/v1/users/{target}?erase=true", headers=world.headers[caller]).status_code
            == 403
        )
    with factory() as s:
        assert s.get(User, target) is not None and s.get(House, world.house2) is not None


def test_the_erase_command(client, world, factory, pg_url, tmp_path, monkeypatch, capsys):
    from dashboard.__main__ import main

    assert post(client, world.headers["admin"], readings("H2-MAIN")).status_code == 200
    settings = make_settings(tmp_path, DATABASE_URL=pg_url)
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SECRET_KEY", settings.secret_key)
    with pytest.raises(SystemExit) as dry:
        main(["erase", "--user", "consumer2"])
    assert dry.value.code == 1 and "add --yes" in capsys.readouterr().out
    with factory() as s:
        assert s.get(House, world.house2) is not None  # nothing changed
    main(["erase", "--user", "consumer2", "--yes"])
    assert "Erased user 'consumer2'" in capsys.readouterr().out
    with factory() as s:
        assert s.get(User, world.users["consumer2"]) is None and s.get(House, world.house2) is None
        assert s.scalar(select(func.count()).select_from(Measurement)) == 0
        fleet = s.scalar(
            select(func.count()).select_from(EnergyRollup).where(EnergyRollup.entity_kind == FLEET[0])
        )
    assert fleet == 0  # house 2 was the only one with readings: no empty fleet buckets are left
    with pytest.raises(SystemExit) as missing:
        main(["erase", "--user", "nobody", "--yes"])
    assert "No user named 'nobody'" in str(missing.value.code)


# ---- deleting a house (probe 6.4) ---------------------------------------------------------------------


def test_deleting_a_house_removes_its_models_and_forecasts(client, world, factory, real_stores):
    store, cache = real_stores
    admin = world.headers["admin"]
    assert post(client, admin, readings("H2-MAIN")).status_code == 200
    key = add_model(factory, store, cache, "house", world.house2)
    assert client.delete(f"/api/v1/houses/{world.house2}", headers=admin).status_code == 204
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(ModelVersion)) == 0
    assert not store.exists(key)
    assert cache.get(cache_key(key, pd.Timestamp("2026-11-03T00:00:00Z"))) is None
    r = client.post(f"/aggregator/consumption/forecast/next-24-hours?house_id={world.house2}", headers=admin)
    assert r.status_code == 404 and "House" in r.json["detail"]
    r = client.post(f"/aggregator/consumption/train/next-24-hours?house_id={world.house2}", headers=admin)
    assert r.status_code == 404
    # a community's models go with it too
    key = add_model(factory, store, cache, "community", world.community)
    assert client.delete(f"/api/v1/communities/{world.community}", headers=admin).status_code == 204
    assert not store.exists(key)
    r = client.post(
        f"/aggregator/consumption/forecast/next-24-hours?community_id={world.community}", headers=admin
    )
    assert r.status_code == 404


# ---- retention ----------------------------------------------------------------------------------------


def test_raw_retention_drops_old_readings_and_keeps_rollups(app, client, world, factory, monkeypatch):
    old = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(days=40)
    recent = old + timedelta(days=35)
    admin = world.headers["admin"]
    batch = readings("H1-MAIN", start=old.replace(tzinfo=UTC)) + readings(
        "H1-MAIN", start=recent.replace(tzinfo=UTC)
    )
    assert post(client, admin, batch).status_code == 200
    before = rollups(factory)
    with factory() as s:
        assert prune_logs(s, 90, raw_retention_days=None)["raw_readings"] == 0  # unset: kept for ever
        s.commit()
    # the daily maintenance job, with RAW_RETENTION_DAYS=30
    from dashboard.context import bound
    from jobs.maintenance import prune_logs as daily_job

    svc = services_of(app)
    monkeypatch.setattr(svc, "settings", replace(svc.settings, raw_retention_days=30))
    with bound(svc):
        counts = daily_job()
    assert counts["raw_readings"] == 12
    with factory() as s:
        left = s.scalars(select(Measurement.ts)).all()
    assert len(left) == 12 and min(left) >= recent
    assert rollups(factory) == before  # every chart and export still reaches back


def test_raw_retention_setting():
    from dashboard.config import load_settings

    base = {"DATA_DIR": "/tmp/x", "SECRET_KEY": "k" * 40}
    assert load_settings(base).raw_retention_days is None
    assert load_settings(base | {"RAW_RETENTION_DAYS": "400"}).raw_retention_days == 400
    assert load_settings(base).min_aggregate_houses == 5
    with pytest.raises(ValueError, match="RAW_RETENTION_DAYS"):
        load_settings(base | {"RAW_RETENTION_DAYS": "0"})


# ---- the access log -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kept"),
    [("203.0.113.77", "203.0.113.0/24"), ("2001:db8:abcd:12:1:2:3:4", "2001:db8:abcd::/48"),
     ("::ffff:198.51.100.9", "198.51.100.0/24"), ("not an address", None), (None, None)],
)  # fmt: skip
def test_client_addresses_are_truncated(address, kept):
    assert clients.truncate_address(address) == kept


def test_the_access_log_keeps_client_object_and_scope_asked_for(client, world, factory):
    admin = world.headers["admin"]
    client.get(f"/api/v1/houses/{world.house2}", headers=admin, environ_base={"REMOTE_ADDR": "203.0.113.77"})
    energy(client, admin, community_id=world.community)
    client.get("/api/v1/measurements", query_string={"device_id": "H1-MAIN", "start": START, "end": END},
               headers=admin, environ_base={"REMOTE_ADDR": "2001:db8:abcd:12::1"})  # fmt: skip
    with factory() as s:
        rows = s.scalars(select(ApiAccessLog).order_by(ApiAccessLog.id)).all()
    assert (rows[0].client, rows[0].target) == ("203.0.113.0/24", f"object_id={world.house2}")
    assert rows[1].target == f"community_id={world.community}" and rows[1].client == "127.0.0.0/24"
    assert (rows[2].client, rows[2].target) == ("2001:db8:abcd::/48", "device_id=H1-MAIN")
    listed = client.get("/api/v1/access-log", headers=admin).json["entries"]
    assert {"client", "target", "user_pseudonym"} <= set(listed[0])


def test_the_access_log_keeps_the_uis_data_access(client, world, factory):
    from tests.ui.helpers import cookie_login

    assert client.get("/").status_code == 200  # Dash warmed up
    outputs = ["overview-demand", "overview-production", "overview-net"]
    body = {
        "output": ".." + "...".join(f"{o}.children" for o in outputs) + "..",
        "outputs": [{"id": o, "property": "children"} for o in outputs],
        "inputs": [{"id": "overview-refresh", "property": "n_intervals", "value": 1}],
        "changedPropIds": ["overview-refresh.n_intervals"],
        "state": [],
    }
    csrf = cookie_login(client, "analyst")
    assert client.post("/_dash-update-component", json=body, headers=csrf).status_code == 200
    with factory() as s:
        entries = s.scalars(select(ApiAccessLog).where(ApiAccessLog.route.like("dash:%"))).all()
    entry = entries[-1]
    assert (
        entry.route
        == "dash:..overview-demand.children...overview-production.children...overview-net.children.."
    )
    assert entry.user_id == world.users["analyst"] and entry.status == 200
    assert entry.client == "127.0.0.0/24"


def test_erasure_touches_nothing_of_other_users(client, world, factory):
    """The erasure's update of the access log is limited to the user's rows."""
    client.get("/api/v1/houses", headers=world.headers["consumer2"])
    client.delete(f"/api/v1/users/{world.users['consumer']}?erase=true", headers=world.headers["admin"])
    with factory() as s:
        other = s.scalars(select(ApiAccessLog).where(ApiAccessLog.user_id == world.users["consumer2"])).all()
        assert len(other) == 1 and other[0].user_pseudonym is None
