"""What every tool is: data (name, description, input) plus one async ``run``.

Tools live below the agents: they get what they need through ``ToolContext`` and
report progress by emitting events; they never import the agent loops.
"""

from __future__ import annotations

import abc

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from ..config import AgentConfig
from ..events import Event, Usage

if TYPE_CHECKING:
    from ..llm import ChatResult, LLMClient


@dataclass
class ToolResult:
    """What a tool hands back: the text the model sees next, and whether the tool reached its goal."""

    observation: str
    success: bool = True
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class ToolContext:
    """Everything a tool may use during one run."""

    llm: "LLMClient"
    config: AgentConfig
    emit: Callable[[Event], None]
    request: str
    run_id: str = ""
    history: list[dict[str, str]] = field(default_factory=list)
    plan_context: str = ""
    step: int | None = None
    files: list[str] = field(default_factory=list)
    sandbox: Any = None
    #: Per-run memory tools share across calls (e.g. the coder's earlier attempts).
    scratch: dict[str, Any] = field(default_factory=dict)


class Tool(abc.ABC):
    """Subclass with ``name``, ``description``, ``input_description`` and ``run``."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    input_description: ClassVar[str] = "text"

    @abc.abstractmethod
    async def run(self, action_input: str, ctx: ToolContext) -> ToolResult:
        """Do the work; what the model got wrong is a ``ToolResult`` with ``success=False``, not an exception."""

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "description": f"{self.description} Input: {self.input_description}."}


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

    def describe(self) -> list[dict[str, str]]:
        return [tool.describe() for tool in self._tools.values()]


def emit_usage(ctx: ToolContext, result: "ChatResult | None") -> None:
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
