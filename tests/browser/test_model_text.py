"""The model's text in a live notebook, rendered by JupyterLab itself: shown, never run (issue 19).

A %%agent answer crafted so that JupyterLab's markdown reader (marked) would not close a fence (a closing
fence followed by a tab) carried an ``<img onerror=...>`` that ran with the user's Jupyter session: outputs
of a live session are trusted. The answer now reaches the notebook as HTML rendered and sanitized in Python,
so whichever reader the browser has, the handler stays text. A control cell shows that a handler in a
trusted output does run in this very page, so the handler's silence means something.
"""

from __future__ import annotations

import json

import lab as browser_lab
import nbformat
import pytest

from llm_agent_magic.testing.fake_ollama import FakeOllama

pytestmark = pytest.mark.slow

PAYLOAD = 'Result:\n\n```\nx\n```\t\n\n```\n<img src=x onerror="window.__pwned = 1">\n```'
NOTEBOOK = {
    "cells": [
        nbformat.v4.new_code_cell("%load_ext llm_agent_magic", id="load"),
        nbformat.v4.new_code_cell("%%agent --mode chat\nSummarise the report.", id="agent"),
        nbformat.v4.new_code_cell("%agent history 2", id="history"),
        nbformat.v4.new_code_cell(
            "from IPython.display import HTML\n"
            'HTML(\'<img src="y" onerror="window.__control = 1">\')  # the user\'s own trusted HTML',
            id="control",
        ),
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}
# Streamed slowly, so the live view (display updates) renders the payload piece by piece too.
SCRIPT = {"rules": [{"purpose": "answer", "reply": PAYLOAD, "token_delay_ms": 30}]}

RUN_CELL = """async (id) => {
  const app = window.jupyterapp;
  const nb = [...app.shell.widgets('main')].find(w => w.context && w.context.path === 'hostile.ipynb');
  app.shell.activateById(nb.id);
  const cells = nb.content.model.cells;
  for (let i = 0; i < cells.length; i++) { if (cells.get(i).id === id) { nb.content.activeCellIndex = i; } }
  await app.commands.execute('notebook:run-cell');
}"""
CELL = """(id) => {
  const nb = [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === 'hostile.ipynb');
  const cell = nb.content.widgets.find(w => w.model.id === id);
  const elements = [...cell.node.querySelectorAll('.jp-OutputArea-output, .jp-OutputArea-output *')];
  return {
    count: cell.model.executionCount,
    outputs: cell.model.outputs.toJSON(),
    text: [...cell.node.querySelectorAll('.jp-OutputArea-output')].map(o => o.textContent).join('\\n'),
    handlers: elements.flatMap(e => [...e.attributes].filter(a => /^on/i.test(a.name)).map(a => e.tagName + ' ' + a.name)),
    images: cell.node.querySelectorAll('.jp-OutputArea-output img').length,
  };
}"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    problem = browser_lab.missing()
    if problem:
        pytest.skip(problem)
    folder = tmp_path_factory.mktemp("lab")
    with (
        FakeOllama(SCRIPT) as ollama,
        browser_lab.jupyter_lab(folder, ollama.url, {"hostile.ipynb": json.dumps(NOTEBOOK)}) as running,
    ):
        yield running


@pytest.fixture(scope="module")
def page(lab, tmp_path_factory):
    with browser_lab.chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        page = context.new_page()
        browser_lab.open_lab(page, lab, "hostile.ipynb")
        yield page


def run(page, cell_id: str) -> dict:
    page.wait_for_function(
        """() => {
      const nb = [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === 'hostile.ipynb');
      const kernel = nb && nb.sessionContext.session && nb.sessionContext.session.kernel;
      return kernel && kernel.status === 'idle';
    }""",
        timeout=120_000,
    )
    page.evaluate(RUN_CELL, cell_id)
    page.wait_for_function(f"(id) => ({CELL})(id).count !== null", arg=cell_id, timeout=180_000)
    return page.evaluate(CELL, cell_id)


def test_a_hostile_answer_is_shown_as_text_and_its_handler_never_runs(page):
    run(page, "load")
    answer = run(page, "agent")
    history = run(page, "history")
    control = run(page, "control")
    page.wait_for_function("() => window.__control === 1", timeout=30_000)  # trusted HTML runs here

    assert page.evaluate("() => window.__pwned") is None  # undefined in the page: the handler never ran
    for cell in (answer, history):
        assert cell["handlers"] == [] and cell["images"] == 0, cell
        assert '<img src=x onerror="window.__pwned = 1">' in cell["text"]  # shown, as the code it claims to be
        assert not [o for o in cell["outputs"] if "text/markdown" in o.get("data", {})]
    assert control["images"] == 1  # the control's <img> is an element; the model's never was
    browser_lab.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(browser_lab.SCREENSHOTS / "model-text-inert.png"), full_page=True)
