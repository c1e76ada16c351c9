"""The final answer of every mode (chat, ReAct, plan-and-execute), streamed as it is written."""

from __future__ import annotations

from ..events import Answer, Token
from ..tools.base import ToolContext, emit_usage


async def stream_answer(ctx: ToolContext, instruction: str, purpose: str = "answer") -> str:
    """Stream the answer to ``instruction`` as ``Token`` events, then one ``Answer`` with the whole markdown."""
    stream = ctx.llm.stream_chat(ctx.conversation.messages(instruction), purpose=purpose, model=ctx.model)
    pieces: list[str] = []
    async with stream:
        async for piece in stream:
            pieces.append(piece)
            ctx.emit(Token(piece, run_id=ctx.run_id))
    text = "".join(pieces).strip()
    await ctx.conversation.arecord(instruction, text)
    emit_usage(ctx, stream.result)
    ctx.emit(Answer(text, run_id=ctx.run_id))
    return text
