"""ReAct: thought, action, observation, until ``finish`` or the iteration limit.

Each step is one ``react`` call answered with ``{"thought", "action", "action_input"}``.
What the model gets wrong (a malformed step, an unknown action) goes back to it as an
observation; only several malformed steps in a row end the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..events import Observation, Thought, ToolCall
from ..exceptions import JSONReplyError, MalformedSteps
from ..llm.structured import parse_json_reply
from ..prompts import REACT_SCHEMA, clip, react_schema, render_prompt
from ..tools.base import ToolContext, ToolRegistry, ask
from .answer import answer_instruction, stream_answer

MAX_MALFORMED_IN_A_ROW = 3


@dataclass
class ToolUse:
    tool: str
    input: str
    observation: str
    success: bool


@dataclass
class ReActOutcome:
    finished: bool
    final: str = ""
    uses: list[ToolUse] = field(default_factory=list)

    def work_text(self, limit: int) -> str:
        """What the tools found, for the answer prompt."""
        parts = [f"[{u.tool}] {u.input}\n{u.observation}" for u in self.uses]
        if self.final:
            parts.append(f"[conclusion] {self.final}")
        return clip("\n\n".join(parts) or "(no tool was used)", limit)


async def react_loop(ctx: ToolContext, tools: ToolRegistry, *, max_iterations: int, in_step: bool = False) -> ReActOutcome:
    """Steps until ``finish``; each is one ``react`` call on the run's transcript (the goal is already in it)."""
    instruction = render_prompt("react", tool_names=tools.names, in_step=in_step)
    outcome = ReActOutcome(finished=False)
    malformed = 0
    limit = ctx.config.max_output_chars
    constrained = react_schema(tools.names)
    for _ in range(max_iterations):
        reply = await ask(ctx, instruction, purpose="react", format=constrained)
        try:
            step = parse_json_reply(reply.content, REACT_SCHEMA)
        except JSONReplyError as exc:
            malformed += 1
            if malformed >= MAX_MALFORMED_IN_A_ROW:
                raise MalformedSteps(malformed, reply.content) from None
            note = render_prompt("react_malformed", reason=str(exc), tool_names=tools.names)
            ctx.emit(Observation(note.removeprefix("Observation: "), tool="", run_id=ctx.run_id))
            ctx.conversation.add(note)
            continue
        malformed = 0
        action, action_input = str(step["action"]).strip(), str(step["action_input"])
        ctx.emit(Thought(str(step["thought"]), run_id=ctx.run_id))
        if action == "finish":
            outcome.finished, outcome.final = True, action_input
            return outcome
        tool = tools.get(action)
        if tool is None:
            note = render_prompt("react_unknown", action=repr(action), tool_names=tools.names)
            ctx.emit(Observation(note.removeprefix("Observation: "), tool="", run_id=ctx.run_id))
            ctx.conversation.add(note)
            continue
        ctx.emit(ToolCall(action, action_input, run_id=ctx.run_id))
        result = await tool.run(action_input, ctx)
        observation = clip(result.observation, limit)
        ctx.emit(Observation(observation, tool=action, run_id=ctx.run_id))
        outcome.uses.append(ToolUse(action, action_input, observation, result.success))
        ctx.conversation.add(render_prompt("observation", tool=action, text=result.transcript_text or observation))
    return outcome


async def run_react(ctx: ToolContext, tools: ToolRegistry) -> str:
    """A whole ReAct run: the loop, then a streamed answer that cites what the tools found."""
    outcome = await react_loop(ctx, tools, max_iterations=ctx.config.max_react_iterations)
    note = ""
    if not outcome.finished:
        note = f"(The agent stopped after {ctx.config.max_react_iterations} steps without finishing; say what is still open.)"
    return await stream_answer(ctx, answer_instruction(ctx, note))
