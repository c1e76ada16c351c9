"""Helpers for the batch runner tests: notebooks on disk and ``llm-agent run`` as a user runs it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cli_helpers
import nbformat

from llm_agent_magic.cells import CELLS_MIME

SCENARIOS = Path(__file__).parent.parent / "scenarios"


def write_notebook(path: Path, *cells: str) -> Path:
    """A notebook of code cells (a cell starting with '# md' is markdown)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(c[5:]) if c.startswith("# md ") else nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


def run_cli(
    *args: str, cwd: Path, host: str, data_root: Path, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``llm-agent run ARGS`` in ``cwd`` against ``host``, with its own data root."""
    settings = {"OLLAMA_HOST": host, "LLM_AGENT_DATA_ROOT": str(data_root), **(env or {})}
    return cli_helpers.run_cli("run", *args, cwd=cwd, env=settings, timeout=timeout, clean=True)


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def agent_outputs(nb: nbformat.NotebookNode) -> list[dict]:
    """What each %%agent cell left (without ids): its answer's text, its run's status, and the real cells
    written below it (the cells output itself keeps only a line of text once they are written)."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.source.startswith("%%agent"):
            assert set(cell.outputs[0].data) == {"text/html", "text/plain"}  # the answer: never markdown
            answer = cell.outputs[0].data["text/plain"]
            note = cell.outputs[1]
            assert CELLS_MIME not in note.data and set(note.data) == {"text/plain"}
            written = []
            for after in nb.cells[index + 1 :]:
                if after.get("metadata", {}).get("llm_agent", {}).get("materialized_by") != "llm-agent run":
                    break
                written.append((after.source, [o.get("text") for o in after.outputs]))
            assert len(written) == note.metadata["llm_agent"]["cells_written"]
            found.append({"answer": answer, "status": note.metadata["llm_agent"]["status"], "cells": written})
    return found
