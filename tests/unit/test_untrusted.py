"""dashboard/untrusted.py: the JSON every request body is parsed with."""

from __future__ import annotations

import json

import pytest

from dashboard.untrusted import ID_MAX, MAX_JSON_DEPTH, UnsafeJSON, loads, text_problem


def test_ordinary_json_parses_as_json_does():
    text = json.dumps({"a": [1, 2.5, None, True], "b": {"c": "é 😀 \\u0000 as text"}, "n": -ID_MAX - 1})
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text)


def test_depth_is_limited_and_brackets_inside_strings_do_not_count():
    assert loads("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)
    with pytest.raises(UnsafeJSON, match="nested more than"):
        loads("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    with pytest.raises(UnsafeJSON, match="nested more than"):
        loads("[" * 100_000 + "]" * 100_000)
    assert loads(json.dumps({"s": "[" * 10_000, "t": '\\"{[' * 500})) == {
        "s": "[" * 10_000,
        "t": '\\"{[' * 500,
    }


@pytest.mark.parametrize("literal", [str(ID_MAX + 1), str(-ID_MAX - 2), "9" * 400])
def test_integers_are_bounded_to_64_bits(literal):
    with pytest.raises(UnsafeJSON, match="out of range"):
        loads('{"id": [' + literal + "]}")
    assert loads(f"[{ID_MAX}]") == [ID_MAX]


@pytest.mark.parametrize(
    "text",
    ['{"a":"\\udc80"}', '{"\\ud800":1}', '["ok", ["\\ud83d"]]', '{"a":"x\\u0000"}', '{"a\\u0000":1}'],
)
def test_nul_and_lone_surrogates_are_refused_in_keys_and_values(text):
    with pytest.raises(UnsafeJSON, match="NUL|surrogate"):
        loads(text)


def test_a_surrogate_pair_is_text():
    assert loads('"\\ud83d\\ude00"') == "😀"


def test_bytes_must_decode_and_lone_surrogates_in_utf16_are_refused():
    with pytest.raises(UnsafeJSON, match="not valid UTF-8"):
        loads(b'{"a": "\xff"}')
    with pytest.raises(UnsafeJSON, match="not valid UTF-16-LE"):  # a lone surrogate in UTF-16
        loads('{"a": "\ud800"}'.encode("utf-16-le", "surrogatepass"))


def test_text_problem():
    assert text_problem("fine") is None
    assert "NUL" in text_problem("a\x00")
    assert "surrogate" in text_problem("\udfff")
