"""The Dash shell in a real browser: login, navigation by role and logout, on the demo server
(tests/browser/conftest.py; its own database, so the API tests' table truncation never races a live server)."""

from __future__ import annotations

import pytest
import requests

from tests.browser.helpers import shot
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def log_in(page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.fill("#login-username", username)
    page.fill("#login-password", password)
    page.click("#login-submit")


def api_me(base: str, username: str) -> dict:
    """Who the API says the user is (a JWT login over HTTP)."""
    token = requests.post(f"{base}/api/v1/auth/login", json={"username": username, "password": PASSWORD},
                          timeout=10).json()["access_token"]  # fmt: skip
    me = requests.get(f"{base}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return me.json()


@pytest.fixture
def page(browser, demo_server):
    context = browser.new_context(base_url=demo_server)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()


def test_consumer_logs_in_and_sees_their_totals_from_a_callback(page, demo_server):
    log_in(page, "consumer")
    page.wait_for_url("**/home")  # a consumer's landing page: their household
    page.goto("/")
    # "-" until the callback answers: a number proves callbacks pass the JWT cookie + CSRF checks
    # a function, not an expression: a string expression is eval'd, which the app's CSP refuses
    page.wait_for_function("() => document.querySelector('#overview-demand')?.innerText.match(/^[0-9.,]+$/)",
                           timeout=15000)  # fmt: skip
    assert float(page.inner_text("#overview-demand").replace(",", "")) > 0
    assert "consumer (consumer)" in page.inner_text("#overview-who")
    assert api_me(demo_server, "consumer")["role"] == "consumer"
    assert page.is_visible("#nav-overview") and not page.is_visible("#nav-api-docs")
    assert not page.is_visible("#nav-admin")
    shot(page, "overview-consumer-login")
    assert page.errors == []


def test_analyst_navigation_includes_api_docs(page):
    log_in(page, "analyst")
    page.wait_for_selector("#nav-api-docs")
    assert not page.is_visible("#nav-admin")
    page.wait_for_function(
        "() => document.querySelector('#overview-demand')?.innerText !== '-'", timeout=15000
    )
    shot(page, "overview-analyst-login")
    assert page.errors == []


def test_wrong_password_shows_the_reason(page):
    log_in(page, "consumer", "not-the-password")
    page.wait_for_selector("#login-error")
    assert "Wrong username or password" in page.inner_text("#login-error")
    shot(page, "login-error")


def test_logout_returns_to_login_and_pages_need_login_again(page):
    log_in(page, "consumer")
    page.wait_for_selector("#nav-logout")
    page.click("#nav-logout")
    page.wait_for_url("**/login")
    page.wait_for_selector("#login-username")
    shot(page, "login")
    page.goto("/")
    page.wait_for_url("**/login?next=/")  # the page guard sends anonymous visitors to the form
    page.wait_for_selector("#login-username")
    assert page.errors == []
