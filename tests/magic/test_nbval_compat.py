"""A notebook saved by nbclient validates with nbval, which ignores display updates and clears.

The way the example notebooks are made and checked (examples/refresh.py, `pytest --nbval`):
execute while recording a cassette, save the outputs, then replay under nbval.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from llm_agent_magic.magic import env as kernel_env
from llm_agent_magic.testing.fake_ollama import FakeOllama

SCENARIOS = Path(__file__).parent.parent / "scenarios"
EXAMPLES_CONFTEST = Path(__file__).resolve().parents[2] / "examples" / "conftest.py"


@pytest.mark.slow
def test_recorded_outputs_validate_with_nbval_on_replay(tmp_path):
    (tmp_path / "sales.csv").write_text("region,price\nnorth,10\nsouth,30\n")
    (tmp_path / "conftest.py").write_text(EXAMPLES_CONFTEST.read_text())  # the examples' nbval settings
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(c)
        for c in (
            "%load_ext llm_agent_magic\n%agent replay answers.jsonl",
            "%%agent --files sales.csv\nWhat is the mean price in sales.csv?",
            "%agent pull sales\nsales.shape",
        )
    ]
    env = {k: v for k, v in os.environ.items() if k not in (*kernel_env.ALL, "JPY_SESSION_NAME")}
    with FakeOllama(SCENARIOS / "react_csv.json") as server:
        recording = {
            **env,
            "OLLAMA_HOST": server.url,
            "LLM_AGENT_DATA_ROOT": str(tmp_path / "rec"),
            kernel_env.CASSETTE_MODE: "record",
            kernel_env.CASSETTE_PATH: str(tmp_path / "answers.jsonl"),
        }
        NotebookClient(nb, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute(env=recording)
        host = server.url
    nbformat.write(nb, tmp_path / "example.ipynb")
    assert [len(c.outputs) for c in nb.cells] == [0, 2, 2]  # the live area gave way to the answer and the cells
    # Nothing listens at `host` now: every answer comes from the cassette the notebook names.
    replay = {**env, "OLLAMA_HOST": host, "LLM_AGENT_DATA_ROOT": str(tmp_path / "rep")}
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval",
            "example.ipynb",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            "-W",
            "ignore::DeprecationWarning",
        ],
        cwd=tmp_path,
        env=replay,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert "3 passed" in checked.stdout
