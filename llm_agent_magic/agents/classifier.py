"""Route a request to chat, ReAct or plan-and-execute with one structured call."""

from __future__ import annotations

from ..events import Classified
from ..exceptions import StructuredOutputError
from ..prompts import CLASSIFY_SCHEMA, render_prompt
from ..tools.base import ToolContext, ask_structured


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
