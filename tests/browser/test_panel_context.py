"""The panel sends what the user sees of the open notebook (issue 22): its cells, their outputs and errors, the
active cell; the server adds the notebook folder's file names, so a CSV beside the notebook answers a question
without being attached. A real JupyterLab, headless chromium and the scripted Ollama."""

from __future__ import annotations

import json

import lab as browser_lab
import pytest

from llm_agent_magic.testing.fake_ollama import FakeOllama

pytestmark = pytest.mark.slow
PANEL = browser_lab.PANEL
CSV = "region,amount\nnorth,10\nsouth,30\neast,20\n"
NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "id": "title", "metadata": {}, "source": "# Regional sales"},
        {
            "cell_type": "code",
            "execution_count": 1,
            "id": "failing",
            "metadata": {},
            "source": "totals = sales.sum()",
            "outputs": [
                {
                    "output_type": "error",
                    "ename": "NameError",
                    "evalue": "name 'sales' is not defined",
                    "traceback": ["\u001b[31mNameError\u001b[0m: name 'sales' is not defined"],
                }
            ],
        },
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}
SCRIPT = {
    "rules": [
        {"purpose": "classify", "reply": {"mode": "react", "reason": "data"}},
        {
            "purpose": "react",
            "match_last": "Observation from python_coder",
            "reply": {"thought": "Done.", "action": "finish", "action_input": "south"},
        },
        {"purpose": "react", "reply": {"thought": "Read it.", "action": "python_coder", "action_input": "sum by region"}},
        {
            "purpose": "code",
            "reply": "```python\nimport pandas as pd\n"
            "print(pd.read_csv('sales.csv').groupby('region')['amount'].sum().idxmax())\n```",
        },
        {"purpose": "answer", "reply": "**South** sold most."},
    ]
}


# A new cell at the end of the notebook, run in its kernel (the user's own variables).
RUN_CELL = """async (source) => {
  const app = window.jupyterapp;
  const nb = [...app.shell.widgets('main')].find(w => w.context && w.context.path === 'regions.ipynb');
  await nb.sessionContext.ready;
  const cells = nb.content.model.cells;
  nb.content.model.sharedModel.insertCell(cells.length, {cell_type: 'code', source});
  nb.content.activeCellIndex = cells.length - 1;
  await app.commands.execute('notebook:run-cell');
}"""
IDLE_AFTER_RUN = """() => {
  const nb = [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === 'regions.ipynb');
  const cells = nb.content.model.cells;
  const kernel = nb.sessionContext.session && nb.sessionContext.session.kernel;
  return cells.get(cells.length - 1).executionCount !== null && kernel && kernel.status === 'idle';
}"""


@pytest.fixture(scope="module")
def ollama():
    with FakeOllama(SCRIPT) as server:
        yield server


@pytest.fixture(scope="module")
def lab(tmp_path_factory, ollama):
    problem = browser_lab.missing()
    if problem:
        pytest.skip(problem)
    folder = tmp_path_factory.mktemp("lab")
    with browser_lab.jupyter_lab(folder, ollama.url, {"sales.csv": CSV, "regions.ipynb": json.dumps(NOTEBOOK)}) as up:
        yield up


def test_the_unattached_csv_question_succeeds_because_the_agent_saw_the_notebook_and_its_folder(lab, ollama, tmp_path_factory):
    with browser_lab.chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        page = context.new_page()
        browser_lab.open_lab(page, lab, "regions.ipynb")
        browser_lab.open_panel(page)
        page.evaluate(RUN_CELL, "import pandas as pd\nsales_df = pd.DataFrame({'region': ['n'], 'amount': [1]})")
        page.wait_for_function(IDLE_AFTER_RUN, timeout=120_000)
        browser_lab.send(page, "which region sold most?")
        page.wait_for_selector(f"{PANEL} .lam-run-ok", timeout=120_000)
        run = page.locator(f"{PANEL} .lam-run").last
        assert run.locator(".lam-context").inner_text() == "Context: 3 cells, 2 files, 1 variable"
        assert run.locator(".lam-answer strong").inner_text() == "South"
    asked = ollama.requests_for("classify")[-1].text
    assert "[1] markdown cell" in asked and "# Regional sales" in asked
    assert "totals = sales.sum()" in asked and "Error:\nNameError: name 'sales' is not defined" in asked  # no colours
    assert "- sales.csv (" in asked and "- regions.ipynb (" in asked
    assert "[3] code cell (active)" in asked and "- sales_df: pandas.DataFrame, shape (1, 2); columns: region (" in asked
    variables = asked.split("Variables in the user's own kernel")[1].split("Request:")[0]
    assert "sales_df" in variables and "pd" not in variables.replace("pandas", "")  # modules are not variables
    (code,) = [r for r in ollama.requests if r.purpose == "code"]
    assert "- sales.csv (" in code.text
    outputs = [r.text for r in ollama.requests if r.purpose == "react"][-1]
    assert "south" in outputs  # the code read the copy of sales.csv in the sandbox
