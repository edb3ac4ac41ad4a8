"""A small, fully known world for API tests: two houses, a community with a PV park, every role."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from flask_jwt_extended import create_access_token

from dashboard.auth import create_api_key, create_user
from dashboard.clock import utcnow
from dashboard.schema import PV, Community, Device, House, PVPark

PASSWORD = "correct-horse-battery"


def login_form_fields(client) -> dict:
    """The login form's hidden CSRF field for this test client, as the login page makes it
    (dashboard/auth.py login_form_token): a nonce cookie, and its HMAC under the app's login-form key."""
    nonce = client.get_cookie("login_nonce")
    nonce = nonce.value if nonce else secrets.token_urlsafe(24)
    client.set_cookie("login_nonce", nonce)
    token = hmac.new(client.application.config["LOGIN_FORM_KEY"], nonce.encode(), hashlib.sha256).hexdigest()
    return {"csrf_token": token}


@dataclass
class World:
    house1: int
    house2: int
    community: int
    park: int
    users: dict[str, int] = field(default_factory=dict)
    headers: dict[str, dict] = field(default_factory=dict)  # role name -> request headers
    api_key: str = ""


def build_world(app) -> World:
    services = app.server.extensions["aggregator"]
    now = utcnow()
    with services.session_factory() as s:
        h1, h2 = House(name="House A", created_at=now), House(name="House B", created_at=now)
        community = Community(name="Solar Street", created_at=now)
        community.houses.append(h1)
        s.add_all([h1, h2, community])
        s.flush()
        park = PVPark(name="Park 1", capacity_kw=250.0, community_id=community.id, created_at=now)
        pv = PV(house=h1, name="Roof", capacity_kwp=5.0, created_at=now)
        s.add_all([park, pv])
        s.flush()
        s.add_all(
            [
                Device(serial="H1-MAIN", name="Main meter", kind="meter", direction="consumption",
                       house_id=h1.id, created_at=now),
                Device(serial="H1-PV", name="Inverter", kind="pv", direction="production",
                       house_id=h1.id, pv_id=pv.id, created_at=now),
                Device(serial="H1-EV", name="EV charger", kind="appliance", direction="consumption",
                       house_id=h1.id, created_at=now),
                Device(serial="H2-MAIN", name="Main meter", kind="meter", direction="consumption",
                       house_id=h2.id, created_at=now),
                Device(serial="PARK-INV", name="Park inverter", kind="pv", direction="production",
                       pv_park_id=park.id, created_at=now),
            ]
        )  # fmt: skip
        world = World(house1=h1.id, house2=h2.id, community=community.id, park=park.id)
        for name, role, houses in [
            ("admin", "admin", []),
            ("analyst", "analyst", []),
            ("consumer", "consumer", [h1.id]),
            ("consumer2", "consumer", [h2.id]),
            ("partner", "third_party", []),
        ]:
            world.users[name] = create_user(s, name, PASSWORD, role, houses).id
        _row, world.api_key = create_api_key(s, "test app")
        s.commit()
    with app.server.app_context():
        for name, user_id in world.users.items():
            token = create_access_token(identity=str(user_id))
            world.headers[name] = {"Authorization": f"Bearer {token}"}
    world.headers["api_key"] = {"X-API-Key": world.api_key}
    world.headers["anonymous"] = {}
    return world
