"""The Python coder: generate, self-verify, execute in the sandbox, and learn from failures.

One call of the tool runs this loop, at most ``max_execution_attempts`` executions:

1. generate a cell from the task and everything the model should know (conversation,
   plan, files, the sandbox's variables, earlier attempts in this run, the date);
2. review it ("does this code answer the question?", up to ``max_verification_iterations``
   rounds, regenerating with the reviewer's issues);
3. execute it in the sandbox kernel; every attempt is a ``CodeCell`` + ``CellOutput``;
4. on failure, name the error class, give the model its guidance, the variables as they
   were at the failure and every earlier attempt; when the same class repeats, ask for a
   fresh approach instead of another patch;
5. on success, read back result files and check the output is adequate; an inadequate
   output counts as a failed attempt.
"""

from __future__ import annotations

import ast
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

from ...events import CellOutput, CodeCell
from ...exceptions import StructuredOutputError, UnsafePath
from ...sandbox.confined import list_confined, read_confined
from ...sandbox.summaries import render_summaries
from ..base import Tool, ToolContext, ToolResult, emit_usage
from ...prompts import VERIFY_SCHEMA, render_prompt, tokens_of
from .errors import ErrorClass, classify_error, guidance_for

_CODE_BLOCK = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
RESULT_SUFFIXES = (".csv", ".txt", ".md", ".json", ".tsv")
ERROR_CHARS = 1500
#: Tokens kept free for the model's answer when fitting a prompt into num_ctx.
PROMPT_RESERVE_TOKENS = 2048


@dataclass
class Attempt:
    """One execution, as later prompts show it to the model."""

    attempt: int
    code: str
    outcome: str
    error: str = ""
    error_class: str = ""


def extract_code(reply: str) -> str:
    """The python block of a reply; the longest block if there are several; the reply itself if it is code."""
    blocks = [b.strip("\n") for b in _CODE_BLOCK.findall(reply)]
    if blocks:
        return max(blocks, key=len)
    text = reply.strip()
    try:
        ast.parse(text)
    except SyntaxError:
        pass
    return text


class PythonCoderTool(Tool):
    name = "python_coder"
    description = (
        "Writes Python for a task, reviews it, runs it in the sandbox kernel (variables persist between calls) "
        "and fixes it when it fails. Use it for anything that needs data, files, calculations or charts."
    )
    input_description = "a precise description of what the code must do"

    async def run(self, action_input: str, ctx: ToolContext) -> ToolResult:
        if ctx.sandbox is None:
            return ToolResult("No sandbox kernel is available in this session, so code cannot run.", success=False)
        task = action_input.strip() or ctx.request
        cfg = ctx.config
        attempts: list[Attempt] = ctx.scratch.setdefault("coder_attempts", [])
        variables = render_summaries(await ctx.sandbox.async_variables())
        code = await self._generate(task, ctx, variables, attempts, review="")
        code = await self._review(task, ctx, variables, attempts, code)

        previous_class = ""
        last_error = ""
        for execution in range(1, cfg.max_execution_attempts + 1):
            cell = CodeCell(source=code, attempt=execution, step=ctx.step, run_id=ctx.run_id)
            ctx.emit(cell)
            started = time.time()
            result = await ctx.sandbox.async_execute(code)
            if result.ok:
                output = self._output_for_model(result, started, ctx)
                issues = await self._inadequacy(task, code, output, ctx)
                if issues is None:
                    ctx.emit(self._cell_output(cell, result, ctx, final=True, failed=False))
                    attempts.append(Attempt(len(attempts) + 1, code, "succeeded"))
                    return ToolResult(
                        f"The code ran successfully (attempt {execution}).\n{output}",
                        success=True,
                        data={"code": code, "cell_id": cell.cell_id, "attempts": execution},
                    )
                error_class = guidance_for("inadequate")
                last_error = f"The output does not answer the task: {issues}\nOutput was:\n{output[:ERROR_CHARS]}"
            else:
                err = result.error or {}
                error_class = classify_error(result.status, err.get("ename", ""), err.get("evalue", ""))
                last_error = result.text_for_model(ERROR_CHARS + 500)
            ctx.emit(self._cell_output(cell, result, ctx, final=False, failed=True))
            attempts.append(Attempt(len(attempts) + 1, code, f"failed: {error_class.name}", last_error, error_class.name))
            if execution == cfg.max_execution_attempts:
                break
            rethink = error_class.name == previous_class
            previous_class = error_class.name
            code = await self._fix(task, ctx, attempts, error_class, result.variables_text(), rethink)

        return ToolResult(
            f"The code still failed after {cfg.max_execution_attempts} attempts. Last error "
            f"({attempts[-1].error_class}):\n{last_error}",
            success=False,
            data={"attempts": cfg.max_execution_attempts},
        )

    async def draft(self, task: str, ctx: ToolContext) -> str:
        """Generate and review a cell without running it (dry runs); emits its ``CodeCell`` only."""
        variables = render_summaries(await ctx.sandbox.async_variables()) if ctx.sandbox else "Variables: (unknown)"
        attempts: list[Attempt] = []
        code = await self._generate(task, ctx, variables, attempts, review="")
        code = await self._review(task, ctx, variables, attempts, code)
        ctx.emit(CodeCell(source=code, attempt=1, step=ctx.step, run_id=ctx.run_id))
        return code

    # --- model calls ----------------------------------------------------------------------
    def _common(self, task: str, ctx: ToolContext) -> dict[str, Any]:
        return {
            "task": task,
            "request": ctx.request,
            "plan_context": ctx.plan_context,
            "files": ctx.files,
        }

    async def _generate(
        self, task: str, ctx: ToolContext, variables: str, attempts: list[Attempt], review: str
    ) -> str:
        prompt = self._fitted(
            ctx,
            attempts,
            lambda shown: render_prompt(
                "code",
                **self._common(task, ctx),
                history=ctx.history[-ctx.config.history_messages :],
                variables=variables,
                attempts=shown,
                review=review,
            ),
        )
        reply = await ctx.llm.chat([{"role": "user", "content": prompt}], purpose="code")
        emit_usage(ctx, reply)
        return extract_code(reply.content)

    async def _review(
        self, task: str, ctx: ToolContext, variables: str, attempts: list[Attempt], code: str
    ) -> str:
        for _ in range(ctx.config.max_verification_iterations):
            prompt = render_prompt("verify", task=task, variables=variables, code=code)
            try:
                verdict = await ctx.llm.structured(
                    [{"role": "user", "content": prompt}], purpose="verify", schema=VERIFY_SCHEMA
                )
            except StructuredOutputError:
                return code  # an unreadable review is no reason to hold the code back; running it will tell
            for call in verdict.calls:
                emit_usage(ctx, call)
            if verdict.value.get("answers_question", True):
                return code
            code = await self._generate(task, ctx, variables, attempts, review=str(verdict.value.get("issues", "")))
        return code

    async def _fix(
        self,
        task: str,
        ctx: ToolContext,
        attempts: list[Attempt],
        error_class: ErrorClass,
        variables: str,
        rethink: bool,
    ) -> str:
        prompt = self._fitted(
            ctx,
            attempts,
            lambda shown: render_prompt(
                "fix",
                **self._common(task, ctx),
                attempts=shown,
                error_class=error_class.name,
                guidance=error_class.guidance,
                variables=variables,
                rethink=rethink,
            ),
        )
        reply = await ctx.llm.chat([{"role": "user", "content": prompt}], purpose="fix")
        emit_usage(ctx, reply)
        return extract_code(reply.content)

    @staticmethod
    def _fitted(ctx: ToolContext, attempts: list[Attempt], render: Callable[[list[Attempt]], str]) -> str:
        """The prompt with as many earlier attempts as fit the context window, oldest dropped first.

        The last two attempts always stay: the fix and rethink prompts are about them.
        """
        budget = ctx.llm.config.num_ctx - PROMPT_RESERVE_TOKENS
        shown = list(attempts)
        prompt = render(shown)
        while len(shown) > 2 and tokens_of(prompt) > budget:
            shown = shown[1:]
            prompt = render(shown)
        return prompt

    async def _inadequacy(self, task: str, code: str, output: str, ctx: ToolContext) -> str | None:
        """None when the output answers the task, else what is missing."""
        prompt = render_prompt("adequacy", task=task, code=code, output=output)
        try:
            verdict = await ctx.llm.structured(
                [{"role": "user", "content": prompt}], purpose="verify", schema=VERIFY_SCHEMA
            )
        except StructuredOutputError:
            return None
        for call in verdict.calls:
            emit_usage(ctx, call)
        if verdict.value.get("answers_question", True):
            return None
        return str(verdict.value.get("issues", "")) or "the reviewer found the output inadequate"

    # --- outputs ----------------------------------------------------------------------------
    def _output_for_model(self, result: Any, started: float, ctx: ToolContext) -> str:
        limit = ctx.config.max_output_chars
        text = result.text_for_model(limit)
        files = self._result_files(ctx.sandbox.workspace, started, max(500, limit - len(text)))
        return text + (f"\n{files}" if files else "")

    @staticmethod
    def _result_files(workspace: str, since: float, budget: int) -> str:
        """Text files the cell wrote, read back (bounded): the model judges results it can see.

        The workspace is the sandbox's: links, FIFOs and the like are named, never read (a link could
        point at this process's own environment, a FIFO would block the run forever).
        """
        parts: list[str] = []
        try:
            entries = list_confined(workspace)
        except OSError:
            return ""
        for entry in entries:
            if not entry.name.lower().endswith(RESULT_SUFFIXES) or entry.mtime < since - 1:
                continue
            room = budget - sum(len(p) for p in parts)
            if room < 200:
                parts.append(f"(more result files not shown: {entry.name})")
                break
            if entry.refused:
                parts.append(f"({entry.name} was not read: {entry.refused})")
                continue
            try:
                data = read_confined(workspace, entry.relpath, 4 * room, truncate=True)  # UTF-8: <= 4 bytes a character
            except UnsafePath as exc:  # replaced by a link or a FIFO since it was listed
                parts.append(f"({entry.name} was not read: {exc.reason})")
                continue
            except OSError:
                continue
            text = data.decode("utf-8", errors="replace")
            if len(text) > room or len(data) < entry.size:
                kept = text[: room - 60]
                text = kept + f"\n... [{max(0, entry.size - len(kept.encode()))} bytes cut]"
            parts.append(f"Result file {entry.name} ({entry.size} bytes):\n{text}")
        return "\n".join(parts)

    @staticmethod
    def _cell_output(cell: CodeCell, result: Any, ctx: ToolContext, *, final: bool, failed: bool) -> CellOutput:
        return CellOutput(
            cell_id=cell.cell_id,
            outputs=result.outputs,
            status=result.status,
            duration=result.duration,
            final=final,
            failed=failed,
            run_id=ctx.run_id,
        )
