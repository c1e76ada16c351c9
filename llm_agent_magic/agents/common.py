"""Small pieces every agent loop uses: usage events and streamed answers."""

from __future__ import annotations

from typing import Any

from ..events import Answer, Token
from ..tools.base import ToolContext, emit_usage


async def stream_answer(ctx: ToolContext, messages: list[dict[str, Any]], purpose: str = "answer") -> str:
    """Stream the answer as ``Token`` events, then one ``Answer`` with the whole markdown."""
    stream = ctx.llm.stream_chat(messages, purpose=purpose)
    pieces: list[str] = []
    async with stream:
        async for piece in stream:
            pieces.append(piece)
            ctx.emit(Token(piece, run_id=ctx.run_id))
    text = "".join(pieces).strip()
    emit_usage(ctx, stream.result)
    ctx.emit(Answer(text, run_id=ctx.run_id))
    return text
