"""Callbacks whose first call the server makes while it draws the page, not the browser after it.

Dash calls a page's callbacks once its layout is drawn: one more round trip, and a second React pass (and a
second plotly draw) once the answer is in. A callback registered with `callbacks.common.drawn_with_layout`
is instead called with its inputs' values as the layout sets them, its outputs written into the layout, and
registered with `prevent_initial_call` (later changes of its inputs call it as before). Both ways a page is
drawn go through here: a fresh tab's layout (app.py page_container) and the page router (in-app
navigation), since both call the registered layout (pages/__init__.py register_pages).

This module only keeps the registry (pages/ never imports callbacks/): the callbacks fill it as they are
registered."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dash import no_update
from dash.exceptions import PreventUpdate


@dataclass(frozen=True)
class Drawer:
    outputs: tuple[tuple[str, str], ...]  # (component id, prop)
    inputs: tuple[tuple[str, str], ...]  # then the states: the function's arguments, in Dash's order
    function: Callable


# page path -> its callbacks drawn with the layout, by their outputs (an app built again, as tests do,
# registers the same callbacks again: they replace themselves)
DRAWERS: dict[str, dict[tuple, Drawer]] = {}


def register(path: str, drawer: Drawer) -> None:
    DRAWERS.setdefault(path, {})[drawer.outputs] = drawer


def drawn(path: str, layout: Callable) -> Callable:
    """The page's layout function with its drawers applied (what pages/__init__.py registers)."""

    def layout_drawn(**kwargs):
        return draw(path, layout(**kwargs))

    return layout_drawn


def find(tree, component_id: str):
    """The component with this id in a layout tree (children, nested lists), else None."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, list | tuple):
            stack.extend(node)
        elif hasattr(node, "to_plotly_json"):
            if getattr(node, "id", None) == component_id:
                return node
            children = getattr(node, "children", None)
            if children is not None:
                stack.append(children)
    return None


def draw(path: str, tree):
    """Call each drawer of the page with the values its inputs have in `tree`, and set its outputs there.
    A drawer whose components are not all in the tree (a refusal, the login link) is skipped, and one that
    raises PreventUpdate leaves its outputs as the layout has them (as Dash would)."""
    for drawer in DRAWERS.get(path, {}).values():
        found = {cid: find(tree, cid) for cid, _ in (*drawer.inputs, *drawer.outputs)}
        if any(component is None for component in found.values()):
            continue
        values = [getattr(found[cid], prop, None) for cid, prop in drawer.inputs]
        try:
            result = drawer.function(*values)
        except PreventUpdate:
            continue
        results = result if len(drawer.outputs) > 1 else (result,)
        for (cid, prop), value in zip(drawer.outputs, results, strict=True):
            if value is not no_update:
                setattr(found[cid], prop, value)
    return tree
