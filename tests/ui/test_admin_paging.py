"""The Admin page's houses and devices tables a page at a time (callbacks/admin_houses.py), through Dash's
real endpoint on PostgreSQL: the pages together hold every row once, in natural order; another device
choice starts at its first page; a junk page number is page 1; other roles get a refusal and no rows."""

from __future__ import annotations

import pytest

from callbacks.admin_houses import PAGE_ROWS
from dashboard.clock import utcnow
from dashboard.schema import Device, House
from pages.admin import pager, tab_store
from tests.ui.helpers import callback_payload, cookie_login

EXTRA = PAGE_ROWS + 7  # houses (each with a meter) beyond the world's two


@pytest.fixture
def many(client, world, factory):
    with factory() as s:
        for n in range(1, EXTRA + 1):
            house = House(name=f"Paged {n}", created_at=utcnow())
            s.add(house)
            s.flush()
            s.add(Device(serial=f"PAGED-{n}", name="Meter", kind="meter", direction="consumption",
                         house_id=house.id, created_at=utcnow()))  # fmt: skip
        s.commit()
    assert client.get("/").status_code == 200
    return client


def houses_page(page):
    return callback_payload(
        [("admin-houses-table", "children"), (pager("houses"), "max_value"), (pager("houses"), "class_name")],
        [(tab_store("houses"), "data", "houses"), (pager("houses"), "active_page", page)],
    )


def devices_page(page, choice="all", triggered=None):
    outputs = [("admin-devices-table", "children")]
    outputs += [(pager("devices"), p) for p in ("max_value", "class_name", "active_page")]
    inputs = [(tab_store("houses"), "data", "houses"), ("admin-devices-house", "value", choice),
              (pager("devices"), "active_page", page)]  # fmt: skip
    return callback_payload(outputs, inputs, triggered=triggered or f"{pager('devices')}.active_page")


def call(client, payload, csrf):
    r = client.post("/_dash-update-component", json=payload, headers=csrf)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return r.json["response"]


def cells(node, column: int) -> list[str]:
    """One column of the table's body rows in the callback's answer."""
    table = node[0]
    body = next(c for c in table["props"]["children"] if c["type"] == "Tbody")
    return [str(tr["props"]["children"][column]["props"]["children"]) for tr in body["props"]["children"]]


def note(node) -> str:
    return node[1]["props"]["children"] if node[1] else ""


def test_houses_a_page_at_a_time_every_house_once_in_natural_order(many, world):
    csrf = cookie_login(many, "admin")
    first, second = (call(many, houses_page(p), csrf) for p in (1, 2))
    total = EXTRA + 2
    assert first[pager("houses")] == {"max_value": 2, "class_name": "mt-2"}
    names = cells(first["admin-houses-table"]["children"], 1) + cells(
        second["admin-houses-table"]["children"], 1
    )
    assert len(names) == total and len(cells(first["admin-houses-table"]["children"], 1)) == PAGE_ROWS
    assert [n for n in names if n.startswith("Paged")] == [f"Paged {n}" for n in range(1, EXTRA + 1)]
    assert note(first["admin-houses-table"]["children"]) == f"Houses 1-{PAGE_ROWS} of {total}"
    assert note(second["admin-houses-table"]["children"]) == f"Houses {PAGE_ROWS + 1}-{total} of {total}"
    for junk in (None, 0, -3, "2", True):  # page 1, never an error
        assert call(many, houses_page(junk), csrf)["admin-houses-table"] == first["admin-houses-table"]


def test_devices_pages_and_another_choice_starts_at_its_first_page(many, world):
    csrf = cookie_login(many, "admin")
    total = EXTRA + 5  # the world's five devices
    pages = [call(many, devices_page(p), csrf) for p in (1, 2)]
    serials = [s for page in pages for s in cells(page["admin-devices-table"]["children"], 0)]
    assert len(serials) == len(set(serials)) == total
    assert pages[1][pager("devices")] == {"max_value": 2, "class_name": "mt-2", "active_page": 2}
    one = call(many, devices_page(2, str(world.house2), triggered="admin-devices-house.value"), csrf)
    assert one[pager("devices")] == {"max_value": 1, "class_name": "d-none", "active_page": 1}
    assert cells(one["admin-devices-table"]["children"], 0) == ["H2-MAIN"]
    assert note(one["admin-devices-table"]["children"]) == ""


@pytest.mark.parametrize("username", ["analyst", "consumer"])
def test_other_roles_get_no_page_of_houses_or_devices(many, username):
    csrf = cookie_login(many, username)
    for payload, table in ((houses_page(2), "admin-houses-table"), (devices_page(2), "admin-devices-table")):
        answer = call(many, payload, csrf)
        text = str(answer)
        assert "Not allowed" in text and "Paged" not in text and "PAGED" not in text
        assert answer[pager(table.split("-")[1])]["class_name"] == "d-none"
