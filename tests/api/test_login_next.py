"""The login redirect keeps the query string of `next`: a shared link opened while logged out opens the
same view after login. Only same-site relative paths are followed (no open redirect)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.api.test_login_and_tokens import browser_login
from tests.factories import login_form_fields
from tests.ui.helpers import component, router_payload

LINK = "/historical?range=7d&scope=1&bars=hour"


def next_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["next"][0]


def test_login_follows_next_with_its_query_string(client, world):
    r = browser_login(client, LINK)
    assert r.status_code == 303 and r.headers["Location"] == LINK


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example",
        "https://evil.example/historical?range=7d",
        "//evil.example/historical?range=7d",
        "/\\evil.example",
        "/\t/evil.example",
        "historical?range=7d",
        "javascript:alert(1)",
    ],
)
def test_login_refuses_other_sites_as_next(client, world, target):
    r = browser_login(client, target)
    assert r.status_code == 303 and r.headers["Location"] == "/home"  # the consumer's landing page


def test_a_failed_login_goes_back_to_the_form_with_next_intact(client, world):
    data = {"username": "consumer", "password": "nope", "next": LINK} | login_form_fields(client)
    r = client.post("/auth/login", data=data)
    assert r.status_code == 303
    query = parse_qs(urlsplit(r.headers["Location"]).query)
    assert query == {"error": ["401"], "next": [LINK]}  # "&" inside next did not split it


def test_an_anonymous_shared_link_sends_its_query_to_the_login_page(client, world):
    assert client.get("/").status_code == 200
    r = client.post(
        "/_dash-update-component", json=router_payload("/historical", "?range=7d&scope=1&bars=hour")
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    tree = r.json["response"]["_pages_content"]["children"]
    href = component(tree, "login-link")["href"]
    assert urlsplit(href).path == "/login" and next_of(href) == LINK
    # then the form carries it (its hidden field) and the login returns there
    from pages.login import layout

    with client.application.test_request_context(href):
        assert f"value='{LINK}'" in str(layout(next=next_of(href)))
    assert browser_login(client, next_of(href)).headers["Location"] == LINK


def test_an_anonymous_root_keeps_the_plain_login_link(client, world):
    assert client.get("/").status_code == 200
    r = client.post("/_dash-update-component", json=router_payload("/", ""))
    href = component(r.json["response"]["_pages_content"]["children"], "login-link")["href"]
    assert href == "/login?next=/"
