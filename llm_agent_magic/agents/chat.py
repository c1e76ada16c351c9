"""Chat: a streamed answer from the conversation, no tools."""

from __future__ import annotations

from ..prompts import fit_messages, render_prompt
from ..tools.base import ToolContext
from .common import stream_answer


async def run_chat(ctx: ToolContext, num_ctx: int) -> str:
    messages = [
        {"role": "system", "content": render_prompt("chat_system")},
        *ctx.history[-ctx.config.history_messages :],
        {"role": "user", "content": ctx.request},
    ]
    return await stream_answer(ctx, fit_messages(messages, num_ctx))
