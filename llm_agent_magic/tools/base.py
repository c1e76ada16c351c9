"""What every tool is: data (name, description, input) plus one async ``run``.

Tools live below the agents: they get what they need through ``ToolContext`` and
report progress by emitting events; they never import the agent loops.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..config import AgentConfig
from ..events import ApprovalRequested, Event, Usage
from ..exceptions import StructuredOutputError
from ..prompts import VERIFY_SCHEMA, Transcript, render_prompt

if TYPE_CHECKING:
    from ..llm import ChatResult, LLMClient
    from ..llm.client import StructuredResult
    from ..run_requests import ApprovalReply
    from ..sandbox.inside.summaries import VariableSummary
    from ..sandbox.results import ExecutionResult


class SandboxHandle(Protocol):
    """What tools may do with the session's sandbox kernel (``SandboxKernel`` is one)."""

    session_id: str

    @property
    def workspace(self) -> str: ...

    async def async_variables(self) -> list[VariableSummary]: ...

    async def async_known_variables(self) -> list[VariableSummary]: ...

    async def async_execute(self, code: str, timeout: float | None = None) -> ExecutionResult: ...


@dataclass(frozen=True)
class ToolInput:
    """What a tool takes as its ``action_input``: a name, a type and what the model should put there."""

    name: str
    description: str
    type: str = "string"


@dataclass
class ToolResult:
    """What a tool hands back: the text the model sees next, and whether the tool reached its goal."""

    observation: str
    success: bool = True
    data: dict[str, Any] = field(default_factory=dict)
    #: What the run's transcript gets instead of ``observation``, when the tool already put the details
    #: there (the coder's outputs): the model then reads them once, and its cache holds them once.
    transcript_text: str = ""


@dataclass
class ToolContext:
    """Everything a tool may use during one run."""

    llm: LLMClient
    config: AgentConfig
    emit: Callable[[Event], None]
    request: str
    run_id: str = ""
    history: list[dict[str, str]] = field(default_factory=list)
    plan_context: str = ""
    step: int | None = None
    files: list[str] = field(default_factory=list)
    sandbox: SandboxHandle | None = None
    #: Per-run memory tools share across calls (e.g. the coder's earlier attempts).
    scratch: dict[str, Any] = field(default_factory=dict)
    #: The run's conversation with the model; every call of the run goes through it (see ``ask``).
    transcript: Transcript | None = None
    #: The model for every call of this run (a ``RunRequest``'s ``model``); None: each purpose's configured one.
    model: str | None = None
    #: With approval on for the run: emits the ``ApprovalRequested`` and waits for the user's reply. None: code
    #: runs without asking.
    approve: Callable[[ApprovalRequested], Awaitable[ApprovalReply]] | None = None
    #: What the run's successful cells printed, in order (shared by a plan's steps): the answer step copies
    #: requested ``@name[value]`` values from it, and the final answer gets those it left out.
    outputs: list[str] = field(default_factory=list)
    #: Copies files of the notebook's folder that a text names (the model's code, its request to the file
    #: analyzer) into the workspace, confined like attachments; returns the paths it copied. None: no folder.
    fetch_named: Callable[[str], Awaitable[list[str]]] | None = None

    @property
    def conversation(self) -> Transcript:
        if self.transcript is None:  # a tool used on its own, outside an agent run
            self.transcript = Transcript(
                render_prompt("system", tools=[]),
                self.history,
                render_prompt("request", request=self.request, files=self.files),
                num_ctx=self.llm.config.num_ctx,
            )
        return self.transcript


class Tool(abc.ABC):
    """Subclass with ``name``, ``description``, ``input`` and ``run``: a tool is data plus one method."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    input: ClassVar[ToolInput] = ToolInput("text", "text")

    @abc.abstractmethod
    async def run(self, action_input: str, ctx: ToolContext) -> ToolResult:
        """Do the work; what the model got wrong is a ``ToolResult`` with ``success=False``, not an exception."""

    def describe(self) -> dict[str, Any]:
        """The tool as data: what prompts list and what a front end can show."""
        return {"name": self.name, "description": self.description, "input": asdict(self.input)}

    def offered(self, ctx: ToolContext) -> bool:
        """Whether the model is offered this tool in ``ctx``'s run: a tool that could only say it cannot work
        (no key, nothing to search) costs the model a call and prompt tokens for nothing."""
        return True


class ToolRegistry:
    """The tools an agent may call, by name."""

    def __init__(self, tools: list[Tool] | None = None):
        self._tools: dict[str, Tool] = {}
        for tool in tools or []:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        if not tool.name or tool.name == "finish":
            raise ValueError(f"a tool needs a name other than 'finish', got {tool.name!r}")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def describe(self) -> list[dict[str, Any]]:
        return [tool.describe() for tool in self._tools.values()]

    def offered(self, ctx: ToolContext) -> ToolRegistry:
        """The tools that can do something in ``ctx``'s run (``Tool.offered``), in the same order."""
        return ToolRegistry([tool for tool in self._tools.values() if tool.offered(ctx)])


def emit_usage(ctx: ToolContext, result: ChatResult | None) -> None:
    if result is None:
        return
    ctx.emit(
        Usage(
            prompt_tokens=result.prompt_tokens or 0,
            completion_tokens=result.completion_tokens or 0,
            duration=result.duration_ms / 1000,
            purpose=result.purpose,
            model=result.model,
            run_id=ctx.run_id,
        )
    )


async def ask(ctx: ToolContext, instruction: str, *, purpose: str, **kwargs: Any) -> ChatResult:
    """One call of the run: the transcript so far plus ``instruction``; the reply joins the transcript."""
    reply = await ctx.llm.chat(ctx.conversation.messages(instruction), purpose=purpose, model=ctx.model, **kwargs)
    await ctx.conversation.arecord(instruction, reply.content)
    emit_usage(ctx, reply)
    return reply


async def ask_structured(ctx: ToolContext, instruction: str, *, purpose: str, schema: dict[str, Any]) -> StructuredResult:
    """Like ``ask``, for a JSON reply matching ``schema`` (read defensively, repaired once)."""
    result = await ctx.llm.structured(ctx.conversation.messages(instruction), purpose=purpose, schema=schema, model=ctx.model)
    await ctx.conversation.arecord(instruction, result.raw)
    for call in result.calls:
        emit_usage(ctx, call)
    return result


@dataclass
class Verdict:
    """A ``[review]`` answer: does the code, the output or the step answer what was asked, and if not, why."""

    ok: bool
    issues: str = ""


async def review(ctx: ToolContext, instruction: str) -> Verdict | None:
    """The one "does this answer the question?" call (purpose ``verify``); None when its reply cannot be read,
    which callers treat as no reason to stop: running the code, or the next step, will tell."""
    try:
        result = await ask_structured(ctx, instruction, purpose="verify", schema=VERIFY_SCHEMA)
    except StructuredOutputError:
        return None
    ok = bool(result.value.get("answers_question", True))
    return Verdict(ok, "" if ok else str(result.value.get("issues", "")))
