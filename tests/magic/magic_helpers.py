"""Helpers for the magic tests: a notebook grown cell by cell in one kernel, and output readers."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from llm_agent_magic.cells import CELLS_MIME
from llm_agent_magic.testing.fake_ollama import FakeOllama

CELL_TIMEOUT = 120


class NotebookKernel:
    """A notebook that grows one cell at a time, each executed by nbclient in the same kernel."""

    def __init__(self, client: NotebookClient, server: FakeOllama, folder: Path) -> None:
        self.client = client
        self.nb = client.nb
        self.server = server
        self.folder = folder

    def script(self, script: dict) -> None:
        """The scripted server answers by this script from now on, with an empty request log."""
        self.server.load(script)
        self.server.clear_requests()

    @property
    def pid(self) -> int:
        return self.client.km.provisioner.pid

    def run(self, source: str, *, raises: bool = False) -> nbformat.NotebookNode:
        cell = nbformat.v4.new_code_cell(source)
        if raises:
            cell.metadata["tags"] = ["raises-exception"]
        self.nb.cells.append(cell)
        self.client.execute_cell(cell, len(self.nb.cells) - 1)
        return cell


def texts(cell: nbformat.NotebookNode, mime: str = "text/plain") -> list[str]:
    """Every output's text in ``mime`` (streams count as text/plain)."""
    out = []
    for o in cell.outputs:
        if o.output_type == "stream" and mime == "text/plain":
            out.append(o.text)
        elif mime in o.get("data", {}):
            out.append(o.data[mime])
    return out


def stream(cell: nbformat.NotebookNode, name: str = "stdout") -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == name)


def bundle(cell: nbformat.NotebookNode) -> dict:
    (found,) = [o.data[CELLS_MIME] for o in cell.outputs if CELLS_MIME in o.get("data", {})]
    return found
