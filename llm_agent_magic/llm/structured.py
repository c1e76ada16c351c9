"""Read JSON out of what a model actually writes.

Models asked for JSON still wrap it in code fences, narrate around it, leave
trailing commas or use single quotes. ``parse_json_reply`` tries the strict
reading first and falls back step by step; ``json_repair`` does the mending.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

import fastjsonschema
import json_repair

from ..exceptions import JSONReplyError
from ..text import fenced_blocks as text_fenced_blocks
from .thinking import strip_thinking


def balanced_spans(text: str) -> list[str]:
    """Top-level ``{...}``/``[...]`` spans, respecting quoted strings of either kind."""
    spans: list[str] = []
    depth, start, quote, escaped = 0, -1, "", False
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
            continue
        if ch in "\"'" and depth > 0:
            quote = ch
        elif ch in "{[":
            if depth == 0:
                start = i
            depth += 1
        elif ch in "}]" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start : i + 1])
    if depth > 0 and start >= 0:  # cut off at the end: let json_repair close it
        spans.append(text[start:])
    return spans


def fenced_blocks(text: str) -> list[str]:
    """The contents of the text's code fences (```json, ``` or ```js)."""
    return [block.strip() for block in text_fenced_blocks(text, ("json", "javascript", "js"))]


def _candidates(text: str) -> list[tuple[str, str]]:
    """Where JSON may be in a reply, and how each place is described: the whole text, code fences,
    spans inside narration (longest first)."""
    found = [("", text.strip())]
    found += [("read from a code fence", b) for b in fenced_blocks(text)]
    found += [("extracted from narration around the JSON", s) for s in sorted(balanced_spans(text), key=len, reverse=True)]
    seen: set[str] = set()
    unique: list[tuple[str, str]] = []
    for where, c in found:
        if c and c not in seen:
            seen.add(c)
            unique.append((where, c))
    return unique


#: How a candidate is read, strictest first, and how the reading is described.
_PARSERS: tuple[tuple[Callable[[str], Any], str], ...] = (
    (json.loads, ""),
    (ast.literal_eval, "parsed with ast.literal_eval (a Python literal)"),
    (json_repair.loads, "repaired malformed JSON"),
)


def json_readings(text: str) -> Iterator[tuple[Any, str, str]]:
    """Every value that can be read out of a model's reply, strictest reading first: ``(value, how, problem)``,
    where ``how`` says how it was read ("" for strict JSON of the whole reply) and ``problem`` is set, with
    ``value`` None, for a reading that failed. The one defensive reader of JSON answers."""
    text = strip_thinking(text or "")
    candidates = _candidates(text)
    for parser, parsed_how in _PARSERS:
        for where, cand in candidates:
            try:
                value = parser(cand)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
                yield None, "", f"invalid JSON: {exc}"
                continue
            if parser is json_repair.loads and value in ("", None, [], {}) and cand not in ("[]", "{}"):
                continue  # json_repair returns an empty value when it finds nothing
            yield value, "; ".join(filter(None, [where, parsed_how])), ""


def parse_json_reply(text: str, schema: dict[str, Any] | None = None) -> Any:
    """The first JSON value in ``text`` that matches ``schema``; raises ``JSONReplyError`` otherwise."""
    if not strip_thinking(text or "").strip():
        raise JSONReplyError("the answer was empty")
    last_problem = "no JSON object found in the answer"
    for value, _, failed in json_readings(text):
        if failed:
            last_problem = failed
            continue
        problem = schema_problem(value, schema)
        if problem is None:
            return value
        last_problem = problem
    raise JSONReplyError(last_problem)


def schema_problem(value: Any, schema: dict[str, Any] | None) -> str | None:
    """None when ``value`` satisfies ``schema``, else a one-line reason fit to show the model."""
    if schema is None:
        return None
    try:
        _validator(json.dumps(schema, sort_keys=True))(value)
    except fastjsonschema.JsonSchemaValueException as exc:
        return exc.message.replace("data.", "", 1) if exc.message.startswith("data.") else exc.message
    return None


@lru_cache(maxsize=64)
def _validator(schema_json: str) -> Any:
    # fastjsonschema (which nbformat uses too) compiles each schema once; jsonschema's import alone
    # costs a second in every kernel that loads the magic.
    return fastjsonschema.compile(json.loads(schema_json))
