"""Route a request to chat, ReAct or plan-and-execute with one structured call."""

from __future__ import annotations

from ..events import Classified
from ..exceptions import StructuredOutputError
from ..prompts import CLASSIFY_SCHEMA, render_prompt
from ..tools.base import ToolContext, emit_usage

MODES = ("chat", "react", "plan_execute")
#: What users may type for a mode, and the mode it means.
MODE_ALIASES = {"chat": "chat", "react": "react", "plan": "plan_execute", "plan_execute": "plan_execute"}


async def classify(ctx: ToolContext) -> Classified:
    """The mode for ``ctx.request``. A malformed answer falls back to ReAct, and the event says so."""
    messages = [
        {"role": "system", "content": render_prompt("classify")},
        *ctx.history[-4:],
        {"role": "user", "content": ctx.request},
    ]
    try:
        result = await ctx.llm.structured(messages, purpose="classify", schema=CLASSIFY_SCHEMA)
    except StructuredOutputError as exc:
        return Classified(
            "react",
            f"The classifier's answer could not be read ({exc.raw[:80]!r}); using ReAct, which can use tools.",
            fallback=True,
            run_id=ctx.run_id,
        )
    for call in result.calls:
        emit_usage(ctx, call)
    return Classified(result.value["mode"], str(result.value.get("reason", "")), run_id=ctx.run_id)
