"""pages/_first_draw.py, the registry of callbacks whose first call the server makes while drawing a page:
inputs read from the layout (States after Inputs), outputs written into it, no_update and PreventUpdate
leave a prop as the layout has it, a tree without the components (a refusal) is left alone, and an app
built again replaces its drawers instead of adding them twice."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html, no_update
from dash.exceptions import PreventUpdate

import pages._first_draw as first_draw

PATH = "/test-first-draw"


def page(value="a"):
    return html.Div(
        [
            dbc.Row(dbc.Col(dcc.Dropdown(id="fd-choice", options=["a", "b"], value=value))),
            dcc.Store(id="fd-state", data={"n": 2}),
            html.Div([html.P(id="fd-out", children="old"), dcc.Graph(id="fd-graph")]),
        ]
    )


def test_inputs_from_the_layout_and_outputs_into_it():
    calls = []

    def function(choice, state):
        calls.append((choice, state))
        return f"chose {choice}", {"data": [{"y": [state["n"]]}]}

    first_draw.register(PATH, first_draw.Drawer((("fd-out", "children"), ("fd-graph", "figure")),
                                                (("fd-choice", "value"), ("fd-state", "data")), function))  # fmt: skip
    first_draw.register(PATH, first_draw.Drawer((("fd-out", "children"), ("fd-graph", "figure")),
                                                (("fd-choice", "value"), ("fd-state", "data")), function))  # fmt: skip
    tree = first_draw.draw(PATH, page("b"))
    assert calls == [("b", {"n": 2})]  # registered twice (an app built again): drawn once
    assert first_draw.find(tree, "fd-out").children == "chose b"
    assert first_draw.find(tree, "fd-graph").figure == {"data": [{"y": [2]}]}
    refusal = html.Div([html.H4("Not allowed")], id="forbidden")
    assert first_draw.draw(PATH, refusal) is refusal and len(calls) == 1  # nothing to draw into
    first_draw.DRAWERS.pop(PATH, None)


def test_no_update_and_prevent_update_leave_the_layout_as_it_is():
    def keep(_choice):
        return no_update

    def refuse(_choice):
        raise PreventUpdate

    first_draw.DRAWERS.pop(PATH, None)
    first_draw.register(PATH, first_draw.Drawer((("fd-out", "children"),), (("fd-choice", "value"),), keep))
    tree = first_draw.draw(PATH, page())
    assert first_draw.find(tree, "fd-out").children == "old"
    first_draw.DRAWERS.pop(PATH, None)
    first_draw.register(PATH, first_draw.Drawer((("fd-out", "children"),), (("fd-choice", "value"),), refuse))
    tree = first_draw.draw(PATH, page())
    assert first_draw.find(tree, "fd-out").children == "old"
    first_draw.DRAWERS.pop(PATH, None)
