"""A session as one Markdown document: title, each message under a role heading, and the code
cells each run generated (fenced ``python``) with their text outputs.

Works on stored event dicts, not on the event classes: the store sits below the agents and
must not import them. It reads only the ``code_cell`` and ``cell_output`` wire types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ..text import code_fence
from .records import Message, Run, Session


def format_time(ts: float) -> str:
    """Local wall-clock time, to the second."""
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _joined(value: Any) -> str:
    # nbformat allows multiline strings as lists of lines.
    return "".join(value) if isinstance(value, list) else str(value)


def output_text(output: Mapping[str, Any]) -> str:
    """The text a reader would see for one nbformat output; rich outputs become a placeholder."""
    kind = output.get("output_type")
    if kind == "stream":
        return _joined(output.get("text", ""))
    if kind == "error":
        return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    if kind in ("execute_result", "display_data"):
        data = output.get("data", {})
        if "text/plain" in data:
            return _joined(data["text/plain"])
        return " ".join(f"[{mime} output]" for mime in data)
    return ""


def _render_cells(events: Iterable[Mapping[str, Any]]) -> list[str]:
    cells: list[Mapping[str, Any]] = []
    outputs: dict[str, Mapping[str, Any]] = {}
    for event in events:
        if event.get("type") == "code_cell":
            cells.append(event)
        elif event.get("type") == "cell_output":
            outputs[event.get("cell_id", "")] = event
    parts = []
    for cell in cells:
        result = outputs.get(cell.get("cell_id", ""))
        labels = []
        if cell.get("step") is not None:
            labels.append(f"step {cell['step'] + 1}")
        labels.append(f"attempt {cell.get('attempt', 1)}")
        if result is not None and (result.get("failed") or result.get("status", "ok") != "ok"):
            labels.append(f"failed: {result.get('status', 'error')}")
        parts.append(f"**Code** ({', '.join(labels)})\n\n{code_fence(cell.get('source', ''), 'python')}")
        text = "".join(output_text(o) for o in (result or {}).get("outputs", []))
        if text.strip():
            parts.append(f"Output:\n\n{code_fence(text, 'text')}")
    return parts


def render_session(
    session: Session,
    messages: Sequence[Message],
    runs: Sequence[Run],
    events_by_run: Mapping[str, Sequence[Mapping[str, Any]]],
) -> str:
    """The whole conversation. A run's cells go just before its assistant answer, or after its
    last message when it has no answer (failed, cancelled); runs with no message go at the end."""
    anchor: dict[str, int] = {}
    for index, message in enumerate(messages):
        if message.run_id is None:
            continue
        if message.run_id in anchor and messages[anchor[message.run_id]].role == "assistant":
            continue  # the first answer of a run anchors its cells
        anchor[message.run_id] = index
    before = {i: rid for rid, i in anchor.items() if messages[i].role == "assistant"}
    after = {i: rid for rid, i in anchor.items() if messages[i].role != "assistant"}

    parts = [f"# {session.title or session.id}", f"_Session `{session.id}`, started {format_time(session.created_at)}_"]
    for index, message in enumerate(messages):
        heading = message.role.capitalize() + (f" ({message.mode})" if message.mode else "")
        parts.append(f"## {heading} · {format_time(message.created_at)}")
        if index in before:
            parts.extend(_render_cells(events_by_run.get(before[index], ())))
        parts.append(message.content)
        if index in after:
            parts.extend(_render_cells(events_by_run.get(after[index], ())))
    for run in runs:
        if run.id in anchor:
            continue
        cells = _render_cells(events_by_run.get(run.id, ()))
        if cells:
            parts.append(f"## Run {run.id} ({run.status}) · {format_time(run.started_at)}")
            parts.append("\n".join("> " + line for line in run.request.splitlines()))
            parts.extend(cells)
    return "\n\n".join(p for p in parts if p) + "\n"
