"""The Python coder: generate, self-verify, execute in the sandbox, and learn from failures.

One call of the tool runs this loop, at most ``max_execution_attempts`` executions:

1. generate a cell from the task and everything the model should know: the run's transcript
   (conversation, request, files, the date, plan, earlier attempts and their outputs) and
   the sandbox's variables;
2. with ``review_before_run`` on, review it ("does this code answer the question?", up to
   ``max_verification_iterations`` rounds, regenerating with the reviewer's issues);
3. execute it in the sandbox kernel; every attempt is a ``CodeCell`` + ``CellOutput``;
4. on failure, name the error class, give the model its guidance, the variables as they
   were at the failure and every earlier attempt; when the same class repeats, ask for a
   fresh approach instead of another patch;
5. on success, read back result files; when the output is empty, or carries none of the values the
   request's answer format names, ask whether it is adequate; an inadequate output counts as a
   failed attempt.

The code prompt carries the request's constraints and answer format verbatim (``answer_format.py``).

With approval on for the run (``ctx.approve``), every execution, first attempts and fixes alike,
waits for the user first: run executes the cell as generated, edit executes the user's code instead
(the cell is sent again with the edited source), skip executes nothing and ends this call with an
observation saying so (no fix follows a cell the user chose not to run).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from ... import answer_format
from ...events import ApprovalRequested, CellOutput, CodeCell
from ...exceptions import UnsafePath
from ...prompts import render_prompt
from ...sandbox.inside.confined import list_confined, read_confined
from ...sandbox.inside.summaries import render_summaries
from ...sandbox.results import ExecutionResult
from ...text import fenced_blocks
from ..base import Tool, ToolContext, ToolInput, ToolResult, ask, review
from .errors import FailureKind, classify_error, error_text, guidance_for

RESULT_SUFFIXES = (".csv", ".txt", ".md", ".json", ".tsv")
#: How many times the model is asked again when its fix is code that already failed; if it still is, the coder
#: call ends as failed without running that code again.
MAX_REPEATS_ASKED = 2
ERROR_CHARS = 1500


@dataclass
class Attempt:
    """One execution, as later prompts show it to the model."""

    attempt: int
    code: str
    outcome: str
    error: str = ""
    error_class: str = ""


def _same_code(code: str) -> str:
    """Code as compared with earlier attempts: the same lines, ignoring blank lines and trailing spaces."""
    return "\n".join(line.rstrip() for line in code.strip().splitlines() if line.strip())


def extract_code(reply: str) -> str:
    """The python block of a reply; the longest block if there are several; the reply itself if it is code."""
    blocks = [b.strip("\n") for b in fenced_blocks(reply, ("python", "py", "python3"))]
    if blocks:
        return max(blocks, key=len)
    return reply.strip()


def entry_state(entry: Any) -> tuple[int, int]:
    return entry.mtime_ns, entry.size


def workspace_state(workspace: str) -> dict[str, tuple[int, int]]:
    """Name -> (mtime, size) of the entries in the workspace's top folder, listed without following links."""
    try:
        return {e.relpath: entry_state(e) for e in list_confined(workspace)}
    except OSError:
        return {}


def needs_adequacy_check(printed: str, request: str) -> bool:
    """Whether a cell that ran is worth an adequacy call: it printed nothing, or none of the values the
    request's answer format names. Anything else the answer step judges, with the output in front of it."""
    if not printed.strip():
        return True
    wanted = answer_format.requested(request)
    return bool(wanted) and not answer_format.carries_any(printed, wanted.names)


class PythonCoderTool(Tool):
    name = "python_coder"
    description = (
        "Writes Python for a task, reviews it, runs it in the sandbox kernel (variables persist between calls) "
        "and fixes it when it fails. Use it for anything that needs data, files, calculations or charts."
    )
    input = ToolInput("task", "a precise description of what the code must do")

    async def run(self, action_input: str, ctx: ToolContext) -> ToolResult:
        if ctx.sandbox is None:
            return ToolResult("No sandbox kernel is available in this session, so code cannot run.", success=False)
        task = action_input.strip() or ctx.request
        cfg = ctx.config
        attempts: list[Attempt] = ctx.scratch.setdefault("coder_attempts", [])
        variables = render_summaries(await ctx.sandbox.async_variables())
        code = await self._generate(task, ctx, variables=variables)
        code = await self._review(task, ctx, code)

        previous_class = ""
        last_error = ""
        failed_code: dict[str, int] = {}  # code that failed (compared as _same_code) -> its attempt
        for execution in range(1, cfg.max_execution_attempts + 1):
            cell = CodeCell(source=code, attempt=execution, step=ctx.step, run_id=ctx.run_id)
            ctx.emit(cell)
            if ctx.approve is not None:
                decided = await self._approval(cell, task, ctx, previous_class)
                if decided is None:
                    attempts.append(Attempt(len(attempts) + 1, code, "skipped by the user"))
                    skipped = render_prompt("approval", action="skip", attempt=execution, code=code)
                    return ToolResult(skipped, success=False, data={"skipped": True, "attempts": execution})
                cell, code = decided, decided.source
            if ctx.fetch_named is not None:  # a file of the notebook's folder the code opens is copied in first
                await ctx.fetch_named(code)
            before = workspace_state(ctx.sandbox.workspace)
            result = await ctx.sandbox.async_execute(code)
            if result.ok:
                output = self._output_for_model(result, before, ctx)
                ctx.conversation.add(render_prompt("execution", ok=True, attempt=execution, output=output, error_class=""))
                printed = result.output_text()
                issues = await self._inadequacy(task, ctx) if needs_adequacy_check(printed, ctx.request) else None
                if issues is None:
                    ctx.outputs.append(printed)
                    ctx.emit(self._cell_output(cell, result, ctx, final=True, failed=False))
                    attempts.append(Attempt(len(attempts) + 1, code, "succeeded"))
                    return ToolResult(
                        f"The code ran successfully (attempt {execution}).\n{output}",
                        success=True,
                        data={"code": code, "cell_id": cell.cell_id, "attempts": execution},
                        transcript_text=f"The code ran successfully (attempt {execution}); its output is above.",
                    )
                error_class = guidance_for("inadequate")
                last_error = f"The output does not answer the task: {issues}\nOutput was:\n{output[:ERROR_CHARS]}"
            else:
                err = result.error or {}
                error_class = classify_error(result.status, err.get("ename", ""), err.get("evalue", ""))
                last_error = error_text(result, ERROR_CHARS + 500)  # its own frames, not the libraries'
                ctx.conversation.add(
                    render_prompt("execution", ok=False, attempt=execution, output=last_error, error_class=error_class.name)
                )
            ctx.emit(self._cell_output(cell, result, ctx, final=False, failed=True))
            attempts.append(Attempt(len(attempts) + 1, code, f"failed: {error_class.name}", last_error, error_class.name))
            if execution == cfg.max_execution_attempts:
                break
            rethink = error_class.name == previous_class
            previous_class = error_class.name
            failed_code[_same_code(code)] = execution
            code = await self._fix(task, ctx, error_class, rethink)
            for _ in range(MAX_REPEATS_ASKED):  # the same code would fail the same way: never run it again
                repeated = failed_code.get(_same_code(code))
                if repeated is None:
                    break
                code = await self._fix(task, ctx, error_class, True, repeated=repeated)
            repeated = failed_code.get(_same_code(code))
            if repeated is not None:
                return ToolResult(
                    f"The code failed and every fix the model wrote was the code of attempt {repeated} again, which "
                    f"had failed; it was not run again. Last error ({attempts[-1].error_class}):\n{last_error}",
                    success=False,
                    data={"attempts": execution, "repeated": repeated},
                )

        return ToolResult(
            f"The code still failed after {cfg.max_execution_attempts} attempts. Last error "
            f"({attempts[-1].error_class}):\n{last_error}",
            success=False,
            data={"attempts": cfg.max_execution_attempts},
        )

    async def _approval(self, cell: CodeCell, task: str, ctx: ToolContext, failed_class: str) -> CodeCell | None:
        """The cell to execute as the user decided (edited, or as it was), or None when they skipped it."""
        assert ctx.approve is not None
        reason = f"attempt {cell.attempt - 1} failed ({failed_class})" if cell.attempt > 1 and failed_class else ""
        reply = await ctx.approve(
            ApprovalRequested(
                cell.cell_id,
                cell.source,
                attempt=cell.attempt,
                step=cell.step,
                task=task,
                reason=reason,
                tool=self.name,
                timeout=ctx.config.approval_timeout,
                run_id=ctx.run_id,
            )
        )
        if reply.action == "skip":
            ctx.emit(CellOutput(cell.cell_id, [], status="skipped", run_id=ctx.run_id))
            return None
        if reply.action == "edit" and reply.source.strip() != cell.source.strip():
            edited = replace(cell, source=reply.source, approval="edited", original_source=cell.source, ts=time.time())
            ctx.conversation.add(render_prompt("approval", action="edit", attempt=cell.attempt, code=reply.source))
        else:  # run, or an edit that changed nothing
            edited = replace(cell, approval="approved", ts=time.time())
        ctx.emit(edited)  # the same cell id again: front ends replace the cell they show
        return edited

    async def draft(self, task: str, ctx: ToolContext) -> str:
        """Generate and review a cell without running it (dry runs); emits its ``CodeCell`` only."""
        # Nothing runs in a dry run: a session with no kernel and nothing to restore starts none to say so.
        variables = render_summaries(await ctx.sandbox.async_known_variables()) if ctx.sandbox else "Variables: (unknown)"
        code = await self._generate(task, ctx, variables=variables)
        code = await self._review(task, ctx, code)
        ctx.emit(CodeCell(source=code, attempt=1, step=ctx.step, run_id=ctx.run_id))
        return code

    # --- model calls: each one a turn of the run's transcript ---------------------------------------
    async def _generate(self, task: str, ctx: ToolContext, *, variables: str = "", review: str = "") -> str:
        wanted = answer_format.requested(ctx.request)
        instruction = render_prompt(
            "code",
            task=task,
            variables=variables,
            review=review,
            constraints=answer_format.stated_constraints(ctx.request),
            answer_format=wanted.text,
            names=wanted.names,
        )
        reply = await ask(ctx, instruction, purpose="code")
        return extract_code(reply.content)

    async def _review(self, task: str, ctx: ToolContext, code: str) -> str:
        if not ctx.config.review_before_run:
            return code
        for _ in range(ctx.config.max_verification_iterations):
            verdict = await review(ctx, render_prompt("verify", task=task))
            if verdict is None or verdict.ok:
                return code
            code = await self._generate(task, ctx, review=verdict.issues)
        return code

    async def _fix(self, task: str, ctx: ToolContext, error_class: FailureKind, rethink: bool, repeated: int = 0) -> str:
        """A new cell after a failure; ``repeated``: the model's last fix was attempt N's failed code again."""
        instruction = render_prompt(
            "fix",
            task=task,
            error_class=error_class.name,
            guidance=error_class.guidance,
            rethink=rethink,
            names=answer_format.requested(ctx.request).names,
            repeated=repeated,
        )
        reply = await ask(ctx, instruction, purpose="fix")
        return extract_code(reply.content)

    async def _inadequacy(self, task: str, ctx: ToolContext) -> str | None:
        """None when the output just added to the transcript answers the task, else what is missing."""
        verdict = await review(ctx, render_prompt("adequacy", task=task))
        if verdict is None or verdict.ok:
            return None
        return verdict.issues or "the reviewer found the output inadequate"

    # --- outputs ----------------------------------------------------------------------------
    def _output_for_model(self, result: ExecutionResult, before: dict[str, tuple[int, int]], ctx: ToolContext) -> str:
        assert ctx.sandbox is not None  # run() returns before executing anything without a sandbox
        limit = ctx.config.max_output_chars
        text = result.text_for_model(limit)
        files = self._result_files(ctx.sandbox.workspace, before, max(500, limit - len(text)))
        return text + (f"\n{files}" if files else "")

    @staticmethod
    def _result_files(workspace: str, before: dict[str, tuple[int, int]], budget: int) -> str:
        """Text files the cell wrote or changed, read back (bounded): the model judges results it can see.

        Written or changed means: not in ``before`` (the workspace as it was when the cell started), or with
        another size or modification time, so that what the model is shown never depends on timing. The
        workspace is the sandbox's: links, FIFOs and the like are named, never read (a link could point at
        this process's own environment, a FIFO would block the run forever).
        """
        parts: list[str] = []
        try:
            entries = list_confined(workspace)
        except OSError:
            return ""
        for entry in entries:
            if not entry.name.lower().endswith(RESULT_SUFFIXES) or before.get(entry.relpath) == entry_state(entry):
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
