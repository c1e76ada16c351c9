"""Generated code as notebook cells: the bundle every front end understands.

A run's ``CodeCell`` + ``CellOutput`` event pairs become nbformat code cells with
``metadata.llm_agent`` provenance (run id, cell id, step, attempt, status, model, and with
approval on how the user decided: ``approval`` "approved", "edited" (then ``original_source``
holds the model's code) or "skipped"). The bundle travels as the MIME type
``application/vnd.llm-agent.cells+json`` next to a plain HTML/markdown rendering, so any
front end shows something useful: JupyterLab (with the labextension) inserts the cells,
``llm-agent run`` writes them into the output notebook, and anything else shows the rendering.

The shape of a ``%%agent`` cell's outputs (``magic/render.py`` makes them), which front ends rely on:

1. one ``display_data`` with the answer: ``text/html`` (the model's markdown rendered and sanitized by
   ``safe_text.markdown_data``) + ``text/plain``, nothing else;
2. one ``display_data`` with the cells: ``CELLS_MIME`` (the bundle below), ``text/html`` (the
   rendering, with the cells' images) and ``text/plain`` (a one-line summary, no images).

Neither holds ``text/markdown``: a notebook written by ``llm-agent run`` is opened, exported (nbconvert)
and checked (nbval) by readers whose markdown parsers may read a crafted fence differently from ours, and
in a live session the outputs are trusted. Sanitized HTML and plain text mean the same to all of them.
Markdown cells are never written with the model's text as markdown (``safe_text.literal_markdown``).

Once the cells are real cells in the notebook, the second output has done its work: keep only its
``text/plain`` (``slim_cells_output``), so the notebook holds each chart once. ``materialize``
does that for ``llm-agent run``; the labextension does the same in the browser.

This module only reads events; it holds no agent logic.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .events import CellOutput, CodeCell, Event
from .run_summary import RunSummary
from .safe_html import BINARY_IMAGES, clean_html, is_base64

if TYPE_CHECKING:
    import nbformat

CELLS_MIME = "application/vnd.llm-agent.cells+json"
BUNDLE_VERSION = 1
FAILED_TAG = "llm-agent-failed"
#: A cell the user chose not to run (approval on): kept, with no outputs, so the notebook shows what was proposed.
SKIPPED_TAG = "llm-agent-skipped"
#: The first line of every generated cell: run again, it runs in the session's sandbox (``magic/sandbox_cell.py``).
SANDBOX_MAGIC = "%%sandbox"
#: Added to that line for a cell kept for the record and not run again (skipped by the user, or a failed attempt).
SKIP_FLAG = "--skip"
#: Written into the provenance of cells ``llm-agent run`` adds to a notebook, so a re-run replaces them.
MATERIALIZED_BY = "llm-agent run"
#: Written into the provenance of cells the labextension inserts (``insertable_cells``), with their ``origin``.
INSERTED_BY = "llm-agent panel"
#: Where those cells came from: a panel run (below the active cell), a ``%%agent`` output (below that cell).
INSERT_ORIGINS = ("panel", "magic")


def cells_from_events(events: Iterable[Event], *, model: str = "", include_failed: bool = True) -> list[dict[str, Any]]:
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
            skipped = event.status == "skipped"
            provenance: dict[str, Any] = {
                "run_id": event.run_id,
                "cell_id": event.cell_id,
                "step": code.step,
                "attempt": code.attempt,
                "status": "failed" if event.failed else ("final" if event.final else event.status),
                "execution_status": event.status,
                "model": model,
            }
            if skipped or code.approval:
                provenance["approval"] = "skipped" if skipped else code.approval
            if code.approval == "edited":
                provenance["original_source"] = code.original_source
            metadata: dict[str, Any] = {"llm_agent": provenance}
            if event.failed:
                metadata["tags"] = [FAILED_TAG]
                metadata["jupyter"] = {"source_hidden": True, "outputs_hidden": True}
            elif skipped:
                metadata["tags"] = [SKIPPED_TAG]
            cell = {
                "cell_type": "code",
                "execution_count": None,
                "metadata": metadata,
                "outputs": [dict(o) for o in event.outputs],
                "source": cell_source(code.source, "skipped" if skipped else "failed" if event.failed else ""),
            }
            cells.append(cell)
    return cells


def cell_source(code: str, kept: str = "") -> str:
    """A generated cell's source: ``%%sandbox`` first, so running it again runs it where it ran.

    ``kept`` ("skipped", "failed") marks a cell kept for the record: ``--skip`` runs nothing, and a comment
    says why, so Run All goes past it and a reader sees it without opening the metadata.
    """
    if not kept:
        return f"{SANDBOX_MAGIC}\n{code}"
    why = "you skipped it when the agent asked" if kept == "skipped" else "a failed attempt, kept for the record"
    return f"{SANDBOX_MAGIC} {SKIP_FLAG}\n# Not run: {why}. Remove {SKIP_FLAG} above to run it.\n{code}"


def generated_code(source: str) -> str:
    """The code of a generated cell's source, without the lines ``cell_source`` added."""
    lines = source.split("\n")
    if lines and lines[0].split()[:1] == [SANDBOX_MAGIC]:
        kept = SKIP_FLAG in lines[0].split()
        lines = lines[1:]
        if kept and lines and lines[0].startswith("# Not run: "):
            lines = lines[1:]
    return "\n".join(lines)


def run_model(events: Iterable[Event]) -> str:
    """The model a run's last model call used (for the provenance of cells built after the run)."""
    return RunSummary.of(events).model


def make_bundle(events: list[Event], *, session_id: str = "", model: str = "", include_failed: bool = True) -> dict[str, Any]:
    """The ``application/vnd.llm-agent.cells+json`` payload of one run."""
    summary = RunSummary.of(events)
    return {
        "version": BUNDLE_VERSION,
        "run_id": summary.run_id,
        "session_id": session_id,
        "request": summary.request,
        "status": summary.status(),
        "answer": summary.answer or "",
        "cells": cells_from_events(events, model=model, include_failed=include_failed),
        "errors": summary.error_dicts(),
    }


def bundle_cells(bundle: dict[str, Any]) -> list[nbformat.NotebookNode]:
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
    notes = {"failed": " (failed)", "skipped": " (skipped by you, not run)"}
    for cell in bundle.get("cells", []):
        meta = cell.get("metadata", {}).get("llm_agent", {})
        label = f"attempt {meta.get('attempt')}" + notes.get(str(meta.get("status")), "")
        if meta.get("approval") == "edited":
            label += " (edited by you)"
        parts.append(
            f"<details{'' if meta.get('status') == 'failed' else ' open'}><summary>Generated cell, {html.escape(label)}"
            f'</summary><pre><code class="language-python">{html.escape(generated_code(cell.get("source", "")))}</code></pre>'
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


# --- notebooks: bundles into real cells -------------------------------------------------------------


def drop_materialized(nb: nbformat.NotebookNode) -> int:
    """Remove cells an earlier ``llm-agent run`` wrote (the %%agent cells write them again)."""
    keep = [c for c in nb.cells if c.get("metadata", {}).get("llm_agent", {}).get("materialized_by") != MATERIALIZED_BY]
    dropped = len(nb.cells) - len(keep)
    nb.cells = keep
    return dropped


def cell_bundles(cell: nbformat.NotebookNode) -> list[dict[str, Any]]:
    """The bundles a cell's outputs carry (one per %%agent run in it)."""
    return [out["data"][CELLS_MIME] for out in cell.get("outputs", []) if isinstance(out.get("data", {}).get(CELLS_MIME), dict)]


def slim_cells_output(output: Any, written: int) -> None:
    """Reduce an output that carried a bundle to its one-line ``text/plain``, once its cells are real cells.

    The bundle, its HTML rendering (with every image again) and its markdown go; ``metadata.llm_agent``
    says which run it was and how many cells were written, so the output still tells where they came from.
    """
    bundle = output["data"][CELLS_MIME]
    plain = output["data"].get("text/plain") or f"llm-agent: run {bundle.get('status', 'unknown')}"
    output["data"] = {"text/plain": plain}
    output.setdefault("metadata", {})["llm_agent"] = {
        "run_id": bundle.get("run_id", ""),
        "status": bundle.get("status", "unknown"),
        "cells_written": written,
    }


def materialize(nb: nbformat.NotebookNode, include_failed: bool = True) -> int:
    """Write every bundle's cells as real code cells right after the cell that made them; returns how many.

    The output that carried each bundle is then slimmed (``slim_cells_output``): the notebook keeps the
    answer and one copy of each cell and chart, the real cell's.
    """
    cells: list[Any] = []
    added = 0
    with_ids = (nb.nbformat, nb.nbformat_minor) >= (4, 5)
    used = {c.get("id") for c in nb.cells}
    for cell in nb.cells:
        cells.append(cell)
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            bundle = output.get("data", {}).get(CELLS_MIME)
            if not isinstance(bundle, dict):
                continue
            written = 0
            for new in bundle_cells(bundle):
                if not include_failed and FAILED_TAG in new.metadata.get("tags", []):
                    continue
                new.metadata.pop("trusted", None)  # outputs from the sandbox stay untrusted until the user says so
                meta = new.metadata.setdefault("llm_agent", {})
                meta["materialized_by"] = MATERIALIZED_BY
                if with_ids:
                    new["id"] = _new_id(f"llm-agent-{meta.get('cell_id', '')}", used)
                cells.append(new)
                written += 1
            slim_cells_output(output, written)
            added += written
    nb.cells = cells
    return added


def insertable_cells(bundle: dict[str, Any], *, origin: str, from_cell: str = "") -> list[dict[str, Any]]:
    """A bundle's code cells as the labextension inserts them into a notebook, which then only inserts them.

    No id (the notebook gives its own), no execution count, no trust (the outputs are the sandbox's, untrusted
    until the user says so); the provenance adds who inserted them, from where (``INSERT_ORIGINS``) and, for a
    ``%%agent`` output, the id of that cell (a re-run of it replaces the cells the user has not edited).
    """
    if origin not in INSERT_ORIGINS:
        raise ValueError(f"origin is one of {INSERT_ORIGINS}, not {origin!r}")
    cells = []
    for raw in bundle.get("cells", []):
        if not isinstance(raw, dict) or raw.get("cell_type") != "code":
            continue
        given = raw.get("metadata")
        metadata = {k: v for k, v in given.items() if k != "trusted"} if isinstance(given, dict) else {}
        known = metadata.get("llm_agent")
        provenance = {**(known if isinstance(known, dict) else {}), "inserted_by": INSERTED_BY, "origin": origin}
        if from_cell:
            provenance["from_cell"] = from_cell
        metadata["llm_agent"] = provenance
        outputs = raw.get("outputs")
        cells.append(
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": metadata,
                "outputs": outputs if isinstance(outputs, list) else [],
                "source": _text(raw.get("source", "")),
            }
        )
    return cells


def _new_id(base: str, used: set[Any]) -> str:
    """A valid nbformat cell id (letters, digits, - and _), unique in the notebook."""
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", base)[:56].rstrip("-") or "llm-agent"
    candidate, n = base, 1
    while candidate in used:
        n += 1
        candidate = f"{base}-{n}"
    used.add(candidate)
    return candidate


def bundle_problem(bundle: dict[str, Any]) -> str | None:
    """Why a run did not end well, in words for a summary; None when it did."""
    status = bundle.get("status")
    if status == "ok":
        return None
    if status == "cancelled":
        return "the agent run was stopped before it finished"
    errors = "; ".join(f"{e.get('kind')}: {e.get('message')}" for e in bundle.get("errors", []))
    return f"the agent run ended with status {status!r}" + (f" ({errors})" if errors else "")
