"""The Dash shell in a real browser: Playwright driving Debian's chromium against `python app.py`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.conftest import TEST_SECRET
from tests.factories import PASSWORD
from tests.ui.browser_helpers import shot

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def live_server(pg_url, tmp_path_factory, pg_app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tmp_path_factory.mktemp("live")
    env = os.environ | {"DATABASE_URL": pg_url, "DATA_DIR": str(data), "DEMO_DATA": "0", "PORT": str(port),
                        "SECRET_KEY": TEST_SECRET}  # fmt: skip
    log = (data / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if requests.get(base + "/healthz", timeout=2).ok:
                break
        except requests.RequestException:
            time.sleep(0.25)
    else:
        proc.kill()
        raise AssertionError((data / "server.log").read_text()[-3000:])
    yield base
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def page(browser, live_server, world, client):
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    items = [{"device_id": "H1-MAIN", "timestamp": (now + timedelta(minutes=15 * i)).isoformat(), "power_w": 2000,
              "energy_wh": 500} for i in range(4)]  # fmt: skip
    client.post("/api/v1/measurements", json={"measurements": items}, headers=world.headers["admin"])
    context = browser.new_context(base_url=live_server)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()


def log_in(page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.fill("#login-username", username)
    page.fill("#login-password", password)
    page.click("#login-submit")


def test_consumer_logs_in_and_sees_their_totals_from_a_callback(page):
    log_in(page, "consumer")
    page.wait_for_url("**/")
    # "-" until the callback answers: a number proves callbacks pass the JWT cookie + CSRF checks
    page.wait_for_function("document.querySelector('#overview-demand')?.innerText === '2.0'", timeout=15000)
    assert page.inner_text("#overview-production") == "0.0"
    assert "consumer (consumer)" in page.inner_text("#overview-who")
    assert page.is_visible("#nav-overview") and not page.is_visible("#nav-api-docs")
    shot(page, "overview-consumer")
    assert page.errors == []


def test_analyst_navigation_includes_api_docs(page):
    log_in(page, "analyst")
    page.wait_for_selector("#nav-api-docs")
    page.wait_for_function("document.querySelector('#overview-demand')?.innerText !== '-'", timeout=15000)
    shot(page, "overview-analyst")
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
