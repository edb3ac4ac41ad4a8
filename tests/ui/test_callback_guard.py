"""Forged requests straight to Dash's callback endpoint: the server decides, never the browser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.ui.helpers import cookie_login, router_payload

OVERVIEW_OUTPUTS = ["overview-demand", "overview-production", "overview-net"]


def overview_payload(outputs=None):
    outputs = outputs or [(o, "children") for o in OVERVIEW_OUTPUTS]
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": [{"id": "overview-refresh", "property": "n_intervals", "value": 1}],
        "changedPropIds": ["overview-refresh.n_intervals"],
        "state": [],
    }


@pytest.fixture
def ui(client, world):
    """Readings in the last 24 h for both houses (house B uses much more), and Dash warmed up."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    items = [
        {"device_id": d, "timestamp": now.isoformat(), "power_w": 4 * wh, "energy_wh": wh}
        for d, wh in (("H1-MAIN", 1000.0), ("H2-MAIN", 9000.0))
    ]
    assert (
        client.post(
            "/api/v1/measurements", json={"measurements": items}, headers=world.headers["admin"]
        ).status_code
        == 200
    )
    assert client.get("/").status_code == 200
    return client


def values(response) -> list[str]:
    body = response.json["response"]
    return [body[o]["children"] for o in OVERVIEW_OUTPUTS]


def test_anonymous_callback_is_refused_without_data(ui):
    r = ui.post("/_dash-update-component", json=overview_payload())
    assert r.status_code == 401
    assert "1.0" not in r.get_data(as_text=True) and "9.0" not in r.get_data(as_text=True)


def test_consumer_callback_totals_cover_only_their_house(ui, world):
    csrf = cookie_login(ui, "consumer")
    r = ui.post("/_dash-update-component", json=overview_payload(), headers=csrf)
    assert r.status_code == 200
    assert values(r) == ["1.0", "0.0", "1.0"]  # house A's 1 kWh, never house B's 9 kWh


def test_analyst_sees_all_houses(ui, world):
    csrf = cookie_login(ui, "analyst")
    r = ui.post("/_dash-update-component", json=overview_payload(), headers=csrf)
    assert values(r) == ["10.0", "0.0", "10.0"]


def test_cookie_without_csrf_header_is_refused(ui, world):
    cookie_login(ui, "analyst")
    assert ui.post("/_dash-update-component", json=overview_payload()).status_code == 401


def test_third_party_user_has_no_ui(ui, world):
    csrf = cookie_login(ui, "partner")
    assert ui.post("/_dash-update-component", json=overview_payload(), headers=csrf).status_code == 401


def test_anonymous_page_router_gets_the_login_prompt_not_the_page(ui):
    r = ui.post("/_dash-update-component", json=router_payload("/"))
    assert r.status_code == 200
    text = r.get_data(as_text=True)
    assert "Please log in" in text and "overview-demand" not in text


def test_router_outputs_cannot_smuggle_another_output(ui):
    smuggled = overview_payload([("overview-demand", "children"), ("_pages_content", "children")])
    assert ui.post("/_dash-update-component", json=smuggled).status_code == 401


def test_logged_in_router_renders_the_page_for_allowed_roles_only(ui, world):
    csrf = cookie_login(ui, "consumer")
    page = ui.post("/_dash-update-component", json=router_payload("/"), headers=csrf).get_data(as_text=True)
    assert "overview-demand" in page and "consumer (consumer)" in page


def test_malformed_callback_body_gets_a_clear_400(ui):
    r = ui.post("/_dash-update-component", data="{not json", content_type="application/json")
    assert r.status_code == 400 and r.json["error"] == "Invalid or missing input"
    assert ui.get("/healthz").status_code == 200
