"""`python -m dashboard create-api-key --role gateway --house ID ...` against the real PostgreSQL, as an
operator would run it: the key is printed once and writes its houses' readings; wrong flags are one clear
error each, exit code 2, and no key is made."""

from __future__ import annotations

from sqlalchemy import func, select

from dashboard.schema import ApiKey, api_key_houses
from tests.integration.test_cli import cli


def keys(factory) -> list[tuple]:
    with factory() as s:
        rows = s.execute(select(ApiKey.name, ApiKey.role).order_by(ApiKey.id)).all()
        links = s.scalar(select(func.count()).select_from(api_key_houses))
    return [tuple(r) for r in rows] + [("links", links)]


def test_create_a_gateway_key_for_two_houses(world, pg_url, tmp_path, factory, client):
    out = cli(pg_url, tmp_path, "create-api-key", "--name", "site gw", "--role", "gateway",
              "--house", str(world.house2), "--house", str(world.house1))  # fmt: skip
    lines = out.stdout.strip().splitlines()
    both = sorted([world.house1, world.house2])
    assert (
        lines[0].startswith("gateway API key ") and f"'site gw' for houses {both[0]}, {both[1]} " in lines[0]
    )
    key = lines[-1]
    assert key.startswith("agk_") and key not in out.stderr
    with factory() as s:
        row = s.scalar(select(ApiKey).where(ApiKey.name == "site gw"))
        assert row.role == "gateway" and row.key_hash != key and key.startswith(row.prefix)
        linked = sorted(
            s.scalars(select(api_key_houses.c.house_id).where(api_key_houses.c.api_key_id == row.id))
        )
    assert linked == both
    me = client.get("/api/v1/auth/me", headers={"X-API-Key": key}).json
    assert (me["role"], me["house_ids"]) == ("gateway", both)
    reading = {"device_id": "H2-MAIN", "timestamp": "2026-11-02T00:00:00+00:00", "power_w": 10.0}
    r = client.post("/api/v1/measurements", json={"measurements": [reading]}, headers={"X-API-Key": key})
    assert r.status_code == 200 and r.json["accepted"] == 1
    assert client.get("/api/v1/houses", headers={"X-API-Key": key}).status_code == 403  # reads nothing


def test_the_default_role_is_third_party(world, pg_url, tmp_path, factory):
    out = cli(pg_url, tmp_path, "create-api-key", "--name", "grid app")
    assert out.stdout.startswith("third_party API key ") and "for houses" not in out.stdout
    assert keys(factory)[-2] == ("grid app", "third_party")


def test_wrong_flags_are_clear_errors_and_make_no_key(world, pg_url, tmp_path, factory):
    before = keys(factory)
    cases = [
        (["--role", "gateway"], "a gateway key needs at least one house id"),
        (["--house", str(world.house1)], "a third_party key reads aggregates and takes no houses"),
        (["--role", "gateway", "--house", str(world.house1), "--house", "987654"], "no house 987654"),
        (["--role", "admin", "--house", str(world.house1)], "invalid choice: 'admin'"),
        (["--role", "gateway", "--house", "one"], "invalid int value: 'one'"),
    ]
    for flags, words in cases:
        result = cli(pg_url, tmp_path, "create-api-key", "--name", "gw", *flags, check=False)
        assert result.returncode == 2, (flags, result.stdout, result.stderr)
        assert words in result.stderr, (flags, result.stderr)
        assert "agk_" not in result.stdout and "Traceback" not in result.stderr
    assert keys(factory) == before
