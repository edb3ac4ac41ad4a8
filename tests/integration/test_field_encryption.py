"""Personal data at rest (dashboard/fieldcrypt.py), on PostgreSQL and SQLite: house names and addresses,
users' full names and e-mails are AES-256-GCM ciphertext in the database (a fresh nonce per write), bound
to their column, readable only with the right key; the API round-trips and validates them; rotate-keys
re-encrypts everything under a new key; migration 0008 encrypts the names already stored and back."""

from __future__ import annotations

import base64
import os
import re

import pytest
from sqlalchemy import select, text

from dashboard.__main__ import main as cli
from dashboard.clock import utcnow
from dashboard.db import make_engine, make_session_factory, migrate
from dashboard.fieldcrypt import FieldDecryptionFailed, key_id
from dashboard.schema import Device, House, User
from tests.conftest import CHEAP_HASHING, TEST_SECRET, fresh_pg_database, make_settings
from tests.factories import build_world
from tests.integration.test_migration_0004 import migrate_to, rows

NAME, ADDRESS = "House A, 1 Main St", "1 Main St, 10558 Athens"
FULL_NAME, EMAIL = "Eleni Papadopoulou", "eleni@example.org"
PLAINTEXTS = (NAME, ADDRESS, FULL_NAME, EMAIL, "Main St", "Eleni", "eleni", "example.org")


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(params=["postgresql", "sqlite"])
def env(request, tmp_path):
    """The settings' environment of a fresh, empty database of either kind."""
    base = {"DATA_DIR": str(tmp_path), "DEMO_DATA": "0", "SECRET_KEY": TEST_SECRET} | CHEAP_HASHING
    if request.param == "sqlite":
        yield base
        return
    with fresh_pg_database("aggcrypt") as url:
        yield base | {"DATABASE_URL": url}


def engine_for(env: dict, **extra: str):
    from dashboard.config import load_settings

    return make_engine(load_settings(env | extra))


@pytest.fixture
def engine(env):
    engine = engine_for(env)
    migrate(engine)
    yield engine
    engine.dispose()


def add_people(engine) -> tuple[int, int]:
    with make_session_factory(engine)() as s:
        house = House(name=NAME, address=ADDRESS, created_at=utcnow())
        user = User(username="eleni", password_hash="x", role="consumer", created_at=utcnow(),
                    full_name=FULL_NAME, email=EMAIL)  # fmt: skip
        s.add_all([house, user])
        s.commit()
        return house.id, user.id


def raw_values(engine) -> list[str]:
    return [
        *(v for row in rows(engine, "SELECT name, address FROM houses") for v in row),
        *(v for row in rows(engine, "SELECT full_name, email FROM users") for v in row),
    ]


def test_raw_sql_shows_ciphertext_only_and_a_fresh_nonce_per_write(engine):
    house_id, user_id = add_people(engine)
    stored = raw_values(engine)
    kid = key_id(engine.dialect.aggregator_keyring.current)
    assert len(stored) == 4 and all(re.fullmatch(rf"v1:{kid}:[A-Za-z0-9+/]+=*", v) for v in stored), stored
    assert not [p for p in PLAINTEXTS for v in stored if p.lower() in v.lower()]
    # the same plaintext never gives the same ciphertext: a second house of the same name, and a rewrite
    factory = make_session_factory(engine)
    with factory() as s:
        s.add(House(name=NAME, created_at=utcnow()))
        s.commit()
    first, second = [r[0] for r in rows(engine, "SELECT name FROM houses ORDER BY id")]
    assert first != second
    with factory() as s:
        s.get(House, house_id).name = NAME + " "  # a real change, then back to the same name
        s.commit()
        s.get(House, house_id).name = NAME
        s.commit()
    assert rows(engine, f"SELECT name FROM houses WHERE id = {house_id}")[0][0] not in (first, second)
    # and the application reads the plaintext
    with factory() as s:
        house, user = s.get(House, house_id), s.get(User, user_id)
        assert (house.name, house.address, user.full_name, user.email) == (NAME, ADDRESS, FULL_NAME, EMAIL)


def test_the_database_cannot_be_asked_to_compare_an_encrypted_column():
    with pytest.raises(TypeError, match="encrypted at rest"):
        select(House.id).where(House.name == NAME)
    with pytest.raises(TypeError, match="encrypted at rest"):
        select(User.id).order_by(User.email.desc())
    assert str(select(House.id).where(House.address.is_(None))).endswith("houses.address IS NULL")


@pytest.mark.parametrize(
    "move",
    [
        "UPDATE houses SET name = address",  # another column of the row
        "UPDATE users SET email = full_name",
        "UPDATE users SET full_name = (SELECT name FROM houses LIMIT 1)",  # another table
    ],
)
def test_a_value_moved_to_another_column_fails_to_decrypt(engine, move):
    add_people(engine)
    with engine.begin() as c:
        c.execute(text(move))
    with (
        make_session_factory(engine)() as s,
        pytest.raises(FieldDecryptionFailed, match="copied from another column"),
    ):
        s.execute(select(House.name)).all()
        s.execute(select(User.email, User.full_name)).all()


def test_a_tampered_or_plaintext_value_gives_a_clear_error(engine):
    house_id, _ = add_people(engine)
    (stored,) = rows(engine, "SELECT name FROM houses")[0]
    body = base64.b64decode(stored.split(":")[2])
    tampered = stored[: stored.rindex(":") + 1] + base64.b64encode(body[:-1] + bytes([body[-1] ^ 1])).decode()
    factory = make_session_factory(engine)
    for value, message in ((tampered, "tampered with"), ("House A", "not encrypted.*init-db")):
        with engine.begin() as c:
            c.execute(text("UPDATE houses SET name = :v"), {"v": value})
        with factory() as s, pytest.raises(FieldDecryptionFailed, match=message):
            s.get(House, house_id)


def test_a_wrong_key_gives_a_clear_error_and_an_old_key_reads(env, engine):
    house_id, _ = add_people(engine)
    current = engine.dialect.aggregator_keyring.current
    other = new_key()
    wrong = engine_for(env, DATA_ENCRYPTION_KEY=other)
    try:
        with make_session_factory(wrong)() as s:
            with pytest.raises(FieldDecryptionFailed) as caught:
                s.get(House, house_id)
        message = str(caught.value)
        assert key_id(current) in message and key_id(base64.b64decode(other)) in message
        assert "DATA_ENCRYPTION_KEY_OLD" in message
        # and the start (migrate) refuses it, naming the key the values need
        with pytest.raises(FieldDecryptionFailed) as caught:
            migrate(wrong)
        message = str(caught.value)
        assert f"1 in houses.name under key id {key_id(current)}" in message
        assert f"1 in users.email under key id {key_id(current)}" in message
        assert f"DATA_ENCRYPTION_KEY is key id {key_id(base64.b64decode(other))}" in message
    finally:
        wrong.dispose()
    # a staged rotation: the new key writes, the old one (listed in DATA_ENCRYPTION_KEY_OLD) still reads
    staged = engine_for(
        env,
        DATA_ENCRYPTION_KEY=other,
        DATA_ENCRYPTION_KEY_OLD=f" {new_key()}, {base64.b64encode(current).decode()}",
    )
    try:
        with make_session_factory(staged)() as s:
            assert s.get(House, house_id).address == ADDRESS
    finally:
        staged.dispose()


def test_a_malformed_data_key_is_refused_at_start(env):
    from dashboard.config import load_settings

    with pytest.raises(ValueError, match="DATA_ENCRYPTION_KEY must be 32 bytes"):
        load_settings(env | {"DATA_ENCRYPTION_KEY": "abc"})
    with pytest.raises(ValueError, match="DATA_ENCRYPTION_KEY_OLD must be 32 bytes"):
        load_settings(env | {"DATA_ENCRYPTION_KEY_OLD": f"{new_key()},short"})


# ---- the API ------------------------------------------------------------------------------------------


@pytest.fixture(params=["postgresql", "sqlite"])
def api(request):
    app = request.getfixturevalue("app" if request.param == "postgresql" else "sqlite_app")
    return app, build_world(app)


def test_the_api_round_trips_and_validates_the_personal_fields(api):
    app, world = api
    client, h = app.server.test_client(), world.headers["admin"]
    engine = app.server.extensions["aggregator"].engine

    r = client.post("/api/v1/houses", json={"name": NAME, "address": ADDRESS}, headers=h)
    assert r.status_code == 201, r.json
    house = r.json
    assert (house["name"], house["address"]) == (NAME, ADDRESS)
    assert client.get(f"/api/v1/houses/{house['id']}", headers=h).json == house
    r = client.post("/api/v1/users", headers=h, json={"username": "eleni", "password": "long-enough-pw",
                                                      "role": "consumer", "full_name": FULL_NAME, "email": EMAIL})  # fmt: skip
    assert r.status_code == 201, r.json
    user = r.json
    assert (user["full_name"], user["email"]) == (FULL_NAME, EMAIL)
    assert user in client.get("/api/v1/users", headers=h).json["users"]
    stored = raw_values(engine)
    assert stored and not [p for p in PLAINTEXTS for v in stored if v and p.lower() in v.lower()]
    # the consumer of a house reads its address too
    r = client.patch(f"/api/v1/houses/{world.house1}", json={"address": "2 Sea Rd"}, headers=h)
    assert r.status_code == 200 and r.json["address"] == "2 Sea Rd"
    mine = client.get("/api/v1/houses", headers=world.headers["consumer"]).json["houses"]
    assert [(x["name"], x["address"]) for x in mine] == [("House A", "2 Sea Rd")]

    bad = [
        ({"email": "not-an-address"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": "two@example.org, more@example.org"}, "email"),
        ({"email": 7}, "email"),
        ({"full_name": "x" * 201}, "full_name"),
        ({"full_name": "   "}, "full_name"),
        ({"full_name": "Eleni\x00"}, "full_name"),
        ({"full_name": "\ud800x"}, "full_name"),
        ({"email": "eleni\u0007@example.org"}, "email"),
    ]
    for body, field in bad:
        r = client.patch(f"/api/v1/users/{user['id']}", json=body, headers=h)
        assert r.status_code == 422 and [names(d) for d in r.json["details"]] == [field], (body, r.json)
    r = client.patch(f"/api/v1/houses/{house['id']}", json={"address": "y" * 256}, headers=h)
    assert r.status_code == 422 and r.json["details"][0]["message"] == "1 to 255 characters"
    for name in ("House\x00", "\udc80"):
        r = client.patch(f"/api/v1/houses/{house['id']}", json={"name": name}, headers=h)
        assert r.status_code == 422 and names(r.json["details"][0]) == "name", r.json
    # nothing changed
    assert client.get(f"/api/v1/users/{user['id']}", headers=h).json == user
    assert client.get(f"/api/v1/houses/{house['id']}", headers=h).json == house
    # the fields may be cleared (null), except the house's name
    r = client.patch(f"/api/v1/users/{user['id']}", json={"email": None, "full_name": None}, headers=h)
    assert r.status_code == 200 and (r.json["email"], r.json["full_name"]) == (None, None)
    assert client.patch(f"/api/v1/houses/{house['id']}", json={"name": None}, headers=h).status_code == 422

    # the data subject's export carries them (GDPR access)
    r = client.patch(f"/api/v1/users/{world.users['consumer']}", json={"email": EMAIL}, headers=h)
    assert r.status_code == 200
    export = client.get("/api/v1/auth/me/export", headers=world.headers["consumer"]).json
    assert export["account"]["email"] == EMAIL and export["account"]["full_name"] is None
    assert [(x["name"], x["address"]) for x in export["houses"]] == [("House A", "2 Sea Rd")]

    spec = client.get("/api/openapi.json").json
    body = spec["paths"]["/api/v1/users"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"type": "string", "format": "email", "maxLength": 254}.items() <= body["properties"][
        "email"
    ].items()
    body = spec["paths"]["/api/v1/houses/{object_id}"]["patch"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["address"]["maxLength"] == 255


# ---- rotate-keys --------------------------------------------------------------------------------------


def test_rotate_keys_re_encrypts_everything_and_the_app_reads_it_with_the_new_key(
    env, tmp_path, monkeypatch, capsys
):
    from app import create_app

    settings_env = env | {"MIN_AGGREGATE_HOUSES": "1"}
    app = create_app(make_settings(tmp_path, **{k: v for k, v in settings_env.items() if k != "DATA_DIR"}))
    world = build_world(app)
    engine = app.server.extensions["aggregator"].engine
    add_people(engine)
    before = raw_values(engine)
    old_id = key_id(engine.dialect.aggregator_keyring.current)

    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    key_file = tmp_path / "new.key"
    key = new_key()
    key_file.write_text(key + "\n")
    cli(["rotate-keys", "--new-key-file", str(key_file)])
    out = capsys.readouterr().out
    assert f"DATA_ENCRYPTION_KEY={key}\n" in out and "houses.name: 3 values re-encrypted" in out
    assert "users.email: 1 values re-encrypted" in out

    after = raw_values(engine)
    new_id = key_id(base64.b64decode(key))
    assert all(v.startswith(f"v1:{new_id}:") for v in after if v), after
    assert len([v for v in after if v]) == len([v for v in before if v]) == 6
    assert not (set(before) & set(after)) - {None}
    # the app restarted with the new key reads every value; the old key alone reads none
    engine.dispose()
    rotated = create_app(make_settings(tmp_path, **{k: v for k, v in settings_env.items() if k != "DATA_DIR"},
                                       DATA_ENCRYPTION_KEY=key))  # fmt: skip
    try:
        client = rotated.server.test_client()
        houses = client.get("/api/v1/houses", headers=world.headers["admin"]).json["houses"]
        assert sorted(h["name"] for h in houses) == sorted(["House A", "House B", NAME])
        users = client.get("/api/v1/users", headers=world.headers["admin"]).json["users"]
        assert [(u["full_name"], u["email"]) for u in users if u["username"] == "eleni"] == [
            (FULL_NAME, EMAIL)
        ]
    finally:
        rotated.server.extensions["aggregator"].engine.dispose()
    stale = engine_for(env)
    try:
        with (
            make_session_factory(stale)() as s,
            pytest.raises(FieldDecryptionFailed, match=f"key id {new_id}"),
        ):
            s.scalars(select(House)).all()
    finally:
        stale.dispose()
    assert old_id != new_id

    # run again by a process that cannot read the new key: it changes nothing and says which key is missing
    with pytest.raises(SystemExit) as exit_:
        cli(["rotate-keys", "--new-key-file", str(key_file)])
    assert (
        f"Nothing changed: The stored personal data cannot be read: 3 in houses.name under key id {new_id}"
        in str(exit_.value.code)
    )
    assert raw_values(engine) == after
    # the staged form (the new key readable as an old one) re-encrypts again, idempotently
    monkeypatch.setenv("DATA_ENCRYPTION_KEY_OLD", key)
    cli(["rotate-keys", "--new-key", key])
    again = raw_values(engine)
    assert all(v.startswith(f"v1:{new_id}:") for v in again if v) and not (set(again) & set(after)) - {None}
    after = again

    # a wrong key file changes nothing and says how to make a key
    key_file.write_text("short")
    with pytest.raises(SystemExit) as exit_:
        cli(["rotate-keys", "--new-key-file", str(key_file)])
    assert "must be 32 bytes" in str(exit_.value.code) and raw_values(engine) == after


# ---- migration 0008 -----------------------------------------------------------------------------------


def test_0008_encrypts_existing_names_in_batches_and_back(env):
    engine = engine_for(env)
    try:
        migrate_to(engine, "0007_privacy")
        names = [f"House {i}, {i} Main St" for i in range(1, 1203)]  # more than two batches of 500
        with engine.begin() as c:
            c.execute(
                text("INSERT INTO houses (name, created_at) VALUES (:n, '2026-01-01 00:00:00')"),
                [{"n": n} for n in names],
            )
            c.execute(text("INSERT INTO devices (serial, name, kind, direction, house_id, created_at) "
                           "VALUES ('M1', 'Meter', 'meter', 'consumption', 1, '2026-01-01 00:00:00')"))  # fmt: skip
        migrate_to(engine, "0008_personal_fields")
        stored = [r[0] for r in rows(engine, "SELECT name FROM houses ORDER BY id")]
        kid = key_id(engine.dialect.aggregator_keyring.current)
        assert len(stored) == len(names) and all(v.startswith(f"v1:{kid}:") for v in stored)
        assert not [v for v in stored if "Main St" in v]
        with make_session_factory(engine)() as s:
            assert s.scalars(select(House.name).order_by(House.id)).all() == names
            assert s.get(House, 1).address is None and s.scalar(select(Device.house_id)) == 1

        migrate_to(engine, "0007_privacy", down=True)
        assert [r[0] for r in rows(engine, "SELECT name FROM houses ORDER BY id")] == names
        assert rows(engine, "SELECT serial, house_id FROM devices") == [("M1", 1)]  # nothing cascaded
        with engine.connect() as c:
            assert "address" not in c.execute(text("SELECT * FROM houses LIMIT 1")).keys()
            assert "email" not in c.execute(text("SELECT * FROM users LIMIT 1")).keys()
        migrate_to(engine, "head")  # and up again
        assert rows(engine, "SELECT count(*) FROM houses WHERE name LIKE 'v1:%'") == [(len(names),)]
    finally:
        engine.dispose()


def names(detail: dict) -> str:
    """The field a 422 detail names: its own, or the one a NUL or lone surrogate was found in (the body is
    refused as a whole before any field is read: dashboard/untrusted.py, "body.<field> contains ...")."""
    if detail["field"] == "body" and detail["message"].startswith("body."):
        return detail["message"][5:].split(" ", 1)[0]
    return detail["field"]
