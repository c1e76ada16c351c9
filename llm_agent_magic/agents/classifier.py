"""Route a request to chat, ReAct or plan-and-execute: by a rule when the mode is clear, else one structured call.

The rule (``clear_mode``): a request that attaches a table and asks a question (it holds a ``?``, or names an
answer format such as ``@mean[value]``) needs tools, one goal at a time: ReAct, without a classifier call. A
table with an instruction ("Load sales.csv, join ..., write a report") may need a plan, so the model decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath

from .. import answer_format
from ..events import Classified
from ..exceptions import StructuredOutputError
from ..prompts import CLASSIFY_SCHEMA, render_prompt
from ..tools.base import ToolContext, ask_structured
from ..tools.files import TABLE_SUFFIXES

CLEAR_REASON = "a table is attached and the request is a question: ReAct, which can use tools (no classifier call)"


def clear_mode(request: str, files: Sequence[str]) -> Classified | None:
    """The mode when the rule above decides it, else None (ask the classifier)."""
    has_table = any(PurePath(f).suffix.lower() in TABLE_SUFFIXES for f in files)
    if has_table and ("?" in request or answer_format.requested(request)):
        return Classified("react", CLEAR_REASON)
    return None


async def classify(ctx: ToolContext) -> Classified:
    """The mode for ``ctx.request``. A malformed answer falls back to ReAct, and the event says so."""
    try:
        result = await ask_structured(ctx, render_prompt("classify"), purpose="classify", schema=CLASSIFY_SCHEMA)
    except StructuredOutputError as exc:
        return Classified(
            "react",
            f"The classifier's answer could not be read ({exc.raw[:80]!r}); using ReAct, which can use tools.",
            fallback=True,
            run_id=ctx.run_id,
        )
    return Classified(result.value["mode"], str(result.value.get("reason", "")), run_id=ctx.run_id)
