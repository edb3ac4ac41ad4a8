"""Sessions and credentials (issue 13, section 2), against the real PostgreSQL app.

A login is a session whose access and refresh tokens die together at logout; a password, role or
activation change ends every session of the user; cookies live as long as their tokens; logout is a POST;
the login form refuses cross-site posts; the login throttle counts per (username, client) with each
client itself behind a trusted proxy; the last admin stays an admin.
"""

from __future__ import annotations

import time
from http.cookies import SimpleCookie

import pytest
from flask_jwt_extended import decode_token

from tests.factories import PASSWORD, login_form_fields

ADMIN_PASSWORD = "admin-password-long"


def login(client, username="consumer", password=PASSWORD, **kwargs):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password}, **kwargs)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def works(client, tokens) -> tuple[int, int]:
    """(status of /auth/me with the access token, status of /auth/refresh with the refresh token)."""
    me = client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code
    refreshed = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).status_code
    return me, refreshed


def set_cookies(response) -> dict:
    jar = {}
    for header in response.headers.getlist("Set-Cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        jar.update(dict(cookie.items()))
    return jar


def browser_login(client, username="consumer", password=PASSWORD):
    data = {"username": username, "password": password, "next": "/"} | login_form_fields(client)
    return client.post("/auth/login", data=data)


# ---- logout ends the session ---------------------------------------------------------------------------


def test_api_logout_ends_the_refresh_token_too_even_when_not_sent(client, world):
    tokens = login(client).json
    assert works(client, tokens) == (200, 200)
    assert client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"])).status_code == 200
    assert works(client, tokens) == (401, 401)
    r = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert r.json["error"] == "Authentication required"


def test_api_logout_with_the_refresh_token_revokes_a_refresh_token_of_another_session(client, world):
    first, second = login(client).json, login(client).json
    r = client.post(
        "/api/v1/auth/logout",
        json={"refresh_token": second["refresh_token"]},
        headers=bearer(first["access_token"]),
    )
    assert r.status_code == 200
    assert works(client, first) == (401, 401)
    assert client.post("/api/v1/auth/refresh", headers=bearer(second["refresh_token"])).status_code == 401
    # someone else's refresh token cannot be revoked through one's own logout
    mine, theirs = login(client).json, login(client, "analyst").json
    r = client.post(
        "/api/v1/auth/logout",
        json={"refresh_token": theirs["refresh_token"]},
        headers=bearer(mine["access_token"]),
    )
    assert r.status_code == 422 and r.json["details"][0]["field"] == "refresh_token"
    assert works(client, theirs) == (200, 200)


def test_logout_by_a_refreshed_access_token_ends_the_whole_session(client, world):
    tokens = login(client).json
    fresh = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).json["access_token"]
    assert client.post("/api/v1/auth/logout", headers=bearer(fresh)).status_code == 200
    assert works(client, tokens) == (401, 401)
    other = login(client).json  # other sessions of the same user live on
    assert works(client, other) == (200, 200)


# ---- changes to the account end every session -----------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [{"password": "a-new-password"}, {"role": "analyst"}, {"is_active": False}],
    ids=["password", "role", "deactivation"],
)
def test_account_changes_end_every_session_of_the_user(client, world, change):
    sessions = [login(client).json, login(client).json]
    bystander = login(client, "consumer2").json
    r = client.patch(f"/api/v1/users/{world.users['consumer']}", json=change, headers=world.headers["admin"])
    assert r.status_code == 200, r.json
    for tokens in sessions:
        assert works(client, tokens) == (401, 401)
    assert works(client, bystander) == (200, 200)
    if "password" in change:
        assert works(client, login(client, password="a-new-password").json) == (200, 200)


def test_admin_page_deactivation_ends_sessions(client, world, factory):
    from dashboard.admin_queries import set_user_active

    tokens = login(client, "analyst").json
    with factory() as s:
        set_user_active(s, world.users["admin"], world.users["analyst"], False)
    assert works(client, tokens) == (401, 401)


# ---- browser: cookies, logout, login CSRF ----------------------------------------------------------------


def test_cookie_max_age_equals_token_lifetime(client, world):
    r = browser_login(client)
    assert r.status_code == 303
    jar = set_cookies(r)
    assert int(jar["access_token_cookie"]["max-age"]) in range(30 * 60 - 5, 30 * 60 + 1)
    assert int(jar["refresh_token_cookie"]["max-age"]) in range(7 * 86400 - 5, 7 * 86400 + 1)
    with client.application.app_context():
        access = decode_token(jar["access_token_cookie"].value)
        refresh = decode_token(jar["refresh_token_cookie"].value)
    assert access["sid"] == refresh["sid"] and abs(access["sexp"] - refresh["exp"]) <= 1


def test_browser_logout_is_post_only_and_revokes_both_cookies(client, world):
    browser_login(client)
    access = client.get_cookie("access_token_cookie").value
    refresh = client.get_cookie("refresh_token_cookie").value
    assert client.get("/auth/logout").status_code == 405
    assert client.get("/api/v1/auth/me").status_code == 200  # the GET logged nobody out
    # a POST without the form's CSRF value (another site's form) does not log out either
    assert client.post("/auth/logout").status_code == 303
    assert client.get("/api/v1/auth/me").status_code == 200
    r = client.post("/auth/logout", data={"csrf_token": client.get_cookie("csrf_refresh_token").value})
    assert r.status_code == 303 and r.headers["Location"] == "/login"
    assert client.get("/api/v1/auth/me").status_code == 401
    assert works(client, {"access_token": access, "refresh_token": refresh}) == (401, 401)


def test_navbar_logout_is_a_post_form_with_the_csrf_value(client, world):
    browser_login(client)
    r = client.get("/_dash-layout")
    assert r.status_code == 200
    text = str(r.json)
    assert "'action': '/auth/logout'" in text and "'method': 'POST'" in text
    assert client.get_cookie("csrf_refresh_token").value in text
    assert "'href': '/auth/logout'" not in text


def test_login_form_refuses_cross_site_posts(client, world):
    data = {"username": "consumer", "password": PASSWORD, "next": "/"}
    # no form token and no nonce cookie: what a form on another site sends
    r = client.post("/auth/login", data=data)
    assert r.status_code == 303 and r.headers["Location"].startswith("/login?error=403")
    assert "access_token_cookie" not in set_cookies(r)
    # a valid token, but posted from another origin
    fields = login_form_fields(client)
    for header in (
        {"Origin": "https://evil.example"},
        {"Referer": "https://evil.example/x"},
        {"Origin": "null"},
    ):
        r = client.post("/auth/login", data=data | fields, headers=header)
        assert r.headers["Location"].startswith("/login?error=403"), header
        assert "access_token_cookie" not in set_cookies(r)
    # a token made for another browser's nonce
    client.set_cookie("login_nonce", "another-browser")
    r = client.post("/auth/login", data=data | fields)
    assert r.headers["Location"].startswith("/login?error=403")
    # the real form, from this site
    fields = login_form_fields(client)
    r = client.post("/auth/login", data=data | fields, headers={"Origin": "http://localhost"})
    assert r.status_code == 303 and r.headers["Location"] == "/home"  # a consumer lands on the household view
    assert "access_token_cookie" in set_cookies(r)


def test_login_page_gives_the_form_token_and_its_nonce_cookie(client, world):
    from tests.ui.helpers import router_payload

    r = client.post("/_dash-update-component", json=router_payload("/login"))
    assert r.status_code == 200
    assert client.get_cookie("login_nonce") is not None
    set_cookie = r.headers["Set-Cookie"].lower()
    assert "samesite=strict" in set_cookie and "httponly" in set_cookie
    token = _find_by_name(r.json["response"]["_pages_content"]["children"], "csrf_token")
    assert token
    data = {"username": "consumer", "password": PASSWORD, "next": "/", "csrf_token": token}
    r = client.post("/auth/login", data=data)
    assert r.status_code == 303 and r.headers["Location"] == "/home"
    # the same page again keeps the browser's nonce (an open second tab's form stays valid)
    again = client.post("/_dash-update-component", json=router_payload("/login"))
    assert _find_by_name(again.json["response"]["_pages_content"]["children"], "csrf_token") == token


def _find_by_name(node, name):
    if isinstance(node, list):
        return next((v for v in (_find_by_name(n, name) for n in node) if v), None)
    if isinstance(node, dict):
        props = node.get("props", {})
        if props.get("name") == name:
            return props.get("value")
        return _find_by_name(props.get("children"), name)
    return None


def test_reminted_access_cookie_never_outlives_the_session(client, world, factory):
    """A stolen access cookie re-minted in its second half stops at the refresh token's expiry, and not
    at all without the session's refresh cookie."""
    from datetime import timedelta

    from flask_jwt_extended import create_access_token, create_refresh_token

    app = client.application
    with app.app_context():
        end = int(time.time()) + 120  # the session ends in 2 minutes
        claims = {"gen": 0, "sid": "s-" + str(end), "sexp": end}
        access = create_access_token(str(world.users["consumer"]), additional_claims=claims,
                                     expires_delta=timedelta(minutes=10))  # fmt: skip
        refresh = create_refresh_token(str(world.users["consumer"]), additional_claims=claims,
                                       expires_delta=timedelta(seconds=120))  # fmt: skip
    client.set_cookie("access_token_cookie", access)
    r = client.get("/api/v1/auth/me")  # in its second half, but no refresh cookie: not re-minted
    assert r.status_code == 200 and "access_token_cookie" not in set_cookies(r)
    client.set_cookie("refresh_token_cookie", refresh)
    r = client.get("/api/v1/auth/me")
    jar = set_cookies(r)
    assert "access_token_cookie" in jar
    with app.app_context():
        new = decode_token(jar["access_token_cookie"].value)
    assert new["exp"] <= end and int(jar["access_token_cookie"]["max-age"]) <= 120
    assert new["sid"] == claims["sid"]


# ---- login throttling per (username, client), behind a trusted proxy -------------------------------------


@pytest.fixture(scope="module")
def proxied_app(pg_url, tmp_path_factory):
    from app import create_app
    from tests.conftest import make_settings

    app = create_app(
        make_settings(tmp_path_factory.mktemp("proxied"), DATABASE_URL=pg_url, TRUSTED_PROXIES="1")
    )
    yield app
    app.server.extensions["aggregator"].engine.dispose()


def test_throttling_behind_a_proxy_locks_only_the_guessing_client(proxied_app, app, world):
    client = proxied_app.server.test_client()

    def attempt(address, username, password):
        return login(client, username, password, headers={"X-Forwarded-For": address})

    attacker, victim_client, neighbour = "203.0.113.9", "198.51.100.7", "198.51.100.8"
    for _ in range(5):
        assert attempt(attacker, "consumer", "guess-guess").status_code == 401
    r = attempt(attacker, "consumer", PASSWORD)  # this client, this username: locked, even when right
    assert r.status_code == 429 and int(r.headers["Retry-After"]) == 15 * 60
    assert attempt(victim_client, "consumer", PASSWORD).status_code == 200  # the user elsewhere: fine
    # many failures over many usernames (probe 3.11: 20 used to lock out every user of the address)
    for i in range(20):
        assert attempt(attacker, f"user{i}", "guess-guess").status_code == 401
    for username in ("analyst", "consumer2", "admin"):  # never-failed users, even from the same client
        assert attempt(attacker, username, PASSWORD).status_code == 200
        assert attempt(neighbour, username, PASSWORD).status_code == 200
    r = attempt(attacker, "user0", "guess-guess")
    assert r.status_code == 401  # one failure on user0 so far: not locked
    # an IPv6 client is counted by its /64, so rotating addresses inside it does not help
    for i in range(5):
        assert attempt(f"2001:db8:1:2::{i + 1}", "analyst", "guess-guess").status_code == 401
    assert attempt("2001:db8:1:2::ff", "analyst", PASSWORD).status_code == 429
    assert attempt("2001:db8:1:3::1", "analyst", PASSWORD).status_code == 200


def test_without_trusted_proxies_forwarded_for_is_ignored(client, world):
    for i in range(5):
        r = login(client, "analyst", "guess-guess", headers={"X-Forwarded-For": f"192.0.2.{i}"})
        assert r.status_code == 401
    # every attempt came from the same real address, whatever the header claimed
    assert login(client, "analyst", PASSWORD, headers={"X-Forwarded-For": "192.0.2.99"}).status_code == 429


# ---- the last admin, admin passwords ----------------------------------------------------------------------


def test_the_last_admin_cannot_be_demoted_deactivated_or_deleted(client, world):
    admin, url = world.headers["admin"], f"/api/v1/users/{world.users['admin']}"
    for change in ({"role": "analyst"}, {"is_active": False}):
        r = client.patch(url, json=change, headers=admin)
        assert r.status_code == 409 and "last active admin" in r.json["detail"], r.json
    r = client.delete(url, headers=admin)
    assert r.status_code == 409 and "last active admin" in r.json["detail"]
    me = client.get(url, headers=admin).json
    assert (me["role"], me["is_active"]) == ("admin", True)
    # with a second admin, the first may step down
    second = client.post("/api/v1/users", json={"username": "admin2", "password": ADMIN_PASSWORD, "role": "admin"},
                         headers=admin)  # fmt: skip
    assert second.status_code == 201
    assert client.patch(url, json={"role": "analyst"}, headers=admin).status_code == 200
    admin2 = bearer(login(client, "admin2", ADMIN_PASSWORD).json["access_token"])
    r = client.patch(f"/api/v1/users/{second.json['id']}", json={"is_active": False}, headers=admin2)
    assert r.status_code == 409


def test_admin_page_refuses_to_deactivate_the_last_admin(client, world, factory):
    from dashboard.admin_queries import set_user_active
    from dashboard.errors import Conflict

    with factory() as s:
        second = client.post("/api/v1/users", json={"username": "admin2", "password": ADMIN_PASSWORD, "role": "admin"},
                             headers=world.headers["admin"]).json["id"]  # fmt: skip
        set_user_active(s, world.users["admin"], second, False)  # another admin remains: fine
    with factory() as s:
        with pytest.raises(Conflict, match="last active admin"):
            set_user_active(s, second, world.users["admin"], False)


def test_admin_passwords_need_twelve_characters(client, world):
    admin = world.headers["admin"]
    r = client.post("/api/v1/users", json={"username": "boss", "password": "aaaaaaaa", "role": "admin"},
                    headers=admin)  # fmt: skip
    assert r.status_code == 422 and "12" in r.json["details"][0]["message"]
    r = client.post("/api/v1/users", json={"username": "clerk", "password": "aaaaaaaa", "role": "analyst"},
                    headers=admin)  # fmt: skip
    assert r.status_code == 201  # others keep the 8-character rule
    url = f"/api/v1/users/{r.json['id']}"
    r = client.patch(url, json={"role": "admin", "password": "short-pass"}, headers=admin)
    assert r.status_code == 422 and "12" in r.json["details"][0]["message"]
    assert (
        client.patch(url, json={"role": "admin", "password": "long-enough-pass"}, headers=admin).status_code
        == 200
    )
