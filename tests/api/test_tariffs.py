"""Tariffs per house over the API on PostgreSQL: CRUD, validation (overlaps, bad and uncovered periods),
role and house scope on every route, nothing written on a refusal."""

from __future__ import annotations

import pytest

FLAT = {"kind": "flat", "import_price": 0.2, "valid_from": "2027-01-01", "valid_to": "2027-06-30"}
TOU = {
    "kind": "tou",
    "valid_from": "2027-07-01",
    "export_price": 0.05,
    "standing_charge_per_day": 0.4,
    "periods": [
        {"days": "all", "start": "07:00", "end": "23:00", "import_price": 0.3},
        {"days": "all", "start": "23:00", "end": "07:00", "import_price": 0.1},
    ],
}


def url(house: int, tariff: int | None = None) -> str:
    return f"/api/v1/houses/{house}/tariffs" + (f"/{tariff}" if tariff is not None else "")


def add(client, world, body, house=None, who="admin"):
    return client.post(url(house or world.house1, None), json=body, headers=world.headers[who])


def listed(client, world, house=None, who="admin"):
    return client.get(url(house or world.house1), headers=world.headers[who])


def test_create_read_update_delete(client, world):
    r = add(client, world, FLAT)
    assert r.status_code == 201, r.json
    flat = r.json
    assert flat["kind"] == "flat" and flat["name"] == "Flat" and flat["valid_to"] == "2027-06-30"
    r = add(client, world, TOU)
    assert r.status_code == 201, r.json
    assert [p["start"] for p in r.json["periods"]] == ["07:00", "23:00"]
    assert [t["id"] for t in listed(client, world).json] == [flat["id"], r.json["id"]]
    one = client.get(url(world.house1, flat["id"]), headers=world.headers["analyst"])
    assert one.status_code == 200 and one.json == flat
    r = client.patch(url(world.house1, flat["id"]), json={"import_price": 0.25, "name": "New"},
                     headers=world.headers["admin"])  # fmt: skip
    assert r.status_code == 200 and r.json["import_price"] == 0.25 and r.json["name"] == "New"
    assert client.delete(url(world.house1, flat["id"]), headers=world.headers["admin"]).status_code == 204
    assert len(listed(client, world).json) == 1


def test_an_overlap_is_refused_naming_the_clash_and_nothing_changes(client, world):
    first = add(client, world, FLAT).json
    r = add(client, world, FLAT | {"valid_from": "2027-06-30", "valid_to": None})
    assert r.status_code == 409
    assert f"tariff {first['id']}" in r.json["detail"] and "2027-06-30" in r.json["detail"]
    # open-ended against a later one; a patch that would overlap is refused too
    second = add(client, world, TOU).json
    r = client.patch(
        url(world.house1, first["id"]), json={"valid_to": "2027-07-01"}, headers=world.headers["admin"]
    )
    assert r.status_code == 409 and f"tariff {second['id']}" in r.json["detail"]
    assert (
        client.get(url(world.house1, first["id"]), headers=world.headers["admin"]).json["valid_to"]
        == "2027-06-30"
    )
    # adjacent days do not overlap; another house is independent
    assert add(client, world, FLAT, house=world.house2).status_code == 201


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"kind": "flat", "valid_from": "2027-01-01"}, "import_price", "required"),
        ({"kind": "cheap", "valid_from": "2027-01-01"}, "kind", "flat or tou"),
        (FLAT | {"valid_to": "2026-12-31"}, "valid_to", "on or after"),
        (FLAT | {"valid_from": "01/01/2027"}, "valid_from", "YYYY-MM-DD"),
        (FLAT | {"import_price": "0.2"}, "import_price", "number"),
        (FLAT | {"standing_charge_per_day": -1}, "standing_charge_per_day", "within"),
        (FLAT | {"colour": "red"}, "colour", "unknown field"),
        (FLAT | {"periods": TOU["periods"]}, "periods", "no periods"),
        (TOU | {"import_price": 0.2}, "import_price", "omit it"),
        (TOU | {"periods": []}, "periods", "non-empty"),
        (TOU | {"periods": [{"start": "07:30", "end": "23:00", "import_price": 0.3}]}, "periods[0]", "whole hours"),
        (TOU | {"periods": [{"start": "07:00", "end": "07:00", "import_price": 0.3}]}, "periods[0]", "same hour"),
        (TOU | {"periods": [{"days": "monday", "start": "00:00", "end": "24:00", "import_price": 0.3}]},
         "periods[0].days", "one of"),
        # a gap: 23:00-24:00 on every day
        (TOU | {"periods": [{"start": "00:00", "end": "23:00", "import_price": 0.3}]}, "periods",
         "weekday hours without a price: 23:00-24:00"),
        # weekdays covered, weekends not
        (TOU | {"periods": [{"days": "weekday", "start": "00:00", "end": "24:00", "import_price": 0.3}]},
         "periods", "weekend hours without a price"),
        # an overlap: 22:00-23:00 priced twice
        (TOU | {"periods": [{"start": "00:00", "end": "23:00", "import_price": 0.3},
                            {"start": "22:00", "end": "24:00", "import_price": 0.1}]}, "periods[1]", "overlaps periods[0]"),
    ],
)  # fmt: skip
def test_bad_tariffs_are_refused_naming_the_field_and_nothing_is_written(client, world, body, field, words):
    r = add(client, world, body)
    assert r.status_code == 422, r.json
    assert r.json["error"] == "Invalid or missing input"
    problems = [d for d in r.json["details"] if d["field"] == field]
    assert problems and any(words in d["message"] for d in problems), r.json["details"]
    assert listed(client, world).json == []


def test_a_consumer_reads_only_their_own_houses_tariffs_and_writes_none(client, world):
    own = add(client, world, FLAT).json
    other = add(client, world, FLAT, house=world.house2).json
    assert [t["id"] for t in listed(client, world, who="consumer").json] == [own["id"]]
    assert listed(client, world, house=world.house2, who="consumer").status_code == 404
    assert client.get(url(world.house2, other["id"]), headers=world.headers["consumer"]).status_code == 404
    # a tariff id of house 2 through house 1's path is not found either
    assert client.get(url(world.house1, other["id"]), headers=world.headers["consumer"]).status_code == 404
    assert add(client, world, TOU, who="consumer").status_code == 403
    r = client.patch(
        url(world.house1, own["id"]), json={"valid_to": "2027-02-01"}, headers=world.headers["consumer"]
    )
    assert r.status_code == 403
    assert client.delete(url(world.house1, own["id"]), headers=world.headers["consumer"]).status_code == 403
    assert client.get(url(world.house1, own["id"]), headers=world.headers["admin"]).json == own


@pytest.mark.parametrize("who", ["partner", "api_key"])
def test_third_parties_see_no_tariff_and_no_cost(client, world, who):
    add(client, world, FLAT)
    assert listed(client, world, who=who).status_code == 403
    assert add(client, world, TOU, who=who).status_code == 403
    r = client.get("/api/v1/cost", query_string={"start": "2027-01-01T00:00:00Z", "end": "2027-01-02T00:00:00Z"},
                   headers=world.headers[who])  # fmt: skip
    assert r.status_code == 403


def test_analyst_reads_but_may_not_write(client, world):
    own = add(client, world, FLAT).json
    assert listed(client, world, who="analyst").json == [own]
    assert add(client, world, TOU, who="analyst").status_code == 403


def test_unknown_house_and_anonymous(client, world):
    assert add(client, world, FLAT, house=999_999).status_code == 404
    assert client.get(url(world.house1)).status_code == 401


def test_cost_scope_for_a_consumer(client, world):
    params = {"start": "2027-01-01T00:00:00Z", "end": "2027-01-02T00:00:00Z"}
    r = client.get(
        "/api/v1/cost", query_string=params | {"house_id": world.house2}, headers=world.headers["consumer"]
    )
    assert r.status_code == 404
    add(client, world, FLAT, house=world.house2)  # house 2's tariff is not the consumer's
    r = client.get("/api/v1/cost", query_string=params, headers=world.headers["consumer"])
    assert r.status_code == 200 and r.json["has_tariff"] is False and r.json["total"] is None


def test_grid_intensity_validation_and_role(client, world):
    good = {"values": [{"hour": "2027-01-01T10:00:00+02:00", "g_per_kwh": 300}]}
    assert (
        client.post("/api/v1/grid-intensity", json=good, headers=world.headers["analyst"]).status_code == 403
    )
    for bad, field in [
        ({"values": [{"hour": "2027-01-01T10:30:00Z", "g_per_kwh": 300}]}, "hour"),
        ({"values": [{"hour": "2027-01-01T10:00:00Z", "g_per_kwh": -1}]}, "g_per_kwh"),
        ({"values": [good["values"][0], good["values"][0]]}, "hour"),
        ({"values": []}, "values"),
    ]:
        r = client.post("/api/v1/grid-intensity", json=bad, headers=world.headers["admin"])
        assert r.status_code == 422 and r.json["details"][0]["field"] == field, r.json
    r = client.post("/api/v1/grid-intensity", json=good, headers=world.headers["admin"])
    assert r.status_code == 200 and r.json == {"inserted": 1, "updated": 0}
