"""Fix and explain a cell of the user's notebook: the request the model gets, and the fix read from its answer.

Front ends give the cell's source, its traceback and the variables it uses; the model is asked once (a chat
run) for the whole corrected cell in one fenced ``python`` block. The fix is shown as a diff against the cell
and applied only when the user asks (the magic's ``--apply`` puts it into the next cell; the panel's Accept
replaces the cell). ``cell_request`` reads the panel's ``fix`` / ``explain`` message into the run request, and a
run with ``fix_of`` ends with ``fix_proposal``'s event.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Mapping
from typing import Any

from ..events import FixProposed
from ..exceptions import BadContext, BadRequest
from ..notebook_context import MAX_CELL_CHARS, NotebookContext
from ..run_requests import RunRequest
from ..text import clip, fenced_blocks

#: The messages a front end sends to fix or explain one of the user's cells (besides ``run``).
CELL_ACTIONS = ("fix", "explain")
#: Characters of a cell's source and of its traceback put into the request.
SOURCE_CHARS = 20_000
TRACEBACK_CHARS = 12_000


def fix_request(number: int, source: str, traceback: str) -> str:
    return (
        f"Cell [{number}] of my notebook failed. Fix it: reply with the whole corrected cell in one fenced python "
        f"block, then say in one or two sentences what was wrong. The variables it uses are listed in the "
        f"context.\n\nThe cell:\n```python\n{clip(source.rstrip(), SOURCE_CHARS)}\n```\n\n"
        f"The error:\n```\n{clip(traceback.rstrip(), TRACEBACK_CHARS)}\n```"
    )


def explain_request(number: int, source: str, traceback: str = "", output: str = "") -> str:
    text = (
        f"Explain cell [{number}] of my notebook: what it does"
        + (" and why it failed" if traceback else "")
        + f", briefly.\n\nThe cell:\n```python\n{clip(source.rstrip(), SOURCE_CHARS)}\n```"
    )
    if traceback:
        text += f"\n\nThe error:\n```\n{clip(traceback.rstrip(), TRACEBACK_CHARS)}\n```"
    elif output:
        text += f"\n\nIts output:\n```\n{clip(output.rstrip(), 2000)}\n```"
    return text


def names_used(source: str) -> list[str]:
    """The names a cell reads or assigns, in order of first use ([] for a cell that is not valid Python)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    seen: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            seen.setdefault(node.id, None)
    return list(seen)


def proposed_fix(answer: str) -> str | None:
    """The corrected cell in the model's answer: its first python block, or None when it wrote none."""
    blocks = fenced_blocks(answer, ("python", "py", "python3"))
    return blocks[0].rstrip() + "\n" if blocks and blocks[0].strip() else None


def fix_diff(source: str, fixed: str, number: int) -> str:
    """The fix as a unified diff against the cell."""
    return "".join(
        difflib.unified_diff(
            [line + "\n" for line in source.rstrip().splitlines()],
            [line + "\n" for line in fixed.rstrip().splitlines()],
            fromfile=f"cell [{number}]" if number else "the cell",
            tofile="proposed fix",
        )
    )


def fix_proposal(source: str, answer: str, number: int = 0) -> FixProposed:
    """What a fix run proposes: the corrected cell of its answer and the diff against ``source``."""
    fixed = proposed_fix(answer)
    if fixed is None:
        return FixProposed(source=source)
    return FixProposed(source=source, fixed=fixed, diff=fix_diff(source, fixed, number))


def cell_request(data: Mapping[str, Any]) -> RunRequest:
    """A front end's ``{"type": "fix" | "explain", "source", "error", "outputs", "number", "context", ...}`` as the
    chat run that asks about that cell, with only the variables the cell uses as its context."""
    action = data.get("type")
    if action not in CELL_ACTIONS:
        raise BadRequest(f"A cell action is one of {', '.join(CELL_ACTIONS)}, not {action!r}.")
    texts = {}
    for key in ("source", "error", "outputs", "notebook_path"):
        value = data.get(key, "")
        if not isinstance(value, str) or len(value) > MAX_CELL_CHARS:
            raise BadRequest(f"A {action}'s {key} is the cell's text (at most {MAX_CELL_CHARS:,} characters).")
        texts[key] = value
    if not texts["source"].strip():
        raise BadRequest(f"The cell to {action} is empty: write code in it first.")
    if action == "fix" and not texts["error"].strip():
        raise BadRequest("Only a cell that failed can be fixed: run it first, or ask to explain it.")
    number = data.get("number", 0)
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < 10**9:
        raise BadRequest("number is the cell's execution count (or its place in the notebook), a whole number.")
    model = data.get("model")
    try:
        context = NotebookContext.from_dict(data["context"]) if data.get("context") is not None else None
    except BadContext as exc:
        raise BadRequest(str(exc)) from None
    used = set(names_used(texts["source"]))
    variables = [v for v in context.variables if v.name in used] if context is not None else []
    if action == "fix":
        request = fix_request(number, texts["source"], texts["error"])
    else:
        request = explain_request(number, texts["source"], texts["error"], texts["outputs"])
    return RunRequest(
        request,
        mode="chat",
        model=model,
        notebook_path=texts["notebook_path"],
        context=NotebookContext(variables=variables),
        fix_of=texts["source"] if action == "fix" else "",
    )
