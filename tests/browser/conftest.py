"""Browser fixtures: a demo-seeded PostgreSQL database, the real server (`python app.py`, embedded jobs
and object store, the live simulator on) and Debian's chromium driven by Playwright.

Every browser test module shares one server and one browser for the session. Demo users keep their
usernames (admin, analyst, consumer, prosumer, partner) but get the known test password.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from tests.conftest import TEST_SECRET, fresh_pg_database, make_settings
from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run"]  # fmt: skip
DEMO_HOUSES = 6
DEMO_DAYS = 30  # enough for the forecasters (they need 15 days) and the 7-day/30-day views


@pytest.fixture(scope="session")
def demo_db_url(tmp_path_factory):
    """PostgreSQL seeded with the demo generator: DEMO_HOUSES houses x DEMO_DAYS days up to now."""
    from dashboard.auth import hash_password
    from dashboard.db import make_engine, make_session_factory, migrate
    from dashboard.schema import User
    from dashboard.seed import seed_demo

    with fresh_pg_database("aggui") as url:
        settings = make_settings(tmp_path_factory.mktemp("demo-seed"), DATABASE_URL=url)
        engine = make_engine(settings)
        migrate(engine)
        factory = make_session_factory(engine)
        seed_demo(factory, settings.timezone, houses=DEMO_HOUSES, days=DEMO_DAYS, progress=False)
        with factory() as session:
            for user in session.scalars(select(User)):
                user.password_hash = hash_password(PASSWORD)
            session.commit()
        engine.dispose()
        yield url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env_extra: dict, data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = os.environ | {"DATA_DIR": str(data_dir), "PORT": str(port), "SECRET_KEY": TEST_SECRET} | env_extra
    env.pop("REDIS_URL", None)  # the embedded defaults: in-process jobs, local object store
    env.pop("S3_ENDPOINT", None)
    log = (data_dir / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        if proc.poll() is not None:
            break
        try:
            if requests.get(base + "/healthz", timeout=2).ok:
                return proc, base
        except requests.RequestException:
            time.sleep(0.25)
    proc.kill()
    raise AssertionError((data_dir / "server.log").read_text()[-3000:])


@pytest.fixture(scope="session")
def demo_server(demo_db_url, tmp_path_factory):
    """`python app.py` on the demo database with the live simulator posting every 5 s."""
    data = tmp_path_factory.mktemp("demo-server")
    proc, base = start_server(
        {"DATABASE_URL": demo_db_url, "DEMO_DATA": "1", "SIMULATOR_INTERVAL_S": "5"}, data
    )
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian chromium is missing: `make test` installs it (apt-get install chromium chromium-driver)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def open_as(browser, demo_server):
    """open_as("analyst") -> a Playwright page logged in on the demo server; `page.errors` collects
    console errors and uncaught exceptions (tests assert it stays empty)."""
    contexts = []

    def _open(username: str, path: str = "/"):
        context = browser.new_context(
            base_url=demo_server, accept_downloads=True, viewport={"width": 1400, "height": 1000}
        )
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.goto("/login")
        page.fill("#login-username", username)
        page.fill("#login-password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_selector("#nav-logout")
        if not page.url.endswith(path):  # consumers land on /home
            page.goto(path)
            page.wait_for_selector("#nav-logout")
        return page

    yield _open
    for context in contexts:
        context.close()
