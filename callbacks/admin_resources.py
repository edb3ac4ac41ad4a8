"""Admin page, "Create and edit" tab: houses, devices, PVs, PV parks and communities.

The form is built from the resource's definition (dashboard/metadata.py, the API's own), and a save goes
through the same validation, defaults and cross-field rules as POST/PATCH /api/v1/{resource}
(create_record, update_record), in one transaction: a refused save shows every problem and writes nothing.
Every callback checks on the server that the caller may open the Admin page and holds the permission; the
record id and the resource name from the browser are only looked up.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, ctx, dcc, no_update
from dash.exceptions import PreventUpdate

from callbacks.common import clicked, error_text, message, scope_with
from dashboard import metadata
from dashboard.context import db
from dashboard.errors import DomainError, NotFound
from dashboard.resources import Field, Resource
from dashboard.scope import Scope
from pages._admin_resources import (
    CHANGED,
    FIELD,
    FORM,
    MESSAGE,
    NEW,
    RECORD,
    RECORDS_TAB,
    RESOURCE,
    RESOURCE_LABELS,
    SAVE,
)
from pages._components import field
from pages.admin import PERMISSION, tab_store

NOT_ALLOWED = "Not allowed: houses, devices, PVs, parks and communities are edited by admins."


def admin_scope(permission: str) -> Scope | None:
    return scope_with(PERMISSION, permission)


def resource_of(name) -> Resource:
    if name not in RESOURCE_LABELS:  # users are edited in the Users and Links tabs
        raise NotFound("Choose what to edit")
    return metadata.resource_named(name)


def record_of(resource: Resource, record):
    """The record the dropdown names, or None for a new one; NotFound for anything else."""
    if record in (None, NEW):
        return None
    if isinstance(record, bool) or not isinstance(record, int | str) or not str(record).isdigit():
        raise NotFound("No such record")
    obj = db().get(resource.model, int(record))
    if obj is None:
        raise NotFound(f"{resource.name} {record} not found (deleted meanwhile?)")
    return obj


def _input(name: str, spec: Field, value, session):
    component_id = {"type": FIELD, "name": name}
    if name in metadata.REFERENCES:
        options = metadata.record_choices(session, metadata.REFERENCES[name])
        return dcc.Dropdown(id=component_id, options=options, value=value, placeholder="None")
    if spec.choices:
        options = [{"label": c, "value": c} for c in spec.choices]
        return dcc.Dropdown(id=component_id, options=options, value=value, placeholder="Default")
    if spec.type is bool:
        return dbc.Checkbox(id=component_id, value=bool(value), label="yes")
    if spec.schema_type in ("integer", "number"):
        return dbc.Input(id=component_id, type="number", step="any", value=value)
    return dbc.Input(id=component_id, type="text", value=value, maxLength=spec.max_length)


def _label(name: str, spec: Field) -> str:
    text = name.replace("_", " ")
    return f"{text} *" if spec.required else text


def record_form(tab, resource_name, record):
    if tab != RECORDS_TAB:
        raise PreventUpdate
    if admin_scope("metadata:read") is None:
        return dbc.Alert(NOT_ALLOWED, color="danger", className="admin-refused")
    session = db()
    try:
        resource = resource_of(resource_name)
        obj = record_of(resource, record)
    except DomainError as exc:
        return dbc.Alert(error_text(exc), color="warning")
    values = metadata.record_values(resource, obj) if obj is not None else {}
    cols = [
        field(_label(name, spec), _input(name, spec, values.get(name), session), md=4)
        for name, spec in resource.fields.items()
        if spec.alias_of is None
    ]
    for name, (_attribute, model) in resource.relations.items():
        options = metadata.record_choices(session, model)
        control = dcc.Dropdown(id={"type": FIELD, "name": name}, options=options, value=values.get(name, []),
                               multi=True, placeholder="None")  # fmt: skip
        cols.append(field(name.replace("_", " "), control, md=8))
    return dbc.Row(cols, className="g-3")


def record_choices(tab, resource_name, changed, record):
    """The record dropdown: New, then every record; a new choice of resource starts at New, a save selects
    the saved record."""
    if tab != RECORDS_TAB:
        raise PreventUpdate
    if admin_scope("metadata:read") is None:
        return [{"label": "New", "value": NEW}], NEW
    try:
        resource = resource_of(resource_name)
    except DomainError:
        return [{"label": "New", "value": NEW}], NEW
    options = [{"label": "New", "value": NEW}] + metadata.record_choices(db(), resource.model)
    if ctx.triggered_id == RESOURCE:
        return options, NEW
    if ctx.triggered_id == CHANGED and isinstance(changed, dict) and changed.get("select") is not None:
        return options, changed["select"]
    return options, record if any(o["value"] == record for o in options) else NEW


def form_body(resource: Resource, names: list, values: list, creating: bool) -> dict:
    """The form's values as an API body: empty optional fields are left out of a new record and cleared
    (null) on an existing one; everything else goes to the validator as typed."""
    body = {}
    for name, value in zip(names, values, strict=True):
        if isinstance(value, str) and not value.strip():
            value = None
        if value is None and creating:
            continue
        body[name] = value
    return body


def save_record(_save, resource_name, record, values, changed):
    if clicked() != SAVE:
        raise PreventUpdate
    if admin_scope("metadata:write") is None:
        return *message(NOT_ALLOWED, "danger"), no_update
    states = ctx.states_list[2] if len(ctx.states_list) > 2 else []
    names = [s["id"].get("name") if isinstance(s.get("id"), dict) else None for s in states]
    session = db()
    try:
        resource = resource_of(resource_name)
        obj = record_of(resource, record)
        body = form_body(resource, names, list(values or []), creating=obj is None)
        if obj is None:
            obj = metadata.create_record(session, resource, body)
            text = f"{RESOURCE_LABELS[resource.name]}: {metadata.record_label(obj)} created."
        else:
            metadata.update_record(session, resource, obj, body)
            text = f"{RESOURCE_LABELS[resource.name]}: {metadata.record_label(obj)} saved."
        metadata.commit_or_conflict(session)
    except DomainError as exc:
        session.rollback()  # nothing written on error
        return *message(error_text(exc), "danger"), no_update
    count = changed.get("count", 0) if isinstance(changed, dict) else 0
    return *message(text, "success"), {"count": int(count) + 1, "select": obj.id}


def register_callbacks(app) -> None:
    app.callback(
        Output(RECORD, "options"),
        Output(RECORD, "value"),
        Input(tab_store(RECORDS_TAB), "data"),
        Input(RESOURCE, "value"),
        Input(CHANGED, "data"),
        State(RECORD, "value"),
        prevent_initial_call=True,
    )(record_choices)
    app.callback(
        Output(FORM, "children"),
        Input(tab_store(RECORDS_TAB), "data"),
        Input(RESOURCE, "value"),
        Input(RECORD, "value"),
        prevent_initial_call=True,
    )(record_form)
    app.callback(
        Output(MESSAGE, "children"),
        Output(MESSAGE, "color"),
        Output(MESSAGE, "is_open"),
        Output(CHANGED, "data"),
        Input(SAVE, "n_clicks"),
        State(RESOURCE, "value"),
        State(RECORD, "value"),
        State({"type": FIELD, "name": ALL}, "value"),
        State(CHANGED, "data"),
        prevent_initial_call=True,
    )(save_record)
