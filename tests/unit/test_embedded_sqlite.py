"""The embedded default (SQLite file in DATA_DIR) runs the same code paths as PostgreSQL."""

from dashboard.auth import create_user
from dashboard.clock import utcnow
from dashboard.schema import Device, House


def test_login_ingest_and_read_on_the_embedded_database(sqlite_app, tmp_path):
    services = sqlite_app.server.extensions["aggregator"]
    assert services.settings.database_url.startswith("sqlite:///")
    assert (tmp_path / "aggregator.db").exists()
    with services.session_factory() as s:
        house = House(name="h", created_at=utcnow())
        s.add(house)
        s.flush()
        s.add(
            Device(
                serial="M",
                name="m",
                kind="meter",
                direction="consumption",
                house_id=house.id,
                created_at=utcnow(),
            )
        )
        create_user(s, "root", "password1234", "admin")
        s.commit()
    client = sqlite_app.server.test_client()
    token = client.post("/api/v1/auth/login", json={"username": "root", "password": "password1234"}).json[
        "access_token"
    ]
    headers = {"Authorization": f"Bearer {token}"}
    items = [
        {"device_id": "M", "timestamp": f"2026-01-01T00:{m:02d}:00Z", "power_w": 400, "energy_wh": 100}
        for m in (0, 15, 30, 45)
    ]
    assert client.post("/api/v1/measurements", json={"measurements": items}, headers=headers).json == {
        "accepted": 4,
        "duplicates": 0,
    }
    assert client.post("/api/v1/measurements", json={"measurements": items}, headers=headers).json == {
        "accepted": 0,
        "duplicates": 4,
    }
    r = client.get(
        "/api/v1/energy",
        query_string={"resolution": "hour", "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
        headers=headers,
    )
    assert r.json["series"] == [
        {"timestamp": "2026-01-01T00:00:00Z", "consumption_kwh": 0.4, "production_kwh": 0.0, "net_kwh": 0.4}
    ]


def test_grid_metering_and_a_new_inverter_on_the_embedded_database(sqlite_app):
    """An export meter alone (production = export), then an inverter added through the API: the house's hour
    is folded again (load = import + PV - export), on SQLite as on PostgreSQL."""
    services = sqlite_app.server.extensions["aggregator"]
    with services.session_factory() as s:
        house = House(name="g", created_at=utcnow())
        s.add(house)
        s.flush()
        house_id = house.id
        for serial, direction in (("IMP", "consumption"), ("EXP", "production")):
            s.add(Device(serial=serial, name=serial, kind="meter", direction=direction, house_id=house.id,
                         created_at=utcnow()))  # fmt: skip
        create_user(s, "root", "password1234", "admin")
        s.commit()
    client = sqlite_app.server.test_client()
    login = {"username": "root", "password": "password1234"}
    headers = {
        "Authorization": f"Bearer {client.post('/api/v1/auth/login', json=login).json['access_token']}"
    }

    def post(serial, wh):
        items = [{"device_id": serial, "timestamp": f"2026-01-01T00:{m:02d}:00Z", "power_w": 4 * wh,
                  "energy_wh": wh} for m in (0, 15, 30, 45)]  # fmt: skip
        assert (
            client.post("/api/v1/measurements", json={"measurements": items}, headers=headers).status_code
            == 200
        )

    def hour():
        params = {"resolution": "hour", "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z",
                  "house_id": house_id}  # fmt: skip
        (row,) = client.get("/api/v1/energy", query_string=params, headers=headers).json["series"]
        return row["consumption_kwh"], row["production_kwh"]

    post("IMP", 100)
    post("EXP", 50)
    assert hour() == (0.4, 0.2)
    body = {
        "serial": "INV",
        "name": "inverter",
        "kind": "pv",
        "direction": "production",
        "house_id": house_id,
    }
    assert client.post("/api/v1/devices", json=body, headers=headers).status_code == 201
    assert hour() == (0.2, 0.0)  # the export now counts against the load; no PV reading yet
    post("INV", 150)
    assert hour() == (0.8, 0.6)  # load = 0.4 + 0.6 - 0.2
