"""A page's state in its URL (`?range=7d&scope=4`): a reload keeps the selection and a link shares it.

One helper for every page: a page lists its `UrlField`s (URL key, component id and property, how to read
the text, the default); its layout reads the query string with `read_url` (Dash passes it to the layout
as keyword arguments) and renders `url_location` and `url_notice`; callbacks/common.py `sync_url` writes
the controls back into the URL (a page-owned dcc.Location with refresh=False: history.pushState, no
reload, and Dash's page router does not see it, so the page is not drawn again). Back and Forward: the
router redraws the page only for a URL other than the one it drew it for, so `sync_url` also sets the
controls from the URL the browser returned to (`url_values`); without it, Back to the first URL changed
the address bar and nothing else.

State read from a URL is untrusted input like any other: every value is parsed and checked on the
server; a value that does not parse falls back to the default with a notice, and a scope outside the
caller's `Scope` (dashboard/choices.py `resolve_choice`) falls back to their default scope with a notice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlencode

import dash_bootstrap_components as dbc
from dash import dcc

from dashboard.choices import ALL, all_label, resolve_choice
from dashboard.context import db
from dashboard.errors import NotFound
from dashboard.scope import Scope
from dashboard.ui_auth import URL_SCOPE

MAX_TEXT = 40  # no URL value of these pages is longer: longer text is refused before parsing


class Refused(ValueError):
    """A URL value that cannot be used; the message is the notice the page shows."""


@dataclass(frozen=True)
class UrlField:
    """One piece of a page's state: `key` in the URL, held by `component`.`prop` in the layout.

    `parse(text, scope)` returns the value or raises Refused/ValueError; `default` is a value or a
    zero-argument callable (e.g. today's date); `only_if` (key, values): written to the URL only while
    that other field has one of these values (the custom dates only for a custom range)."""

    key: str
    component: str
    prop: str
    parse: Callable[[str, Scope], Any]
    default: Any
    only_if: tuple[str, frozenset] | None = None

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default


def one_of(*values: Any) -> Callable[[str, Scope], Any]:
    """A value from a fixed list; the URL text is compared with each value's text ("8" -> 8)."""
    by_text = {str(v): v for v in values}

    def parse(text: str, _scope: Scope) -> Any:
        if text not in by_text:
            raise Refused(f"one of {', '.join(by_text)}")
        return by_text[text]

    return parse


def iso_day(text: str, _scope: Scope) -> str:
    """A local day, YYYY-MM-DD (the date pickers' format)."""
    if len(text) != 10:
        raise Refused("a date, YYYY-MM-DD")
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise Refused("a date, YYYY-MM-DD") from None


def scope_choice(text: str, scope: Scope) -> str:
    """A scope choice ("all", "c<community id>", "<house id>") the caller may see: checked against their
    Scope on the server (a house id from the URL is only intersected with it, never trusted)."""
    try:
        resolve_choice(db(), scope, text)
    except NotFound:
        raise Refused(f"not in your scope: showing {all_label(scope)}") from None
    return ALL if text == "" else text


def _text(raw: Any) -> str | None:
    """The URL's text for one key, or None when it is not one plain, short value (a repeated key gives a
    list; control characters and long text are refused)."""
    if not isinstance(raw, str) or len(raw) > MAX_TEXT or not raw.isprintable():
        return None
    return raw


def read_url(
    query: dict,
    fields: Iterable[UrlField],
    scope: Scope,
    defaults: dict | None = None,
    choices: dict | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """(value per key, notices) from the layout's query parameters: each field's checked value, or its
    default when absent or refused (each refusal gives a notice naming the key and what it must be).
    `defaults` overrides fields' defaults for this caller (e.g. their first house); `choices` limits a
    key to the values the layout offers (its dropdown's options)."""
    defaults, choices = defaults or {}, choices or {}
    values: dict[str, Any] = {}
    notices: list[str] = []
    for f in fields:
        default = defaults[f.key] if f.key in defaults else f.default_value()
        name = URL_SCOPE if f.key == "scope" else f.key  # renamed by page_guard: `scope` is the caller's
        if name not in query:
            values[f.key] = default
            continue
        text = _text(query[name])
        try:
            if text is None:
                raise Refused("a single short value")
            values[f.key] = f.parse(text, scope)
            if f.key in choices and values[f.key] not in choices[f.key]:
                raise Refused("not one of the choices here")
        except ValueError as exc:  # Refused included
            values[f.key] = default
            notices.append(f"Link value {f.key!r} ignored ({exc}).")
    return values, notices


def url_values(search: Any, fields: Iterable[UrlField], scope: Scope) -> dict[str, Any]:
    """The checked values of a query string the browser went back or forward to (`?a=b`), as `read_url`
    checks a link's. Only what the URL decides: a key it lacks whose default is computed (today, the
    caller's first house) or that is written only under a condition (`only_if`) is left out, so the
    control keeps its value."""
    fields = tuple(fields)
    text = search if isinstance(search, str) else ""
    pairs = parse_qs(text.removeprefix("?"), keep_blank_values=True)
    query = {(URL_SCOPE if k == "scope" else k): (v[0] if len(v) == 1 else v) for k, v in pairs.items()}
    values, _notices = read_url(query, fields, scope)
    return {
        f.key: values[f.key]
        for f in fields
        if f.key in pairs or (f.only_if is None and not callable(f.default))
    }


def caller_default() -> None:
    """The default of a field whose default depends on the caller (read_url's `defaults`): as a callable
    default, the value is always written to the URL."""
    return None


def url_search(values: dict[str, Any], fields: Iterable[UrlField]) -> str:
    """The canonical query string ("" or "?a=b&c=d") of these values: defaults are left out (a bare page
    URL means the defaults; a computed default such as today's date is always written, as it moves),
    conditional fields only while their condition holds."""
    pairs = []
    for f in fields:
        value = values.get(f.key)
        if value is None:
            continue
        if f.only_if is not None and values.get(f.only_if[0]) not in f.only_if[1]:
            continue
        if not callable(f.default) and value == f.default:
            continue
        pairs.append((f.key, str(value)))
    return "?" + urlencode(pairs) if pairs else ""


def location_id(prefix: str) -> str:
    return f"{prefix}-url"


def notice_id(prefix: str) -> str:
    return f"{prefix}-url-notice"


def url_location(prefix: str, path: str, values: dict[str, Any], fields: Iterable[UrlField]) -> dcc.Location:
    """The page's own Location: it starts with the canonical query of the checked values (a refused value
    is dropped from the address bar at once) and the controls' callback keeps it current."""
    return dcc.Location(
        id=location_id(prefix), pathname=path, search=url_search(values, fields), refresh=False
    )


def url_notice(prefix: str, notices: list[str]) -> dbc.Alert:
    """What of the link was not used (shown only when something was refused)."""
    return dbc.Alert(
        " ".join(notices), id=notice_id(prefix), color="warning", is_open=bool(notices), dismissable=True
    )
