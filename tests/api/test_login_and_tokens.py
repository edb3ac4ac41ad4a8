"""Login, refresh, logout, rate limiting, hashing, API keys, and browser cookies with CSRF."""

from __future__ import annotations

from http.cookies import SimpleCookie

from sqlalchemy import select

from dashboard.schema import ApiKey, User
from tests.factories import PASSWORD, login_form_fields


def login(client, username="consumer", password=PASSWORD):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_login_returns_bearer_tokens(client, world):
    r = login(client)
    assert r.status_code == 200
    assert set(r.json) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert r.json["token_type"] == "bearer" and r.json["expires_in"] == 30 * 60
    me = client.get("/api/v1/auth/me", headers=bearer(r.json["access_token"])).json
    assert me == {"username": "consumer", "role": "consumer", "house_ids": [world.house1]}
    admin = client.get("/api/v1/auth/me", headers=bearer(login(client, "admin").json["access_token"])).json
    assert admin["house_ids"] is None


def test_wrong_password_and_unknown_user_look_the_same(client, world):
    for username, password in (("consumer", "wrong-password"), ("nobody", PASSWORD)):
        r = login(client, username, password)
        assert r.status_code == 401 and r.json["error"] == "Authentication required"
        assert r.json["detail"] == "Wrong username or password"


def test_repeated_failures_are_rate_limited_even_with_the_right_password(client, world):
    for _ in range(5):
        assert login(client, "analyst", "guess-guess").status_code == 401
    r = login(client, "analyst")
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) == 15 * 60
    assert login(client, "consumer").status_code == 200  # other accounts are unaffected


def test_refresh_gives_a_working_access_token_and_needs_a_refresh_token(client, world):
    tokens = login(client).json
    r = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert r.status_code == 200
    assert client.get("/api/v1/auth/me", headers=bearer(r.json["access_token"])).status_code == 200
    assert client.post("/api/v1/auth/refresh", headers=bearer(tokens["access_token"])).status_code == 401


def test_logout_revokes_the_token(client, world):
    token = login(client).json["access_token"]
    assert client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 200
    r = client.get("/api/v1/auth/me", headers=bearer(token))
    assert r.status_code == 401 and "error" in r.json


def test_secrets_are_stored_hashed(client, world, factory):
    with factory() as s:
        assert all(h.startswith("$argon2") for h in s.scalars(select(User.password_hash)))
        keys = s.scalars(select(ApiKey)).all()
    assert all(world.api_key not in (k.key_hash, k.prefix, k.name) for k in keys)


def test_api_key_is_shown_once_and_revocable(client, world):
    created = client.post("/api/v1/api-keys", json={"name": "grid app"}, headers=world.headers["admin"])
    assert created.status_code == 201
    key = created.json["key"]
    assert client.get("/api/v1/communities", headers={"X-API-Key": key}).status_code == 200
    listed = client.get("/api/v1/api-keys", headers=world.headers["admin"]).json["api_keys"]
    assert all("key" not in k for k in listed)
    assert (
        client.delete(f"/api/v1/api-keys/{created.json['id']}", headers=world.headers["admin"]).status_code
        == 204
    )
    assert client.get("/api/v1/communities", headers={"X-API-Key": key}).status_code == 401


def cookies_of(response) -> dict[str, SimpleCookie]:
    jar = {}
    for header in response.headers.getlist("Set-Cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        jar.update({name: morsel for name, morsel in cookie.items()})
    return jar


def browser_login(client, next_url="/"):
    data = {"username": "consumer", "password": PASSWORD, "next": next_url} | login_form_fields(client)
    return client.post("/auth/login", data=data)


def test_browser_login_sets_http_only_cookies_and_redirects(client, world):
    r = browser_login(client, "/historical")
    assert r.status_code == 303 and r.headers["Location"] == "/historical"
    jar = cookies_of(r)
    assert jar["access_token_cookie"]["httponly"] and jar["refresh_token_cookie"]["httponly"]
    assert jar["access_token_cookie"]["samesite"] == "Lax"
    assert not jar["csrf_access_token"]["httponly"]  # the page must read it to echo it


def test_browser_login_refuses_open_redirects(client, world):
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        assert browser_login(client, target).headers["Location"] == "/home"  # the consumer's landing page


def test_wrong_browser_login_goes_back_to_the_form_with_the_reason(client, world):
    r = client.post(
        "/auth/login", data={"username": "consumer", "password": "nope"} | login_form_fields(client)
    )
    assert r.status_code == 303 and r.headers["Location"].startswith("/login?error=401")


def test_third_party_browser_login_is_refused_as_api_only_and_logs_nothing_in(client, world):
    data = {"username": "partner", "password": PASSWORD, "next": "/historical"} | login_form_fields(client)
    r = client.post("/auth/login", data=data)
    assert r.status_code == 303 and r.headers["Location"].startswith("/login?error=api-only")
    assert not {"access_token_cookie", "refresh_token_cookie"} & set(cookies_of(r))
    assert client.get("/api/v1/auth/me").status_code == 401
    from pages.login import layout

    with client.application.test_request_context(r.headers["Location"]):  # the login page says why
        assert "API-only account" in str(layout(error="api-only"))
    # the same password through the API still works: the account itself is fine
    assert login(client, "partner").status_code == 200


def test_cookie_requests_need_the_csrf_header_for_writes(client, world):
    jar = cookies_of(browser_login(client))
    csrf = jar["csrf_access_token"].value
    item = {"device_id": "H1-MAIN", "timestamp": "2026-01-01T00:00:00Z", "power_w": 1, "energy_wh": 1}
    assert client.post("/api/v1/measurements", json={"measurements": [item]}).status_code == 401
    ok = client.post("/api/v1/measurements", json={"measurements": [item]}, headers={"X-CSRF-TOKEN": csrf})
    assert ok.status_code == 200
    assert client.get("/api/v1/auth/me").status_code == 200  # reads need no CSRF header


def test_browser_logout_clears_cookies_and_revokes(client, world):
    browser_login(client)
    assert client.get("/api/v1/auth/me").status_code == 200
    old = client.get_cookie("access_token_cookie").value
    csrf = client.get_cookie("csrf_refresh_token").value
    r = client.post("/auth/logout", data={"csrf_token": csrf})
    assert r.status_code == 303 and r.headers["Location"] == "/login"
    assert client.get("/api/v1/auth/me").status_code == 401
    client.set_cookie("access_token_cookie", old)  # replaying the old cookie does not work either
    assert client.get("/api/v1/auth/me").status_code == 401


def test_access_log_records_who_called_what(client, world):
    login(client)
    client.get("/api/v1/energy", headers=world.headers["api_key"], query_string={"resolution": "hour",
               "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"})  # fmt: skip
    entries = client.get("/api/v1/access-log", headers=world.headers["admin"]).json["entries"]
    energy = next(e for e in entries if e["route"] == "/api/v1/energy")
    assert energy["api_key_id"] is not None and energy["status"] == 200 and energy["latency_ms"] > 0
    assert any(e["route"] == "/api/v1/auth/login" and e["method"] == "POST" for e in entries)


def test_failed_logins_are_kept_a_day(client, world, factory):
    """A failed login records the username and the client's address (personal data): pruned after a day,
    far past the throttle's 15-minute window, which still counts the recent ones."""
    from datetime import timedelta

    from dashboard.clock import utcnow
    from dashboard.maintenance import prune_logs
    from dashboard.schema import LoginFailure

    r = client.post("/api/v1/auth/login", json={"username": "ghost", "password": "wrong-password"})
    assert r.status_code == 401
    with factory() as s:
        s.add_all(LoginFailure(username="ghost", client="198.51.100.7", at=utcnow() - timedelta(hours=h))
                  for h in (25, 48))  # fmt: skip
        s.commit()
        assert prune_logs(s, 90)["login_failures"] == 2
        s.commit()
        left = s.scalars(select(LoginFailure.client).where(LoginFailure.username == "ghost")).all()
    assert len(left) == 1 and left[0] != "198.51.100.7"  # the fresh failure stays for the throttle


def test_access_log_rows_past_retention_are_pruned(client, world, factory):
    from datetime import timedelta

    from dashboard.clock import utcnow
    from dashboard.maintenance import prune_access_log
    from dashboard.schema import ApiAccessLog

    with factory() as s:
        s.add_all(
            ApiAccessLog(
                at=utcnow() - timedelta(days=age), method="GET", route="/x", status=200, latency_ms=1.0
            )
            for age in (91, 120, 89, 1)
        )
        s.commit()
        assert prune_access_log(s, 90) == 2
        s.commit()
        ages = sorted(
            (utcnow() - at).days
            for at in s.scalars(select(ApiAccessLog.at).where(ApiAccessLog.route == "/x"))
        )
    assert ages == [1, 89]
