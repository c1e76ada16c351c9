"""Strict readers for what clients send the server: whole numbers in queries and messages, JSON bodies.

Every value comes from a stranger: ``int()`` takes ``"²"``, ``" 7 "``, ``"1_000"`` and 4,000-digit numbers
(a ValueError for the last, an overflow in SQLite for the ones just below), and ``json.loads`` recurses once
per level of nesting (a body nested 100,000 deep raises RecursionError). Here a number is ASCII digits in
a stated range and a JSON document has a bounded size and depth; anything else is a ``BadRequest`` whose
message says what is expected, which the handlers send as a 400 (or as an ``error`` message on a socket).
"""

from __future__ import annotations

import json
from typing import Any, overload

from ..exceptions import BadRequest

#: Largest JSON document (a request body, a WebSocket message) read, in bytes.
MAX_JSON_BYTES = 16 * 2**20
#: Deepest nesting of arrays and objects a JSON document may have (OpenAI messages need about 5).
MAX_JSON_DEPTH = 64
#: The largest whole number a query takes (an SQLite INTEGER holds it).
MAX_WHOLE = 10**15


class TooLarge(BadRequest):
    """A JSON document larger than ``MAX_JSON_BYTES`` (a 413 over HTTP)."""


@overload
def whole_number(raw: object, name: str, *, default: int, low: int = 0, high: int = MAX_WHOLE, meaning: str = "") -> int: ...


@overload
def whole_number(
    raw: object, name: str, *, default: None = None, low: int = 0, high: int = MAX_WHOLE, meaning: str = ""
) -> int | None: ...


def whole_number(
    raw: object, name: str, *, default: int | None = None, low: int = 0, high: int = MAX_WHOLE, meaning: str = ""
) -> int | None:
    """``raw`` (a query's text, or a JSON value) as an int in ``low..high``; ``default`` when it is missing.

    Only ASCII digits (or a JSON integer) count: no sign, no spaces, no underscores, no other scripts' digits.
    """
    what = f"{name} must be a whole number from {low} to {high}" + (f" ({meaning})" if meaning else "")
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):  # JSON's true is not 1
        raise BadRequest(f"{what}, not {json.dumps(raw)}.")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= len(str(high)):
        value = int(raw)
    else:
        shown = ascii(raw[:40]) + ("..." if len(raw) > 40 else "") if isinstance(raw, str) else type(raw).__name__
        raise BadRequest(f"{what}, not {shown}.")
    if not low <= value <= high:
        raise BadRequest(f"{what}, not {value if abs(value) < 10**20 else 'a number that large'}.")
    return value


def parse_json(raw: bytes | str, what: str = "The request body") -> Any:
    """The JSON document in ``raw``, at most ``MAX_JSON_BYTES`` long and ``MAX_JSON_DEPTH`` deep."""
    if len(raw) > MAX_JSON_BYTES:
        raise TooLarge(f"{what} is larger than {MAX_JSON_BYTES // 2**20} MB; send less at once.")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"{what} is not valid UTF-8 (byte {exc.start}); send JSON encoded as UTF-8.") from None
    try:
        data = json.loads(raw)
    except RecursionError:  # nesting deeper than the interpreter's stack: far past MAX_JSON_DEPTH
        raise _too_deep(what) from None
    except ValueError as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc}") from None
    brackets = raw.count("[") + raw.count("{")  # fewer than the bound: no need to walk the document
    if brackets > MAX_JSON_DEPTH and _depth(data) > MAX_JSON_DEPTH:
        raise _too_deep(what)
    return data


def parse_json_object(raw: bytes | str, what: str = "The request body") -> dict[str, Any]:
    data = parse_json(raw, what)
    if not isinstance(data, dict):
        raise BadRequest(f"{what} must be a JSON object ({{...}}), not {type(data).__name__ if data is not None else 'null'}.")
    return data


def _too_deep(what: str) -> BadRequest:
    return BadRequest(f"{what} nests arrays and objects more than {MAX_JSON_DEPTH} levels deep; send a flatter document.")


def _depth(data: Any) -> int:
    """How deep arrays and objects nest in ``data``, a level at a time (no recursion), stopping past the bound."""
    depth, level = 0, [data]
    while depth <= MAX_JSON_DEPTH:
        containers = [value for value in level if isinstance(value, (dict, list))]
        if not containers:
            break
        depth += 1
        level = [child for value in containers for child in (value.values() if isinstance(value, dict) else value)]
    return depth
