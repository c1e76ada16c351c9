"""Events into pixels: the live view of a run and its final outputs, as MIME bundles.

A finished ``%%agent`` cell has two outputs, in this order (front ends rely on it; ``cells.py`` says more):
``answer_data`` (the answer as sanitized ``text/html`` + ``text/plain``) and ``bundle_data`` (the generated
cells as the ``application/vnd.llm-agent.cells+json`` bundle, with an HTML rendering for front ends that do
not know it, and a one-line ``text/plain``). A front end that turns the bundle into real cells
drops the second output's rendering and keeps its ``text/plain``, so nothing is shown twice.

Pure functions of the events (no IPython, no clocks), so the same events always give the
same final outputs: example notebooks are checked with nbval. Ids (run, cell) appear only
inside the cells bundle JSON, never in text, markdown or HTML.

These outputs are shown in the user's live notebook, where JupyterLab trusts them. What they
hold came from the model, which read the sandbox's outputs: no output holds ``text/markdown``;
markdown is rendered and sanitized here (``safe_text.markdown_data``) and every interpolation
into HTML is escaped or sanitized.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..cells import CELLS_MIME, render_html
from ..events import (
    ApprovalRequested,
    CellOutput,
    Classified,
    CodeCell,
    ContextGathered,
    Error,
    Event,
    PlanCreated,
    RunFinished,
    StepFinished,
    StepStarted,
    Thought,
    Token,
    ToolCall,
    Waiting,
)
from ..run_summary import RunSummary
from ..safe_text import markdown_data
from ..text import code_fence

MODE_NAMES = {"chat": "chat", "react": "ReAct", "plan_execute": "plan and execute"}
STEP_MARKS = {"pending": "○", "running": "▶", "ok": "✓", "error": "✗", "skipped": "–"}
STOPPED = "Stopped: the run was interrupted before it finished."
MAX_LIVE_CODE_LINES = 40


@dataclass
class LiveView:
    """What a run looks like while it goes: the state the events so far describe."""

    dry_run: bool = False
    mode: str = ""
    reason: str = ""
    steps: list[dict[str, str]] = field(default_factory=list)
    tool: str = ""
    tool_input: str = ""
    thought: str = ""
    code: str = ""
    attempt: int = 0
    code_state: str = ""
    tokens: list[str] = field(default_factory=list)
    errors: list[Error] = field(default_factory=list)
    stopping: bool = False
    finished: str = ""
    waiting: Waiting | None = None
    #: "Context: 12 cells, 40 files, 3 variables": what the model was shown of the notebook.
    context: str = ""

    def apply(self, event: Event) -> None:
        # Whatever the run does after waiting means it has the session now.
        self.waiting = event if isinstance(event, Waiting) else None
        if isinstance(event, (PlanCreated, StepStarted, StepFinished)):
            self._apply_plan(event)
        elif isinstance(event, (CodeCell, ApprovalRequested, CellOutput)):
            self._apply_code(event)
        elif isinstance(event, ContextGathered):
            self.context = event.summary
        elif isinstance(event, Classified):
            self.mode, self.reason = event.mode, event.reason
        elif isinstance(event, Thought):
            self.thought = event.text
        elif isinstance(event, ToolCall):
            self.tool, self.tool_input = event.tool, event.input
        elif isinstance(event, Token):
            self.tokens.append(event.text)
        elif isinstance(event, Error):
            self.errors.append(event)
        elif isinstance(event, RunFinished):
            self.finished = event.status

    def _apply_plan(self, event: PlanCreated | StepStarted | StepFinished) -> None:
        if isinstance(event, PlanCreated):
            self.steps = [{"goal": str(s.get("goal", "")), "state": "pending"} for s in event.steps]
        elif isinstance(event, StepStarted):
            if 0 <= event.index < len(self.steps):
                self.steps[event.index]["state"] = "running"
            self.tool = self.tool_input = self.thought = self.code = ""  # the last step's work is done
        elif 0 <= event.index < len(self.steps):
            self.steps[event.index]["state"] = event.status if event.status in STEP_MARKS else "error"

    def _apply_code(self, event: CodeCell | ApprovalRequested | CellOutput) -> None:
        if isinstance(event, CodeCell):
            self.code, self.attempt = event.source, event.attempt
            self.code_state = "drafted" if self.dry_run else ("edited" if event.approval == "edited" else "running")
        elif isinstance(event, ApprovalRequested):
            self.code_state = "waiting"
        elif event.status == "skipped":
            self.code_state = "skipped"
        else:
            self.code_state = "failed" if event.failed or event.status != "ok" else "ok"

    def markdown(self) -> str:
        parts = [self._head()]
        if self.context:
            parts.append(f"_{self.context}_")
        if self.waiting is not None:
            parts.append(
                f"_Waiting for {self.waiting.holder} to finish: this session's sandbox runs one thing at "
                f"a time (giving up after {self.waiting.timeout:g} s)._"
            )
        if self.steps:
            lines = [f"{i + 1}. {STEP_MARKS[s['state']]} {s['goal']}" for i, s in enumerate(self.steps)]
            parts.append("**Plan**\n\n" + "\n".join(lines))
        if self.tokens:
            parts.append("".join(self.tokens))
        else:
            parts += self._work()
        for error in self.errors:
            parts.append(f"> **{error.kind}**: {error.message}")
        if self.stopping and not self.finished:
            parts.append("_Stopping…_")
        return "\n\n".join(parts)

    def _head(self) -> str:
        head = "**Agent**"
        if self.mode:
            head += f" · {MODE_NAMES.get(self.mode, self.mode)}"
            if self.reason:
                head += f" — {self.reason}"
        elif self.waiting is not None:
            head += " · waiting for the session…"
        else:
            head += " · choosing how to answer…"
        return head

    def _work(self) -> list[str]:
        """The step under way, until the answer streams: its thought, its tool, its code and how that went."""
        parts = []
        if self.thought:
            parts.append(f"_{self.thought}_")
        if self.tool:
            parts.append(f"Using `{self.tool}`: {self.tool_input}")
        if self.code:
            lines = self.code.rstrip().splitlines()
            shown = "\n".join(lines[-MAX_LIVE_CODE_LINES:])
            state = {
                "running": "running…",
                "ok": "done",
                "failed": "failed",
                "drafted": "drafted, not run",
                "waiting": "waiting for your approval",
                "edited": "edited by you, running…",
                "skipped": "skipped by you, not run",
            }
            fenced = code_fence(shown.rstrip(), "python")
            parts.append(f"Attempt {self.attempt} ({state.get(self.code_state, '')})\n\n{fenced}")
        return parts

    def display_data(self) -> dict[str, Any]:
        return markdown_data(self.markdown())


# --- final outputs --------------------------------------------------------------------------------


def _attempts(events: Iterable[Event]) -> list[tuple[CodeCell, CellOutput | None]]:
    """Each cell once, in the order cells first appeared, as its last ``CodeCell`` says (an approved or
    edited cell is sent again with the same id)."""
    outputs = {e.cell_id: e for e in events if isinstance(e, CellOutput)}
    cells: dict[str, CodeCell] = {}
    for e in events:
        if isinstance(e, CodeCell):
            cells[e.cell_id] = e
    return [(cell, outputs.get(cell_id)) for cell_id, cell in cells.items()]


def _errors_markdown(summary: RunSummary) -> str:
    return "\n\n".join(f"> **{e.kind}**: {e.message}" for e in summary.errors)


def answer_data(events: list[Event], *, dry_run: bool = False) -> dict[str, Any]:
    """What replaces the live view when the run is over: the answer (or why there is none). A run stopped while
    its answer streamed keeps the text that had arrived (as the side panel does)."""
    summary = RunSummary.of(events)
    status, answer = summary.status(unfinished="cancelled"), summary.answer or ""
    if status == "cancelled" and not answer:
        answer = summary.streamed
    parts = []
    if dry_run:
        parts += [code_fence(cell.source.rstrip(), "python") for cell, _ in _attempts(events)]
    if status == "cancelled":
        parts.append("**Stopped**: the run was interrupted before it finished.")
    elif status == "error":
        parts.append("**The agent could not finish this request.**")
    if answer:
        parts.append(answer)
    errors = _errors_markdown(summary)
    if errors:
        parts.append(errors)
    text = "\n\n".join(parts)
    plain = "\n\n".join([STOPPED, answer] if answer else [STOPPED]) if status == "cancelled" else text
    return markdown_data(text, plain)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def summary_text(bundle: dict[str, Any], events: list[Event], dry_run: bool = False) -> str:
    """One short plain line about the run: cells, failures and status (no ids, no times)."""
    cells = bundle.get("cells", [])
    statuses = [c.get("metadata", {}).get("llm_agent", {}).get("status") for c in cells]
    failed, skipped = statuses.count("failed"), statuses.count("skipped")
    unfinished = sum(1 for _, out in _attempts(events) if out is None)
    parts = []
    if cells:
        notes = [_count(n, word) for n, word in ((failed, "failed attempt"), (skipped, "skipped cell")) if n]
        parts.append(_count(len(cells), "generated cell") + (f" ({', '.join(notes)})" if notes else ""))
    hidden = sum(1 for _, out in _attempts(events) if out is not None and out.failed) - failed
    if hidden > 0:  # AgentConfig.include_failed_cells off: they are in the run's stored events only
        parts.append(_count(hidden, "failed attempt") + " not written as cells")
    if unfinished and dry_run:
        parts.append(_count(unfinished, "drafted cell") + ", nothing was run")
    elif unfinished:
        parts.append(_count(unfinished, "cell") + " stopped before it finished")
    what = ", ".join(parts) or "no code was run"
    errors = bundle.get("errors", [])
    if bundle.get("status") == "error" and errors:  # "failed: FileNotFoundError: [Errno 2] ...", one line
        detail = str(errors[-1].get("message", "")).strip().split("\n")[0]
        detail = detail if len(detail) <= 100 else detail[:99] + "…"
        return f"llm-agent: {what}; run failed: {errors[-1].get('kind', 'Error')}" + (f": {detail}" if detail else "")
    return f"llm-agent: {what}; run {bundle.get('status', 'unknown')}"


def bundle_data(
    events: list[Event], bundle: dict[str, Any], include_failed: bool = True, dry_run: bool = False
) -> dict[str, Any]:
    """The second output: the generated cells, for people (HTML) and for front ends (the bundle)."""
    # The answer is the output just before this one; here only the cells, so nothing shows twice.
    what = "Drafted cell" if dry_run else "Stopped cell"
    why = "not run" if dry_run else "stopped before it finished"
    drafted = "".join(
        f"<details open><summary>{what}, attempt {int(cell.attempt)} ({why})</summary>"
        f'<pre><code class="language-python">{html.escape(cell.source)}</code></pre></details>'
        for cell, output in _attempts(events)
        if output is None
    )
    summary = summary_text(bundle, events, dry_run)
    body = render_html(bundle) + drafted or f"<p>{html.escape(summary)}</p>"
    return {
        "text/html": f'<div class="llm-agent-cells">{body}</div>',
        "text/plain": summary,
        CELLS_MIME: bundle,
    }


# --- tables for the line magics ----------------------------------------------------------------------


def table_data(headers: list[str] | None, rows: list[list[Any]], empty: str = "(none)") -> dict[str, Any]:
    """A small table as HTML and aligned plain text; ``headers=None`` for a two-column key/value list."""
    if not rows:
        return {"text/plain": empty, "text/html": f"<p>{html.escape(empty)}</p>"}
    cells = [[str(c) for c in row] for row in rows]
    ncols = len(cells[0])
    widths = [max(len(r[i]) for r in cells + ([list(headers)] if headers else [])) for i in range(ncols)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)).rstrip()] if headers else []
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells]
    head = "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr></thead>" if headers else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells)
    return {"text/plain": "\n".join(lines), "text/html": f"<table>{head}<tbody>{body}</tbody></table>"}
