"""The one nesting check, json_depth.nesting_exceeds: at its boundaries, and against the decoded depth."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from mcp import types
from mcp.shared.message import SessionMessage

from cancel_job_mcp import stdio_lines
from cancel_job_mcp.backends.http import answer
from cancel_job_mcp.backends.http.answer import decode_json
from cancel_job_mcp.errors import ToolError
from cancel_job_mcp.json_depth import nesting_exceeds
from cancel_job_mcp.stdio_lines import Refusal, decode_line


def depth(value: Any) -> int:
    """Levels of lists and objects, counted on the decoded value (a scalar is 0)."""
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


def nested(levels: int) -> str:
    """`levels` levels, alternating objects and lists, around a number."""
    text = "0"
    for level in range(levels):
        text = f"[{text}]" if level % 2 else '{"k": ' + text + "}"
    return text


@pytest.mark.parametrize("limit", [0, 1, 2, 64, 200])
def test_the_limit_is_accepted_and_one_more_level_refused(limit: int) -> None:
    assert not nesting_exceeds(nested(limit), limit)
    assert nesting_exceeds(nested(limit + 1), limit)
    assert depth(json.loads(nested(limit))) == limit
    if limit:  # more brackets than the limit, side by side
        assert not nesting_exceeds(f"[{nested(limit - 1)}, {nested(limit - 1)}]", limit)


def test_each_reader_takes_its_own_limit_and_refuses_one_level_more() -> None:
    """A client's message (stdio_lines) and a provider's answer (answer.py) are each held to their limit."""

    def message(levels: int) -> bytes:  # `levels` in all: the message's object is the first
        return b'{"jsonrpc":"2.0","id":7,"method":"ping","params":' + nested(levels - 1).encode() + b"}"

    assert isinstance(decode_line(message(stdio_lines.MAX_DEPTH)), SessionMessage)
    refusal = decode_line(message(stdio_lines.MAX_DEPTH + 1))
    assert isinstance(refusal, Refusal)
    assert (refusal.id, refusal.code) == (7, types.INVALID_REQUEST)
    assert f"nests deeper than {stdio_lines.MAX_DEPTH} levels" in refusal.message

    assert decode_json(nested(answer.MAX_DEPTH).encode(), "P") is not None
    with pytest.raises(ToolError, match=f"nested more than {answer.MAX_DEPTH} levels"):
        decode_json(nested(answer.MAX_DEPTH + 1).encode(), "P")


TRICKY = [
    '"[[[["',  # brackets inside a string are not nesting
    '["[", "]", "{", "}", [["]]]]"]]]',
    '{"[[": "]]", "k": [{"}": "{"}]}',
    r'["\"[[[", "\\", {"b": ["\"}}}}"]}]',  # escaped quotes and backslashes
    r'["\\\"[", "\\\\", [["\\"]]]',
    r'["\\", "[", "\\\\\\", "[[["]',  # a string ending in backslashes, then one with brackets
    '["", "", [""], "[", ""]',  # empty strings, and strings side by side
    r'["\u005b\u005b\u005b", "\u007b"]',  # brackets written as escapes
    '["\ud83d\ude00[", {"\u00e9": "]]"}]',  # non-ASCII text around brackets
    "[" + "[[]]," * 500 + "[]]",  # many brackets, three levels
    "[" * 30 + '"' + "]" * 80 + '"' + "]" * 30,
    "42",
    '"no brackets"',
    "{}",
]


@pytest.mark.parametrize("text", TRICKY)
def test_brackets_inside_strings_and_escapes_are_not_nesting(text: str) -> None:
    levels = depth(json.loads(text))
    for limit in range(max(0, levels - 2), levels + 3):
        assert nesting_exceeds(text, limit) == (levels > limit), (text, limit)


def test_random_json_agrees_with_the_decoded_depth() -> None:
    chooser = random.Random(21)
    pieces = ['"', "[", "]", "{", "}", "\\", "a", ",", ":", " ", "é"]

    def string() -> str:
        return "".join(chooser.choice(pieces) for _ in range(chooser.randrange(6)))

    def value(room: int) -> Any:
        kind = chooser.randrange(4 if room else 2)
        if kind == 0:
            return string()
        if kind == 1:
            return chooser.choice([0, 1.5, None, True])
        if kind == 2:
            return [value(room - 1) for _ in range(chooser.randrange(4))]
        return {string(): value(room - 1) for _ in range(chooser.randrange(4))}

    for _ in range(500):
        decoded = value(chooser.randrange(12))
        text = json.dumps(decoded, ensure_ascii=chooser.random() < 0.5)
        levels = depth(decoded)
        for limit in range(max(0, levels - 1), levels + 2):
            assert nesting_exceeds(text, limit) == (levels > limit), (text, limit)
