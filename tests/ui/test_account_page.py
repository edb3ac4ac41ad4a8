"""My account through Dash's real endpoint, on PostgreSQL: changing one's own password (the current one
checked and throttled, the role's rule, typed twice) ends every other session of the user while this
browser gets a new session in fresh cookies; "log out my other sessions" does the same without a new
password; anonymous callers are refused by the callback guard."""

from __future__ import annotations

from sqlalchemy import select

from dashboard.schema import User
from tests.factories import PASSWORD
from tests.ui.helpers import cookie_login, router_payload

OUTPUTS = [
    ("account-message", "children"),
    ("account-message", "color"),
    ("account-message", "is_open"),
    ("account-location", "href"),
    ("account-current", "value"),
    ("account-new", "value"),
    ("account-repeat", "value"),
]
NEW_PASSWORD = "a-brand-new-passphrase"


def action(button="account-change", current=PASSWORD, new=NEW_PASSWORD, repeat=None):
    repeat = new if repeat is None else repeat
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in OUTPUTS) + "..",
        "outputs": [{"id": i, "property": p} for i, p in OUTPUTS],
        "inputs": [
            {
                "id": "account-change",
                "property": "n_clicks",
                "value": 1 if button == "account-change" else None,
            },
            {
                "id": "account-logout-others",
                "property": "n_clicks",
                "value": 1 if button == "account-logout-others" else None,
            },
        ],  # fmt: skip
        "changedPropIds": [f"{button}.n_clicks"],
        "state": [
            {"id": "account-current", "property": "value", "value": current},
            {"id": "account-new", "property": "value", "value": new},
            {"id": "account-repeat", "property": "value", "value": repeat},
        ],
    }


def post(client, payload, headers):
    return client.post("/_dash-update-component", json=payload, headers=headers)


def response_of(r) -> dict:
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return r.json["response"]


def bearer(client, username, password=PASSWORD) -> dict:
    r = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.json
    return {"Authorization": f"Bearer {r.json['access_token']}"}


def me(client, headers) -> int:
    return client.get("/api/v1/auth/me", headers=headers).status_code


def password_hash(factory, username) -> str:
    with factory() as s:
        return s.scalar(select(User.password_hash).where(User.username == username))


def cookie(client, name) -> str:
    return client.get_cookie(name).value


def test_the_page_shows_the_users_own_name_and_the_rule_of_their_role(app, world):
    for username, least in (("consumer", "8"), ("admin", "12")):
        client = app.server.test_client()
        headers = cookie_login(client, username)
        r = client.post("/_dash-update-component", json=router_payload("/account"), headers=headers)
        text = r.get_data(as_text=True)
        assert "Logged in as " in text and username in text
        assert f"At least {least} characters" in text


def test_a_password_change_ends_every_other_session_and_keeps_this_browser(app, client, world, factory):
    other_browser = app.server.test_client()
    cookie_login(other_browser, "consumer")
    api_session = bearer(app.server.test_client(), "consumer")
    headers = cookie_login(client, "consumer")
    old_access = cookie(client, "access_token_cookie")
    assert me(other_browser, {}) == 200 and me(client, api_session) == 200

    out = response_of(post(client, action(), headers))
    assert out["account-message"]["color"] == "success"
    assert out["account-location"]["href"] == "/account?done=password"
    assert out["account-current"]["value"] == "" and out["account-new"]["value"] == ""

    # everyone else holding a token of the user is out: another browser, an API session, the old cookie
    assert me(other_browser, {}) == 401
    assert me(client, api_session) == 401
    assert me(app.server.test_client(), {"Authorization": f"Bearer {old_access}"}) == 401
    # this browser was given a new session in fresh cookies, and goes on working
    assert cookie(client, "access_token_cookie") != old_access
    assert me(client, {}) == 200
    new_headers = {"X-CSRF-TOKEN": cookie(client, "csrf_access_token")}
    r = client.post("/_dash-update-component", json=router_payload("/account"), headers=new_headers)
    assert "Logged in as" in r.get_data(as_text=True)
    # the new password logs in, the old one no longer does
    fresh = app.server.test_client()
    assert (
        fresh.post("/api/v1/auth/login", json={"username": "consumer", "password": PASSWORD}).status_code
        == 401
    )
    assert me(fresh, bearer(fresh, "consumer", NEW_PASSWORD)) == 200


def test_a_wrong_current_password_changes_nothing(app, client, world, factory):
    api_session = bearer(app.server.test_client(), "consumer")
    headers = cookie_login(client, "consumer")
    before = password_hash(factory, "consumer")
    r = post(client, action(current="not-my-password"), headers)
    out = response_of(r)
    assert out["account-message"]["color"] == "danger"
    assert "current password is wrong" in out["account-message"]["children"]
    assert "account-location" not in out
    assert "access_token_cookie" not in r.headers.get("Set-Cookie", "")
    assert password_hash(factory, "consumer") == before
    assert me(client, api_session) == 200 and me(client, {}) == 200


def test_the_new_password_follows_the_rule_of_the_role_and_is_typed_twice(app, client, world, factory):
    headers = cookie_login(client, "admin")
    before = password_hash(factory, "admin")
    cases = [
        (action(new="eleven-char"), "at least 12 characters for an admin"),  # 11 characters: fine for others
        (action(new="twelve-chars-ok", repeat="twelve-chars-ko"), "the two entries differ"),
        (action(new=PASSWORD), "must differ from the current one"),
        (action(new=None, repeat=None), "the two entries differ"),
    ]
    for payload, expected in cases:
        out = response_of(post(client, payload, headers))
        assert out["account-message"]["color"] == "danger"
        assert expected in out["account-message"]["children"], out["account-message"]["children"]
        assert password_hash(factory, "admin") == before
    assert me(client, {}) == 200
    # a consumer's 8 characters are enough
    consumer = app.server.test_client()
    out = response_of(post(consumer, action(new="eight-ch"), cookie_login(consumer, "consumer")))
    assert out["account-message"]["color"] == "success"


def test_wrong_current_passwords_are_throttled_like_logins(app, client, world, factory):
    headers = cookie_login(client, "consumer")
    before = password_hash(factory, "consumer")
    for _ in range(5):
        out = response_of(post(client, action(current="guess"), headers))
        assert "current password is wrong" in out["account-message"]["children"]
    out = response_of(post(client, action(), headers))  # even the right password now waits
    assert "Too many wrong current passwords" in out["account-message"]["children"]
    assert password_hash(factory, "consumer") == before and me(client, {}) == 200
    # one count with the login form's: this client cannot switch to guessing at the login either
    r = app.server.test_client().post(
        "/api/v1/auth/login", json={"username": "consumer", "password": PASSWORD}
    )
    assert r.status_code == 429


def test_log_out_other_sessions_keeps_only_this_browser(app, client, world):
    other_browser = app.server.test_client()
    cookie_login(other_browser, "analyst")
    api_session = bearer(app.server.test_client(), "analyst")
    headers = cookie_login(client, "analyst")
    out = response_of(post(client, action("account-logout-others", current=None, new=None), headers))
    assert out["account-location"]["href"] == "/account?done=sessions"
    assert me(other_browser, {}) == 401 and me(client, api_session) == 401
    assert me(client, {}) == 200
    fresh = app.server.test_client()
    assert me(fresh, bearer(fresh, "analyst")) == 200  # the password is unchanged


def test_anonymous_and_logged_out_callers_are_refused(app, client, world, factory):
    before = password_hash(factory, "consumer")
    r = post(client, action(current=PASSWORD), {})
    assert r.status_code == 401
    headers = cookie_login(client, "consumer")
    csrf = cookie(client, "csrf_refresh_token")
    assert client.post("/auth/logout", data={"csrf_token": csrf}).status_code == 303
    client.set_cookie("csrf_access_token", headers["X-CSRF-TOKEN"])
    assert post(client, action(), headers).status_code == 401
    assert password_hash(factory, "consumer") == before
