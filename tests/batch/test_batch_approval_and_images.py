"""``llm-agent run`` writes each chart once, and refuses approval (nobody can answer it) instead of hanging."""

from __future__ import annotations

import pytest
from agent_helpers import coder_script
from batch_helpers import read, run_cli, write_notebook

from llm_agent_magic.cells import CELLS_MIME
from llm_agent_magic.testing.fake_ollama import FakeOllama

pytestmark = pytest.mark.slow  # real kernels

CHART = "import matplotlib.pyplot as plt\nplt.bar(['north', 'south'], [10, 30])\nplt.show()\nprint('plotted')"


def images(outputs) -> list[str]:
    return [o.data["image/png"] for o in outputs if "image/png" in o.get("data", {})]


def test_an_executed_notebook_holds_each_chart_once(folder, data_root):
    write_notebook(folder / "chart.ipynb", "%load_ext llm_agent_magic", "%%agent\nPlot the prices.")
    with FakeOllama(coder_script(CHART, "The chart shows **south** ahead.")) as server:
        out = run_cli("chart.ipynb", cwd=folder, host=server.url, data_root=data_root)
    assert out.returncode == 0, out.stderr
    written = (folder / "chart.out.ipynb").read_text()
    nb = read(folder / "chart.out.ipynb")
    agent, generated = nb.cells[1], nb.cells[2]
    (png,) = images(generated.outputs)
    assert written.count(png) == 1 and CELLS_MIME not in written
    answer, note = agent.outputs
    assert answer.data == {
        "text/html": "<p>The chart shows <strong>south</strong> ahead.</p>\n",
        "text/plain": "The chart shows **south** ahead.",
    }
    assert note.data == {"text/plain": "llm-agent: 1 generated cell; run ok"}
    assert note.metadata["llm_agent"]["cells_written"] == 1
    assert note.metadata["llm_agent"]["run_id"] == generated.metadata["llm_agent"]["run_id"]


def test_approval_in_a_batch_run_is_refused_with_what_to_do(folder, data_root):
    write_notebook(folder / "ask.ipynb", "%load_ext llm_agent_magic", "%%agent --approve\nPlot the prices.")
    with FakeOllama(coder_script(CHART)) as server:
        out = run_cli("ask.ipynb", cwd=folder, host=server.url, data_root=data_root)
        assert not server.requests_for("classify")  # refused before the agent started
    assert out.returncode == 1
    assert "this front end cannot answer one (llm-agent run and nbclient cannot)" in out.stderr
    assert "Remove --approve" in out.stderr
    # the same holds when the setting, not the cell, asks for approval; the command line can turn it off
    write_notebook(folder / "setting.ipynb", "%load_ext llm_agent_magic", "%%agent\nPlot the prices.")
    with FakeOllama(coder_script(CHART)) as server:
        refused = run_cli("setting.ipynb", "--AgentConfig.approval=True", cwd=folder, host=server.url, data_root=data_root)
        allowed = run_cli("setting.ipynb", "--AgentConfig.approval=False", cwd=folder, host=server.url, data_root=data_root)
    assert refused.returncode == 1 and "AgentConfig.approval = False" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr
