"""Chat: a streamed answer from the conversation, no tools."""

from __future__ import annotations

from ..prompts import render_prompt
from ..tools.base import ToolContext
from .answer import stream_answer


async def run_chat(ctx: ToolContext) -> str:
    return await stream_answer(ctx, render_prompt("chat"))
