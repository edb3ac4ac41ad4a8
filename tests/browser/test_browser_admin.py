"""The Admin page in real chromium on the demo-seeded PostgreSQL server: every tab's table has rows, an
API key is created, shown once, works and is revoked, a model version is activated (rollback), and an
analyst gets "Not allowed" and no Admin link."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
import requests
from sqlalchemy import create_engine, delete, select
from sqlalchemy.orm import Session

from dashboard.clock import utcnow
from dashboard.schema import ModelRun, ModelVersion
from tests.browser.helpers import shot

pytestmark = pytest.mark.browser
MARK = f"browser-admin-{uuid.uuid4().hex[:6]}"
# A slot no other test trains (horizon 7, SARIMA recursive), so these rows cannot change other pages.
SLOT = dict(target="production", product="short-term", horizon=7, scope_kind="all", scope_id=None,
            model="sarima", strategy="recursive")  # fmt: skip


@pytest.fixture
def admin_rows(demo_db_url):
    """Two versions of one slot (the newer active) and two runs in the demo database; removed afterwards."""
    engine = create_engine(demo_db_url)
    now = utcnow()
    with Session(engine) as s:
        for name, hours, active in (("old", 30, False), ("new", 3, True)):
            s.add(ModelVersion(version=f"{MARK}-{name}", object_key=f"models/{MARK}/{name}.bin",
                               trained_at=now - timedelta(hours=hours), is_active=active,
                               metrics_json=json.dumps({"mae": 0.2, "mape": 0.15}), **SLOT))  # fmt: skip
        s.add(ModelRun(kind="train", at=now - timedelta(minutes=5), outcome="ok", duration_ms=4200.0,
                       parameters_json=json.dumps({"target": "production", "product": "short-term"}),
                       model_version=f"{MARK}-new"))  # fmt: skip
        s.add(ModelRun(kind="forecast", at=now - timedelta(minutes=1), outcome="failed", duration_ms=80.0,
                       parameters_json="{}", error=f"{MARK}: no model", model_version=None))  # fmt: skip
        s.commit()
    yield engine
    with Session(engine) as s:
        s.execute(delete(ModelVersion).where(ModelVersion.version.like(f"{MARK}%")))
        s.execute(delete(ModelRun).where(ModelRun.model_version.like(f"{MARK}%")))
        s.execute(delete(ModelRun).where(ModelRun.error.like(f"{MARK}%")))
        s.commit()
    engine.dispose()


def rows(page, table_id: str) -> list[str]:
    page.wait_for_selector(f"#{table_id} tbody tr")
    return page.locator(f"#{table_id} tbody tr").all_inner_texts()


def open_tab(page, label: str) -> None:
    page.get_by_role("tab", name=label).click()


def test_admin_tabs_keys_and_model_activation(open_as, demo_server, admin_rows):
    page = open_as("admin", "/admin")
    users = rows(page, "admin-users-rows")
    assert {u.split("\t")[0] for u in users} >= {"admin", "analyst", "consumer", "prosumer", "partner"}
    shot(page, "admin-users")

    open_tab(page, "Houses and devices")
    assert len(rows(page, "admin-houses-rows")) == 6
    devices = rows(page, "admin-devices-rows")
    assert len(devices) >= 6 and any("meter" in d and "\t20" in d for d in devices)  # a last reading time
    shot(page, "admin-houses")

    open_tab(page, "API keys")
    assert any(r.startswith("demo third-party app") for r in rows(page, "admin-keys-rows"))
    name = f"{MARK} app"
    page.fill("#admin-key-name", name)
    page.click("#admin-key-create")
    key = page.locator("#admin-key-secret").inner_text(timeout=10_000).strip()
    assert key.startswith("agk_")
    page.wait_for_selector(f"#admin-keys-rows tr:has-text('{name}')")
    shot(page, "admin-keys-created")
    me = requests.get(f"{demo_server}/api/v1/auth/me", headers={"X-API-Key": key}, timeout=10)
    assert me.status_code == 200 and me.json()["role"] == "third_party"
    page.locator(f"#admin-keys-rows tr:has-text('{name}')").get_by_role("button", name="Revoke").click()
    page.wait_for_selector("#admin-keys-message:has-text('revoked')")
    assert (
        requests.get(f"{demo_server}/api/v1/auth/me", headers={"X-API-Key": key}, timeout=10).status_code
        == 401
    )
    page.reload()
    open_tab(page, "API keys")
    rows(page, "admin-keys-rows")
    assert key not in page.content()  # shown once: never again

    open_tab(page, "Models")
    old = page.locator(f"#admin-models-rows tr:has-text('{MARK}-old')")
    old.get_by_role("button", name="Activate").click()
    page.wait_for_selector(f"#admin-models-message:has-text('{MARK}-old')")
    page.wait_for_selector(f"#admin-models-rows tr:has-text('{MARK}-new') button:has-text('Activate')")
    with Session(admin_rows) as s:
        flags = dict(s.execute(select(ModelVersion.version, ModelVersion.is_active)
                               .where(ModelVersion.version.like(f"{MARK}%"))).all())  # fmt: skip
    assert flags == {f"{MARK}-old": True, f"{MARK}-new": False}
    shot(page, "admin-models")

    open_tab(page, "Jobs")
    jobs = rows(page, "admin-jobs-rows")
    assert jobs[0].startswith("forecast") and f"{MARK}: no model" in jobs[0]  # newest first
    assert any(f"{MARK}-new" in j and "4.20 s" in j for j in jobs)
    shot(page, "admin-jobs")
    assert page.errors == []


def record_callbacks(page) -> list[str]:
    """The first output of every Dash callback request the page sends from now on."""
    sent: list[str] = []
    page.on("request", lambda r: sent.append((r.post_data_json or {}).get("output", "?").strip(".").split("...")[0])
            if "/_dash-update-component" in r.url else None)  # fmt: skip
    return sent


def test_showing_a_tab_runs_its_callbacks_only_and_again_each_time(open_as, admin_rows):
    """A tab's tables are computed when it is shown, by its own callbacks alone (not one request per tab
    of the page), and again each time it is shown: a run added meanwhile appears."""
    page = open_as("admin", "/admin")
    rows(page, "admin-users-rows")
    sent = record_callbacks(page)
    open_tab(page, "Houses and devices")
    rows(page, "admin-houses-rows")
    rows(page, "admin-devices-rows")
    page.wait_for_timeout(1500)  # any other tab's callback would have been sent with these
    assert sorted(sent) == ["admin-devices-table.children", "admin-houses-table.children"]

    open_tab(page, "Jobs")
    assert not any(f"{MARK}-again" in j for j in rows(page, "admin-jobs-rows"))
    with Session(admin_rows) as s:
        s.add(ModelRun(kind="forecast", at=utcnow(), outcome="failed", duration_ms=5.0, parameters_json="{}",
                       error=f"{MARK}-again: shown again", model_version=None))  # fmt: skip
        s.commit()
    open_tab(page, "Users")
    rows(page, "admin-users-rows")
    open_tab(page, "Jobs")
    page.wait_for_selector(f"#admin-jobs-rows tr:has-text('{MARK}-again')")
    assert sent.count("admin-jobs-table.children") == 2 and sent.count("admin-users-table.children") == 1
    assert page.errors == []


def test_analyst_has_no_admin_page(open_as):
    page = open_as("analyst", "/admin")
    page.wait_for_selector("#forbidden")
    assert "Not allowed" in page.inner_text("#forbidden")
    assert page.locator("#nav-admin").count() == 0 and page.locator("#admin-tabs").count() == 0
    shot(page, "admin-forbidden-analyst")
    assert page.errors == []
