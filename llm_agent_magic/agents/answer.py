"""The final answer of every mode (chat, ReAct, plan-and-execute), streamed as it is written.

When the request names an answer format (``@name[value]``), the answer step restates it with the values the
code printed, and ``complete_answer`` then adds any requested value the model left out of its answer (an
``Observation`` from ``answer_format`` says which), so that one answer is written, and it carries them all.
"""

from __future__ import annotations

from .. import answer_format
from ..events import Answer, Observation, Token
from ..prompts import render_prompt
from ..tools.base import ToolContext, emit_usage

#: The ``tool`` of the observation that says which printed values were added to the answer.
FORMAT_CHECK = "answer_format"


def answer_instruction(ctx: ToolContext, note: str = "") -> str:
    """The ``[answer]`` instruction: the request's answer format verbatim and the values the code printed."""
    wanted = answer_format.requested(ctx.request)
    printed = answer_format.printed_values(ctx.outputs, wanted.names) if wanted else {}
    return render_prompt(
        "answer", note=note, answer_format=wanted.text, printed="\n".join(f"@{name}[{value}]" for name, value in printed.items())
    )


async def stream_answer(ctx: ToolContext, instruction: str, purpose: str = "answer") -> str:
    """Stream the answer to ``instruction`` as ``Token`` events, then one ``Answer`` with the whole markdown."""
    stream = ctx.llm.stream_chat(ctx.conversation.messages(instruction), purpose=purpose, model=ctx.model)
    pieces: list[str] = []
    async with stream:
        async for piece in stream:
            pieces.append(piece)
            ctx.emit(Token(piece, run_id=ctx.run_id))
    written = "".join(pieces).strip()
    await ctx.conversation.arecord(instruction, written)
    emit_usage(ctx, stream.result)
    text, added = answer_format.complete_answer(written, ctx.outputs, answer_format.requested(ctx.request).names)
    if added:
        listed = ", ".join(f"@{name}[{value}]" for name, value in added.items())
        ctx.emit(
            Observation(
                f"The answer left out requested value(s) the code printed; added: {listed}", tool=FORMAT_CHECK, run_id=ctx.run_id
            )
        )
        ctx.emit(Token(text[len(written) :], run_id=ctx.run_id))  # the streamed text stays the answer's text
    ctx.emit(Answer(text, run_id=ctx.run_id))
    return text
