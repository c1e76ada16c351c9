"""Plan-and-execute: a plan of steps, each run as a short ReAct, checked, re-planned once if it fails.

Plans are read defensively, and the ``PlanCreated`` event says how: strict JSON, a code
fence, JSON found inside narration, a Python literal (``ast.literal_eval``), repaired JSON,
a numbered list, or, as the last resort, the whole request as a single step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..events import PlanCreated, StepFinished, StepStarted
from ..linear_regex import SPACE, linear
from ..llm.structured import json_readings
from ..llm.thinking import strip_thinking
from ..prompts import PLAN_SCHEMA, clip, render_prompt
from ..tools.base import ToolContext, ToolRegistry, ask, review
from .answer import answer_instruction, stream_answer
from .react import react_loop

STEP_ITERATIONS = 4
# RE2: the model writes the plan (``\s*`` crosses lines, so blank lines made ``re`` quadratic).
_NUMBERED = linear(rf"(?m)^[{SPACE}]*(?:\p{{Nd}}+[.)]|[-*])[{SPACE}]+(.+)$")


@dataclass
class Step:
    goal: str
    tool: str = "python_coder"
    success_criteria: str = "the step's goal is met"
    status: str = "pending"
    summary: str = ""
    index: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"goal": self.goal, "tool": self.tool, "success_criteria": self.success_criteria}


def _steps_from(value: Any) -> list[dict[str, Any]] | None:
    if isinstance(value, dict):
        value = value.get("steps", value.get("plan"))
    if isinstance(value, list) and value and all(isinstance(s, (dict, str)) for s in value):
        return [s if isinstance(s, dict) else {"goal": s} for s in value]
    return None


def parse_plan(text: str) -> tuple[list[dict[str, Any]] | None, str]:
    """The steps in a plan answer and how they were read; ``None`` when no reading worked."""
    for value, how, problem in json_readings(text):
        steps = None if problem else _steps_from(value)
        if steps:
            return steps, how
    lines = _NUMBERED.findall(strip_thinking(text).strip())
    if len(lines) >= 2:
        return [{"goal": line.strip()} for line in lines], "read from a numbered list"
    return None, ""


def normalise_steps(raw: list[dict[str, Any]], tools: ToolRegistry, limit: int) -> list[Step]:
    steps = []
    for item in raw[:limit]:
        goal = str(item.get("goal") or item.get("description") or item.get("step") or "").strip()
        if not goal:
            continue
        tool = str(item.get("tool") or "python_coder")
        steps.append(
            Step(
                goal=goal,
                tool=tool if tools.get(tool) else "python_coder",
                success_criteria=str(item.get("success_criteria") or "the step's goal is met"),
            )
        )
    return steps


async def make_plan(ctx: ToolContext, tools: ToolRegistry, instruction: str) -> tuple[list[Step], str]:
    """Ask for a plan and read it; the note says how it was read."""
    reply = await ask(ctx, instruction, purpose="plan", format=PLAN_SCHEMA)
    raw, how = parse_plan(reply.content)
    steps = normalise_steps(raw or [], tools, ctx.config.max_plan_steps)
    if not steps:
        steps = [Step(goal=ctx.request, success_criteria="the request is answered")]
        how = "no plan could be read from the model's answer; running the whole request as a single step"
    elif raw and len(raw) > ctx.config.max_plan_steps:
        how = ", ".join(filter(None, [how, f"cut to the first {ctx.config.max_plan_steps} steps"]))
    return steps, how


async def _check(ctx: ToolContext, step: Step) -> tuple[bool, str]:
    instruction = render_prompt("check_step", index=step.index + 1, goal=step.goal, success_criteria=step.success_criteria)
    verdict = await review(ctx, instruction)
    if verdict is None:
        return True, ""  # an unreadable check does not fail a step that finished
    return verdict.ok, verdict.issues


async def run_plan_execute(ctx: ToolContext, tools: ToolRegistry) -> str:
    cfg = ctx.config
    steps, note = await make_plan(ctx, tools, render_prompt("plan", max_steps=cfg.max_plan_steps, tool_names=tools.names))
    ctx.emit(PlanCreated([s.to_dict() for s in steps], note=note, run_id=ctx.run_id))
    done: list[Step] = []
    replans = 0
    i = 0
    while i < len(steps):
        step = steps[i]
        step.index = i
        ctx.emit(StepStarted(i, step.goal, run_id=ctx.run_id))
        ctx.conversation.add(render_prompt("step", index=i + 1, total=len(steps), steps=[s.to_dict() for s in steps]))
        step_ctx = dataclasses.replace(ctx, step=i, scratch={})
        outcome = await react_loop(step_ctx, tools, max_iterations=min(cfg.max_react_iterations, STEP_ITERATIONS), in_step=True)
        result = outcome.work_text(cfg.max_output_chars // 2)
        ok, issues = (await _check(ctx, step)) if outcome.finished else (False, "the step did not finish")
        step.status = "ok" if ok else "failed"
        step.summary = clip(outcome.final or result, 600) if ok else clip(f"{issues}. {outcome.final or result}", 600)
        ctx.emit(StepFinished(i, step.status, step.summary, run_id=ctx.run_id))
        done.append(step)
        i += 1
        if not ok and replans < cfg.max_replans:
            replans += 1
            instruction = render_prompt(
                "replan",
                failed={"index": i, "goal": step.goal, "summary": step.summary},
                max_steps=max(1, cfg.max_plan_steps - len(done)),
            )
            remaining, how = await make_plan(ctx, tools, instruction)
            steps = steps[:i] + remaining
            note = "; ".join(filter(None, [f"re-planned after step {i} failed", how]))
            ctx.emit(PlanCreated([s.to_dict() for s in steps], note=note, run_id=ctx.run_id))
    summary = "\n".join(f"Step {s.index + 1} ({s.status}): {s.goal}: {s.summary}" for s in done)
    return await stream_answer(ctx, answer_instruction(ctx, f"The steps and how they ended:\n{summary}"))
