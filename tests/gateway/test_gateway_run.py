"""``llm-agent run`` with its sandbox on a real Jupyter Kernel Gateway: a notebook attaches a CSV, the agent's
code runs in the gateway's kernel, ``%agent pull`` brings the DataFrame back, and a kernel deleted through the
gateway is restarted with its variables restored."""

from __future__ import annotations

from pathlib import Path

import cli_helpers
import nbformat
import pytest
from gateway_helpers import Gateway, write_notebook

from llm_agent_magic.testing.fake_ollama import FakeOllama

FIRST = "import os\nimport pandas as pd\nsales = pd.read_csv('data/sales.csv')\nprint(os.getcwd())\nprint(sales['price'].mean())"
SECOND = "print('rows after the restart:', len(sales), sales['price'].sum())"
KILL = (
    "import glob, json, os, urllib.request\n"
    "[state] = [json.load(open(p)) for p in glob.glob(os.environ['LLM_AGENT_DATA_ROOT'] + '/sessions/*/kernel/state.json')]\n"
    "req = urllib.request.Request(os.environ['LLM_AGENT_GATEWAY_URL'] + '/api/kernels/' + state['kernel_id'], method='DELETE',\n"
    "                             headers={'Authorization': 'token ' + os.environ['LLM_AGENT_GATEWAY_TOKEN']})\n"
    "print('deleted', urllib.request.urlopen(req).status)"
)


def script() -> dict:
    """Two ReAct runs, one coder call each: the first loads the CSV, the second (after the kill) uses it."""
    return {
        "rules": [
            {"purpose": "classify", "reply": {"mode": "react", "reason": "needs code"}},
            {
                "purpose": "react",
                "match_last": "Observation from python_coder",
                "reply": {"thought": "Done.", "action": "finish", "action_input": "see the output"},
            },
            {"purpose": "react", "reply": {"thought": "Run it.", "action": "python_coder", "action_input": "run the code"}},
            {"purpose": "code", "times": 1, "reply": f"```python\n{FIRST}\n```"},
            {"purpose": "code", "reply": f"```python\n{SECOND}\n```"},
            {"purpose": "verify", "reply": {"answers_question": True, "issues": ""}},
            {"purpose": "answer", "reply": "Done."},
        ]
    }


@pytest.mark.slow
def test_a_notebook_runs_its_agent_code_in_the_gateways_kernel(tmp_path: Path, kernel_gateway: Gateway) -> None:
    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "sales.csv").write_text("region,price\nnorth,10\nsouth,30\n")  # sent keeping its folder
    data_root = folder / ".llm_agent"
    write_notebook(
        folder / "gw.ipynb",
        "%load_ext llm_agent_magic",
        "%%agent --files data/sales.csv\nWhat is the mean price?",
        "%agent pull sales",
        "print(type(sales).__name__, sales.shape, sales['price'].sum())",
        KILL,
        "%%agent\nHow many rows are there now?",
    )
    env = {"LLM_AGENT_GATEWAY_URL": kernel_gateway.url, "LLM_AGENT_GATEWAY_TOKEN": kernel_gateway.token}
    with FakeOllama(script()) as server:
        settings = {"OLLAMA_HOST": server.url, "LLM_AGENT_DATA_ROOT": str(data_root), **env}
        out = cli_helpers.run_cli("run", "gw.ipynb", cwd=folder, env=settings, timeout=300, clean=True)
    assert out.returncode == 0, out.stderr
    nb = nbformat.read(folder / "gw.out.ipynb", as_version=4)
    # Generated cells start with %%sandbox: key them by their code's first line.
    sources = [c.source.removeprefix("%%sandbox\n").splitlines()[0] for c in nb.cells]
    first = sources.index("import os")
    cwd, mean = nb.cells[first].outputs[0].text.splitlines()
    assert Path(cwd).is_relative_to(kernel_gateway.home), cwd  # ran in the gateway's folder, not the project's
    assert not Path(cwd).is_relative_to(tmp_path)
    assert mean == "20.0"
    # %agent pull fetched the snapshot over the kernel protocol into this notebook's kernel.
    pulled = nb.cells[sources.index("print(type(sales).__name__, sales.shape, sales['price'].sum())")]
    assert pulled.outputs[0].text == "DataFrame (2, 2) 40\n"
    assert nb.cells[sources.index("import glob, json, os, urllib.request")].outputs[0].text == "deleted 204\n"
    second = nb.cells[sources.index(SECOND)]
    assert second.outputs[0].text == "rows after the restart: 2 40\n"
    assert second.metadata.llm_agent["status"] == "final"
    assert "llm-agent run: 1 notebook, all ok" in out.stderr
    # The restarted kernel removed its folder on the gateway's side at the end; the deleted one could not.
    [session_folder] = (data_root / "sessions").iterdir()
    [left] = kernel_gateway.home.glob(f".llm-agent/{session_folder.name}-*")
    assert (left / "workspace" / "data" / "sales.csv").is_file()
