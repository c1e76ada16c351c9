"""Fix and explain a cell of the user's notebook: the request the model gets, and the fix read from its answer.

Front ends give the cell's source, its traceback and the variables it uses; the model is asked once (a chat
run) for the whole corrected cell in one fenced ``python`` block. The fix is shown as a diff against the cell
and applied only when the user asks (the magic's ``--apply`` puts it into the next cell).
"""

from __future__ import annotations

import ast
import difflib

from ..text import clip, fenced_blocks

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
    text = (f"Explain cell [{number}] of my notebook: what it does" + (" and why it failed" if traceback else "")
            + f", briefly.\n\nThe cell:\n```python\n{clip(source.rstrip(), SOURCE_CHARS)}\n```")
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
    return "".join(difflib.unified_diff(
        [line + "\n" for line in source.rstrip().splitlines()],
        [line + "\n" for line in fixed.rstrip().splitlines()],
        fromfile=f"cell [{number}]", tofile="proposed fix",
    ))
