"""Sessions on My account and in the Admin page, through Dash's real endpoint on PostgreSQL: a user sees
their own sessions only (device in plain words, "This browser" marked, an End button for each other one),
ends one (that browser is logged out at its next request), cannot end another user's (a forged id is "no
such session"), and after "log out my other sessions" the list shows this browser alone. An admin sees and
ends another user's sessions on the Admin page; a consumer cannot reach that callback."""

from __future__ import annotations

import json

from callbacks.admin_accounts import NOT_ALLOWED as ADMIN_NOT_ALLOWED
from pages._admin_resources import ACC_END, ACC_SESSIONS, ACC_SESSIONS_MESSAGE, ACCOUNTS_TAB, USER
from pages.account import END, SESSIONS, SESSIONS_MESSAGE
from pages.admin import tab_store
from tests.ui.helpers import component, cookie_login, router_payload
from tests.ui.test_account_page import action, post, response_of

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
SAFARI_PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)
OUTPUTS = [(SESSIONS_MESSAGE, "children"), (SESSIONS_MESSAGE, "color"), (SESSIONS_MESSAGE, "is_open"),
           (SESSIONS, "children")]  # fmt: skip
ADMIN_OUTPUTS = [(ACC_SESSIONS_MESSAGE, "children"), (ACC_SESSIONS_MESSAGE, "color"),
                 (ACC_SESSIONS_MESSAGE, "is_open"), (ACC_SESSIONS, "children")]  # fmt: skip


def browser(app, username: str, agent: str):
    """A test client that logs in through the login form as a browser with this User-Agent."""
    client = app.server.test_client()
    client.environ_base["HTTP_USER_AGENT"] = agent
    return client, cookie_login(client, username)


def _key(component_id: dict) -> str:
    return json.dumps(component_id, sort_keys=True, separators=(",", ":"))


def _outputs(outputs) -> dict:
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
    }


def end_payload(session_id: str) -> dict:
    button = {"type": END, "index": session_id}
    return _outputs(OUTPUTS) | {
        "inputs": [[{"id": button, "property": "n_clicks", "value": 1}]],
        "changedPropIds": [f"{_key(button)}.n_clicks"],
        "state": [],
    }


def admin_payload(user_id, end: str | None = None) -> dict:
    buttons = [{"id": {"type": ACC_END, "index": end}, "property": "n_clicks", "value": 1}] if end else []
    changed = f"{_key(buttons[0]['id'])}.n_clicks" if end else f"{USER}.value"
    return _outputs(ADMIN_OUTPUTS) | {
        "inputs": [
            {"id": tab_store(ACCOUNTS_TAB), "property": "data", "value": ACCOUNTS_TAB},
            {"id": USER, "property": "value", "value": user_id},
            buttons,
        ],
        "changedPropIds": [changed],
        "state": [],
    }


def sessions_shown(client, headers) -> str:
    """The sessions list of the /account page as the router draws it (its JSON text)."""
    r = client.post("/_dash-update-component", json=router_payload("/account"), headers=headers)
    assert r.status_code == 200
    listing = component(r.json["response"]["_pages_content"]["children"], SESSIONS)
    assert listing is not None
    return json.dumps(listing)


def end_buttons(text: str, button_type: str = END) -> list[str]:
    """The session ids of the End buttons in a drawn list."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            ident = node.get("id")
            if isinstance(ident, dict) and ident.get("type") == button_type:
                found.append(ident["index"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(text))
    return found


def me(client) -> int:
    return client.get("/api/v1/auth/me").status_code


def test_the_page_lists_the_users_own_sessions_with_this_browser_marked(app, world):
    laptop, laptop_headers = browser(app, "consumer", CHROME)
    phone, _ = browser(app, "consumer", SAFARI_PHONE)
    browser(app, "analyst", FIREFOX)  # someone else's session: never on the consumer's page
    text = sessions_shown(laptop, laptop_headers)
    assert "Chrome on Linux" in text and "Safari on iOS" in text and "Firefox" not in text
    assert text.count("This browser") == 1
    assert "Signed in " in text and "active now" in text
    assert len(end_buttons(text)) == 1  # the phone's; this browser logs out with the navbar's Log out
    assert me(phone) == 200


def test_ending_a_session_logs_that_browser_out_at_its_next_request(app, world):
    laptop, headers = browser(app, "consumer", CHROME)
    phone, phone_headers = browser(app, "consumer", SAFARI_PHONE)
    [phone_id] = end_buttons(sessions_shown(laptop, headers))
    out = response_of(post(laptop, end_payload(phone_id), headers))
    assert out[SESSIONS_MESSAGE]["color"] == "success"
    assert "Safari on iOS" in out[SESSIONS_MESSAGE]["children"]
    redrawn = json.dumps(out[SESSIONS]["children"])
    assert "Safari on iOS" not in redrawn and "This browser" in redrawn
    # the phone is out: its next page load asks for a login, its callbacks are refused
    assert me(phone) == 401
    r = phone.post("/_dash-update-component", json=router_payload("/account"), headers=phone_headers)
    assert "Please log in" in r.get_data(as_text=True)
    assert me(laptop) == 200


def test_a_user_cannot_end_another_users_session_by_its_id(app, world):
    analyst, analyst_headers = browser(app, "analyst", FIREFOX)
    assert end_buttons(sessions_shown(analyst, analyst_headers)) == []  # this browser alone: no End button
    browser(app, "analyst", CHROME)
    [their_other] = end_buttons(sessions_shown(analyst, analyst_headers))
    consumer, headers = browser(app, "consumer", CHROME)
    for forged in (their_other, "f" * 32, None, 7):
        out = response_of(post(consumer, end_payload(forged), headers))
        assert out[SESSIONS_MESSAGE]["color"] == "warning"
        assert "No such session" in out[SESSIONS_MESSAGE]["children"]
    assert end_buttons(sessions_shown(analyst, analyst_headers)) == [their_other]  # still there, still works


def test_logging_out_other_sessions_leaves_this_browser_alone_on_the_list(app, world):
    laptop, headers = browser(app, "analyst", CHROME)
    browser(app, "analyst", SAFARI_PHONE)
    browser(app, "analyst", FIREFOX)
    assert len(end_buttons(sessions_shown(laptop, headers))) == 2
    out = response_of(post(laptop, action("account-logout-others", current=None, new=None), headers))
    assert out["account-location"]["href"] == "/account?done=sessions"
    fresh = {"X-CSRF-TOKEN": laptop.get_cookie("csrf_access_token").value}
    text = sessions_shown(laptop, fresh)
    assert end_buttons(text) == [] and text.count("This browser") == 1 and "Chrome on Linux" in text


def test_anonymous_callers_cannot_end_sessions(app, world):
    laptop, headers = browser(app, "consumer", CHROME)
    browser(app, "consumer", FIREFOX)
    [other] = end_buttons(sessions_shown(laptop, headers))
    anonymous = app.server.test_client()
    assert anonymous.post("/_dash-update-component", json=end_payload(other)).status_code == 401
    assert len(end_buttons(sessions_shown(laptop, headers))) == 1


def test_an_admin_sees_and_ends_another_users_sessions_on_the_admin_page(app, world):
    admin, admin_headers = browser(app, "admin", CHROME)
    phone, _ = browser(app, "consumer", SAFARI_PHONE)
    out = response_of(post(admin, admin_payload(world.users["consumer"]), admin_headers))
    [phone_id] = end_buttons(json.dumps(out[ACC_SESSIONS]["children"]), ACC_END)
    assert "Safari on iOS" in json.dumps(out[ACC_SESSIONS]["children"])
    out = response_of(post(admin, admin_payload(world.users["consumer"], end=phone_id), admin_headers))
    assert (
        out[ACC_SESSIONS_MESSAGE]["color"] == "success"
        and "consumer" in out[ACC_SESSIONS_MESSAGE]["children"]
    )
    assert me(phone) == 401 and me(admin) == 200
    # a session id of another user than the one chosen is "no such session" there too
    browser(app, "analyst", FIREFOX)
    analyst_list = response_of(post(admin, admin_payload(world.users["analyst"]), admin_headers))
    [analyst_id] = end_buttons(json.dumps(analyst_list[ACC_SESSIONS]["children"]), ACC_END)
    out = response_of(post(admin, admin_payload(world.users["consumer"], end=analyst_id), admin_headers))
    assert "No such session" in out[ACC_SESSIONS_MESSAGE]["children"]


def test_a_consumer_cannot_list_or_end_sessions_through_the_admin_callback(app, world):
    analyst, analyst_headers = browser(app, "analyst", FIREFOX)
    browser(app, "analyst", CHROME)
    [target] = end_buttons(sessions_shown(analyst, analyst_headers))
    consumer, headers = browser(app, "consumer", CHROME)
    for payload in (admin_payload(world.users["analyst"]), admin_payload(world.users["analyst"], end=target)):
        out = response_of(post(consumer, payload, headers))
        assert out[ACC_SESSIONS_MESSAGE]["children"] == ADMIN_NOT_ALLOWED
        assert "Chrome" not in json.dumps(out[ACC_SESSIONS]["children"])
    assert end_buttons(sessions_shown(analyst, analyst_headers)) == [target]
