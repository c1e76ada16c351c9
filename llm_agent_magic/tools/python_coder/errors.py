"""Name what went wrong with a cell, say what usually fixes that kind of failure, and show the model the
frames of its own code (``error_text``).

The guidance itself is prompt text, so it lives beside the templates, in ``error_guidance.md``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...prompts import prompt_sections
from ...sandbox.results import ExecutionResult, render_outputs, truncate_middle


@dataclass(frozen=True)
class FailureKind:
    name: str
    guidance: str


_BY_ENAME = {
    "IndexError": "index_error",
    "KeyError": "key_error",
    "TypeError": "type_error",
    "FileNotFoundError": "file_not_found",
    "JSONDecodeError": "json_decode",
    "ValueError": "value_error",
    "AttributeError": "attribute_error",
    "NameError": "name_error",
    "UnboundLocalError": "name_error",
    "ImportError": "import_error",
    "ModuleNotFoundError": "import_error",
    "ZeroDivisionError": "zero_division",
    "UnicodeDecodeError": "unicode_decode",
    "PermissionError": "permission",
    "MemoryError": "memory",
    "SyntaxError": "syntax_error",
    "IndentationError": "syntax_error",
    "TimeoutError": "timeout",
}


def classify_error(status: str, ename: str = "", evalue: str = "") -> FailureKind:
    """The class of a failed execution, from its status and the exception's name and message."""
    if status in ("timeout", "died"):
        name = status
    elif ename == "AttributeError" and "'NoneType' object has no attribute" in evalue:
        name = "none_attribute"
    elif ename in ("ValueError", "JSONDecodeError") and ("Expecting value" in evalue or "JSON" in evalue):
        name = "json_decode"
    else:
        name = _BY_ENAME.get(ename, "other")
    return guidance_for(name)


def guidance_for(name: str) -> FailureKind:
    """The class ``name`` with its guidance (``prompts/templates/error_guidance.md``)."""
    return FailureKind(name, prompt_sections("error_guidance")[name])


#: About how much of a traceback the model is shown: its own frames and the exception, not pandas' internals.
TRACEBACK_CHARS = 800
#: Most traceback items (frames, separators) looked at, and characters of each: sandbox text, bounded.
_MAX_ITEMS = 200
_MAX_ITEM_CHARS = 4000
#: Where IPython names the user's cell as a frame (current and older spellings, and plain ``exec``).
_USER_FRAMES = ("Cell In[", "Input In [", 'File "<ipython-input', 'File "<string>"')


def _frame_lines(item: str) -> list[str]:
    """A user frame in a few lines: its header, the line before the failing one and the failing one (``---->``)."""
    lines = item.strip("\n").splitlines()
    arrow = next((i for i, line in enumerate(lines) if line.lstrip().startswith(("-->", "->", "---->"))), None)
    if arrow is None:  # e.g. a SyntaxError: header, the line, the caret, the message
        return [line[:200] for line in lines[:5]]
    return [lines[0][:200]] + [line[:200] for line in lines[max(1, arrow - 1) : arrow + 1]]


def traceback_for_model(error: dict[str, Any], limit: int = TRACEBACK_CHARS) -> str:
    """The frames of the user's code and the final exception line of an error output, in about ``limit``
    characters; library frames are counted, not shown (they pushed the user's frame out of a clipped middle).

    The traceback is sandbox text: read with string methods only, item by item, each bounded.
    """
    items = [str(item)[:_MAX_ITEM_CHARS] for item in (error.get("traceback") or [])[:_MAX_ITEMS]]
    final = f"{str(error.get('ename', 'Error'))[:100]}: {str(error.get('evalue', ''))[:300]}".rstrip(": ")
    shown: list[str] = []
    dropped = 0
    for item in items:
        head = item.lstrip()
        if head.startswith(_USER_FRAMES):
            frame = "\n".join(_frame_lines(item))
            if frame not in shown:
                shown.append(frame)
        elif head.startswith("File "):
            dropped += 1
    note = f" ({dropped} library frame{'s' if dropped != 1 else ''} left out)" if dropped else ""
    body = "\n".join(shown[-3:])  # the frames nearest the failure
    budget = max(100, limit - len(final) - len(note) - 40)
    if len(body) > budget:
        body = "..." + body[-budget:]
    return f"Traceback, your code's frames{note}:\n{body}\n{final}" if body else f"{final}{note}"


def error_text(result: ExecutionResult, limit: int) -> str:
    """A failed execution as the model reads it: status, what it printed, the short traceback, the variables."""
    error = result.error
    if error is None:  # a timeout, a dead kernel: the sandbox's own message says what happened
        return result.text_for_model(limit)
    variables, budget = result.output_budget(limit)
    traceback = traceback_for_model(error)
    printed = render_outputs([o for o in result.outputs if o["output_type"] != "error"])
    parts = [f"Status: {result.status}"]
    if printed:
        parts.append(truncate_middle(printed, max(200, budget - len(traceback))))
    parts.append(traceback)
    if result.message:
        parts.append(f"[sandbox] {result.message}")
    return "\n".join([*parts, variables])
