"""Helpers for the callback-level UI tests: forged Dash requests and cookie logins."""

from __future__ import annotations

from tests.factories import PASSWORD, login_form_fields


def router_payload(pathname="/", search=""):
    return {
        "output": ".._pages_content.children..._pages_store.data..",
        "outputs": [
            {"id": "_pages_content", "property": "children"},
            {"id": "_pages_store", "property": "data"},
        ],
        "inputs": [
            {"id": "_pages_location", "property": "pathname", "value": pathname},
            {"id": "_pages_location", "property": "search", "value": search},
        ],
        "changedPropIds": ["_pages_location.pathname"],
        "state": [],
    }


def component(node, component_id: str) -> dict | None:
    """The props of the component with this id in a layout from the page router's response, else None."""
    if isinstance(node, list):
        return next((c for c in (component(n, component_id) for n in node) if c), None)
    if isinstance(node, dict):
        props = node.get("props", {})
        if props.get("id") == component_id:
            return props
        return component(props.get("children"), component_id)
    return None


def cookie_login(client, username):
    data = {"username": username, "password": PASSWORD, "next": "/"} | login_form_fields(client)
    r = client.post("/auth/login", data=data)
    assert r.status_code == 303
    if r.headers["Location"].startswith("/login?error=api-only"):
        return api_token_as_cookie(client, username)
    return {"X-CSRF-TOKEN": client.get_cookie("csrf_access_token").value}


def api_token_as_cookie(client, username):
    """The login form gives an API-only (third-party) account no cookies. To prove the callback guard
    still refuses such an account's session, carry its API access token as a browser's cookie."""
    from flask_jwt_extended import decode_token

    r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200
    token = r.json["access_token"]
    with client.application.app_context():
        csrf = decode_token(token)["csrf"]
    client.set_cookie("access_token_cookie", token)
    client.set_cookie("csrf_access_token", csrf)
    return {"X-CSRF-TOKEN": csrf}


def callback_payload(outputs, inputs, states=(), triggered=None):
    """A forged Dash callback request: outputs [(id, prop)], inputs and states [(id, prop, value)];
    `triggered` names the input that changed ("id.prop", default the first)."""
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + ".."
        if len(outputs) > 1
        else f"{outputs[0][0]}.{outputs[0][1]}",
        "outputs": [{"id": i, "property": p} for i, p in outputs]
        if len(outputs) > 1
        else {"id": outputs[0][0], "property": outputs[0][1]},
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "changedPropIds": [triggered or f"{inputs[0][0]}.{inputs[0][1]}"],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in states],
    }


def url_sync_payload(app, prefix: str, controls: list, search: str | None = None) -> dict:
    """A request to a page's URL callback (callbacks/common.py `sync_url`) as the browser sends it:
    `controls` are the values of the page's URL_FIELDS in order; with `search`, the browser went back or
    forward to that query string (its Location's search changed), else a control changed."""
    key = next(k for k in app.callback_map if k.startswith(f"..{prefix}-url.search..."))
    outputs = [part.rsplit(".", 1) for part in key.strip(".").split("...")]
    spec = app.callback_map[key]["inputs"]
    values = [*controls, search, None]  # the controls, the Location's search and pathname
    location = f"{prefix}-url.search" if search is not None else f"{spec[0]['id']}.{spec[0]['property']}"
    return {
        "output": key,
        "outputs": [{"id": i, "property": p.split("@")[0]} for i, p in outputs],
        "inputs": [
            {"id": s["id"], "property": s["property"], "value": v} for s, v in zip(spec, values, strict=True)
        ],
        "changedPropIds": [location],
        "state": [],
    }
