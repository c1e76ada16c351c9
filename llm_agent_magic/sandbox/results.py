"""What one execution in the sandbox produced: nbformat outputs, status, variables, and text for the model."""

from __future__ import annotations

import signal
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from llm_agent_magic.text import clip

from .collector import OutputCollector, OutputLimits, strip_ansi
from .inside.summaries import VariableSummary, render_summaries

__all__ = [
    "ExecutionResult",
    "OutputCollector",
    "OutputLimits",
    "describe_death",
    "render_outputs",
    "strip_ansi",
    "truncate_middle",
]

Status = Literal["ok", "error", "timeout", "died"]
VARIABLES_BUDGET = 2000


def render_outputs(outputs: list[dict[str, Any]]) -> str:
    """Plain-text rendering of nbformat outputs (what a reader of the cell would see)."""
    parts: list[str] = []
    for out in outputs:
        kind = out["output_type"]
        if kind == "stream":
            parts.append(out["text"].rstrip("\n") if out["name"] == "stdout" else "[stderr]\n" + out["text"].rstrip("\n"))
        elif kind == "error":
            tb = "\n".join(out.get("traceback") or [])
            parts.append(tb or f"{out['ename']}: {out['evalue']}")
        else:
            data = out.get("data", {})
            text = data.get("text/plain", "")
            images = [m for m in data if m.startswith("image/")]
            if images:
                parts.append(f"[{images[0]} image{': ' + text if text else ''}]")
            elif text:
                parts.append(("Out: " if kind == "execute_result" else "") + text)
            elif data:
                parts.append(f"[{', '.join(data)} output]")
    return "\n".join(p for p in parts if p)


def truncate_middle(text: str, limit: int, note: str = "") -> str:
    """``text`` cut to about ``limit`` characters, keeping its start and end and saying what was cut."""
    # Sandbox output has always said "truncated" (what the model and the tests read), other clipped text "cut".
    return clip(text, limit, note, word="truncated")


@dataclass
class ExecutionResult:
    """One execution in the sandbox.

    ``status`` is "ok", "error" (the code raised), "timeout" (it ran too long and was interrupted, or the kernel
    was restarted) or "died" (the kernel process ended; it was restarted and variables restored).
    """

    status: Status
    outputs: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    execution_count: int | None = None
    variables: list[VariableSummary] = field(default_factory=list)
    variables_omitted: int = 0
    snapshot: dict[str, Any] | None = None
    restored: list[str] = field(default_factory=list)
    not_restored: dict[str, str] = field(default_factory=dict)
    message: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    full_output_path: str | None = None
    max_output_chars: int = 8000

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def error(self) -> dict[str, Any] | None:
        """The error output (ename, evalue, traceback), if the code raised."""
        out: dict[str, Any]  # mypy reads reversed() of a list of dicts as Any
        for out in reversed(self.outputs):
            if out["output_type"] == "error":
                return out
        return None

    @property
    def stdout(self) -> str:
        return "".join(o["text"] for o in self.outputs if o["output_type"] == "stream" and o["name"] == "stdout")

    @property
    def stderr(self) -> str:
        return "".join(o["text"] for o in self.outputs if o["output_type"] == "stream" and o["name"] == "stderr")

    def output_text(self) -> str:
        """All outputs as plain text, untruncated."""
        text = render_outputs(self.outputs)
        if self.message:
            text = (text + "\n" if text else "") + f"[sandbox] {self.message}"
        return text

    def variables_text(self, max_chars: int = VARIABLES_BUDGET) -> str:
        return render_summaries(self.variables, self.variables_omitted, max_chars)

    def output_budget(self, limit: int) -> tuple[str, int]:
        """The variables text and the characters left for outputs within ``limit``."""
        variables = self.variables_text(min(VARIABLES_BUDGET, max(200, limit // 4)))
        return variables, max(200, limit - len(variables) - len(f"Status: {self.status}") - 2)

    def text_for_model(self, limit: int | None = None) -> str:
        """Status, outputs and variables in about ``limit`` characters (default: ``max_output_chars``).

        Long outputs keep their start and end and say how much was cut and where the whole output is.
        """
        limit = self.max_output_chars if limit is None else limit
        variables, budget = self.output_budget(limit)
        where = f"full output in {self.full_output_path}" if self.full_output_path else ""
        body = truncate_middle(self.output_text() or "(no output)", budget, where)
        return f"Status: {self.status}\n{body}\n{variables}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["variables"] = [v.to_dict() for v in self.variables]
        return data


_MEMORY_HINTS = ("MemoryError", "Cannot allocate memory", "bad_alloc", "out of memory")


def describe_death(returncode: int | None, *, wrapped: bool, evidence: str, memory_limit_mb: int, cpu_time_limit: int) -> str:
    """Plain words for why the kernel process ended.

    ``wrapped``: the process was bubblewrap, which reports a signal death of its child as 128 + signal.
    ``evidence``: the kernel's log and last outputs, searched for signs of running out of memory.
    """
    sig = None
    if returncode is not None:
        if returncode < 0:
            sig = -returncode
        elif returncode > 128 and wrapped:
            sig = returncode - 128
    if any(hint in evidence for hint in _MEMORY_HINTS):
        return f"the sandbox ran out of its {memory_limit_mb} MB memory limit" + (f" (signal {sig})" if sig else "")
    if sig == getattr(signal, "SIGXCPU", -1):
        return f"the sandbox used up its CPU time limit ({cpu_time_limit} s)"
    if sig == signal.SIGSEGV:
        return "the sandbox kernel crashed (segmentation fault, signal 11)"
    if sig is not None:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = "signal"
        return f"the sandbox kernel was killed ({name}, signal {sig})"
    if returncode is not None:
        return f"the sandbox kernel exited (exit code {returncode})"
    return "the sandbox kernel stopped unexpectedly"
