"""Generated code as notebook cells: the bundle every front end understands.

A run's ``CodeCell`` + ``CellOutput`` event pairs become nbformat code cells with
``metadata.llm_agent`` provenance (run id, step, attempt, status, model). The bundle
travels as the MIME type ``application/vnd.llm-agent.cells+json`` next to a plain
HTML/markdown rendering, so any front end shows something useful:
JupyterLab (with the labextension) inserts the cells, ``llm-agent run`` writes
them into the output notebook, and anything else shows the rendering.

This module only reads events; it holds no agent logic.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any, Iterable

from .events import Answer, CellOutput, CodeCell, Event, RunFinished, RunStarted
from .sandbox.untrusted import BINARY_IMAGES, clean_html, is_base64

if TYPE_CHECKING:
    import nbformat

CELLS_MIME = "application/vnd.llm-agent.cells+json"
BUNDLE_VERSION = 1
FAILED_TAG = "llm-agent-failed"


def cells_from_events(
    events: Iterable[Event], *, model: str = "", include_failed: bool = True
) -> list[dict[str, Any]]:
    """nbformat code cells (as dicts) for every code attempt, in order; failed attempts collapsed and tagged."""
    sources: dict[str, CodeCell] = {}
    cells: list[dict[str, Any]] = []
    for event in events:
        if isinstance(event, CodeCell):
            sources[event.cell_id] = event
        elif isinstance(event, CellOutput) and event.cell_id in sources:
            code = sources.pop(event.cell_id)
            if event.failed and not include_failed:
                continue
            # Plain nbformat-4 dicts: the kernel that builds them should not pay for importing nbformat
            # (it imports jsonschema, about a second).
            metadata: dict[str, Any] = {
                "llm_agent": {
                    "run_id": event.run_id,
                    "cell_id": event.cell_id,
                    "step": code.step,
                    "attempt": code.attempt,
                    "status": "failed" if event.failed else ("final" if event.final else event.status),
                    "execution_status": event.status,
                    "model": model,
                }
            }
            if event.failed:
                metadata["tags"] = [FAILED_TAG]
                metadata["jupyter"] = {"source_hidden": True, "outputs_hidden": True}
            cell = {
                "cell_type": "code",
                "execution_count": None,
                "metadata": metadata,
                "outputs": [dict(o) for o in event.outputs],
                "source": code.source,
            }
            cells.append(cell)
    return cells


def make_bundle(events: list[Event], *, session_id: str = "", model: str = "", include_failed: bool = True) -> dict[str, Any]:
    """The ``application/vnd.llm-agent.cells+json`` payload of one run."""
    started = next((e for e in events if isinstance(e, RunStarted)), None)
    finished = next((e for e in events if isinstance(e, RunFinished)), None)
    answer = next((e.markdown for e in reversed(events) if isinstance(e, Answer)), "")
    return {
        "version": BUNDLE_VERSION,
        "run_id": started.run_id if started else "",
        "session_id": session_id,
        "request": started.request if started else "",
        "status": finished.status if finished else "unknown",
        "answer": answer,
        "cells": cells_from_events(events, model=model, include_failed=include_failed),
    }


def bundle_cells(bundle: dict[str, Any]) -> "list[nbformat.NotebookNode]":
    """The cells of a bundle as nbformat nodes, ready to insert into a notebook."""
    import nbformat

    if bundle.get("version") != BUNDLE_VERSION:
        raise ValueError(f"unsupported llm-agent cells bundle version {bundle.get('version')!r}")
    cells = []
    for raw in bundle.get("cells", []):
        cell = nbformat.from_dict(raw)
        cell.pop("id", None)  # the notebook gives inserted cells ids of its own
        cells.append(cell)
    return cells


def render_html(bundle: dict[str, Any]) -> str:
    """A plain rendering of the generated cells, for front ends that do not know the bundle."""
    parts = []
    for cell in bundle.get("cells", []):
        meta = cell.get("metadata", {}).get("llm_agent", {})
        label = f"attempt {meta.get('attempt')}" + (" (failed)" if meta.get("status") == "failed" else "")
        parts.append(
            f"<details{'' if meta.get('status') == 'failed' else ' open'}><summary>Generated cell, {html.escape(label)}"
            f"</summary><pre><code class=\"language-python\">{html.escape(cell.get('source', ''))}</code></pre>"
            f"{_outputs_html(cell.get('outputs', []))}</details>"
        )
    return "\n".join(parts)


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _outputs_html(outputs: list[dict[str, Any]]) -> str:
    # Outputs are the sandbox's: every piece is escaped or sanitized here, whatever cleaned it before.
    parts = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            parts.append(f"<pre>{html.escape(_text(out.get('text', '')))}</pre>")
        elif kind == "error":
            error = f"{_text(out.get('ename', ''))}: {_text(out.get('evalue', ''))}"
            parts.append(f"<pre>{html.escape(error)}</pre>")
        else:
            data = out.get("data", {}) if isinstance(out.get("data"), dict) else {}
            image = next((m for m in BINARY_IMAGES if isinstance(data.get(m), str) and is_base64(data[m])), None)
            if image:
                parts.append(f'<img src="data:{image};base64,{"".join(data[image].split())}"/>')
            elif "text/html" in data:
                parts.append(clean_html(_text(data["text/html"])))
            elif "text/plain" in data:
                parts.append(f"<pre>{html.escape(_text(data['text/plain']))}</pre>")
    return "".join(parts)
