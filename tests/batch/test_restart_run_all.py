"""Restart & Run All without a model: an agent notebook reproduces from the store, its generated cells re-run
in the sandbox.

``llm-agent run`` executes a notebook that attaches a file from a subfolder; then plain nbclient (no
``llm-agent run``, no labextension) executes the notebook it wrote, with no model server reachable.
"""

from __future__ import annotations

import os
import socket

import nbformat
import pytest
from agent_helpers import coder_script
from batch_helpers import read, run_cli, write_notebook
from cli_helpers import OUR_ENV
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from llm_agent_magic.cells import SANDBOX_MAGIC
from llm_agent_magic.magic.magics import STORED_NOTE
from llm_agent_magic.testing.fake_ollama import FakeOllama

pytestmark = pytest.mark.slow

CODE = "import pandas as pd\nsales = pd.read_csv('data/sales.csv')\nprint('mean price:', sales['price'].mean())"
AGENT_CELL = "%%agent --files data/sales.csv\nWhat is the mean price?"


def nowhere() -> str:
    """The URL of a port nothing listens on: the model is not reachable."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def execute(nb: nbformat.NotebookNode, folder, data_root) -> nbformat.NotebookNode:
    env = {k: v for k, v in os.environ.items() if k not in OUR_ENV}
    env.update({"OLLAMA_HOST": nowhere(), "LLM_AGENT_DATA_ROOT": str(data_root)})
    client = NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute(env=env)
    return nb


def stream_texts(cell) -> list[str]:
    return [o.text for o in cell.outputs if o.output_type == "stream"]


@pytest.fixture
def answered(folder, data_root):
    """report.out.ipynb as ``llm-agent run`` wrote it (its file attached from data/)."""
    (folder / "data").mkdir()
    (folder / "data" / "sales.csv").write_text("region,price\nnorth,10\nsouth,30\n")
    write_notebook(folder / "report.ipynb", "%load_ext llm_agent_magic", AGENT_CELL, "print('after')")
    with FakeOllama(coder_script(CODE, "The mean price is **20.0**.")) as server:
        out = run_cli("report.ipynb", cwd=folder, host=server.url, data_root=data_root)
        first = server.requests_for("react")[0]  # a table and a question: no classifier call
        assert "- data/sales.csv (" in first.text  # the model is told the path it has beside the notebook
    assert out.returncode == 0, out.stderr
    return read(folder / "report.out.ipynb")


def test_plain_nbclient_reproduces_the_notebook_without_the_model(answered, folder, data_root):
    sources = [c.source for c in answered.cells]
    assert sources[2] == f"{SANDBOX_MAGIC}\n{CODE}"
    assert stream_texts(answered.cells[2]) == ["mean price: 20.0\n"]
    again = execute(nbformat.from_dict(answered), folder, data_root)
    assert [c.source for c in again.cells] == sources  # the same cells, none added
    agent = again.cells[1]
    assert stream_texts(agent) == [STORED_NOTE + "\n"]
    assert agent.outputs[1].data["text/html"] == "<p>The mean price is <strong>20.0</strong>.</p>\n"
    assert not [o for c in again.cells for o in c.get("outputs", []) if o.output_type == "error"]
    # The generated cell ran again, in a sandbox of this kernel's session, reading data/sales.csv there.
    assert again.cells[2].execution_count is not None
    assert stream_texts(again.cells[2]) == stream_texts(answered.cells[2])
    assert stream_texts(again.cells[3]) == ["after\n"]


def test_a_changed_request_or_a_new_store_needs_the_model(answered, folder, data_root, tmp_path):
    changed = nbformat.from_dict(answered)
    changed.cells[1].source = AGENT_CELL + " Round it."
    with pytest.raises(CellExecutionError) as failed:
        execute(changed, folder, data_root)
    assert "Could not reach Ollama" in str(failed.value)
    elsewhere = nbformat.from_dict(answered)  # the notebook on another machine: no store of its answers
    with pytest.raises(CellExecutionError) as failed:
        execute(elsewhere, folder, tmp_path / "another-data-root")
    message = str(failed.value)
    assert "no stored answer" in message and "%agent replay" in message and "start Ollama" in message
