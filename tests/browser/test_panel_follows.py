"""The panel follows the notebook you look at: after a page reload with three notebooks open, its session is the
active notebook's, every time (questions must not go to another notebook's session, nor cells into it)."""

from __future__ import annotations

import json

import lab as browser_lab
import nbformat
import pytest

from llm_agent_magic.testing.fake_ollama import FakeOllama

pytestmark = pytest.mark.slow

PANEL = browser_lab.PANEL
NAMES = ["first.ipynb", "second.ipynb", "third.ipynb"]
RELOADS = 10


def notebook(text: str) -> str:
    return json.dumps(
        {
            "cells": [nbformat.v4.new_code_cell(f"print({text!r})", id="only")],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    problem = browser_lab.missing()
    if problem:
        pytest.skip(problem)
    folder = tmp_path_factory.mktemp("lab-follows")
    with (
        FakeOllama({"rules": []}) as ollama,
        browser_lab.jupyter_lab(folder, ollama.url, {name: notebook(name) for name in NAMES}) as running,
    ):
        yield running


@pytest.fixture(scope="module")
def page(lab, tmp_path_factory):
    with browser_lab.chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context.new_page()


OPEN_NOTEBOOKS = """() => [...window.jupyterapp.shell.widgets('main')]
  .filter(w => w.context && w.context.path.endsWith('.ipynb')).map(w => w.context.path).sort()"""


def test_after_each_reload_the_panel_has_the_active_notebooks_session(page, lab):
    browser_lab.open_lab(page, lab, NAMES[0])
    for name in NAMES[1:]:
        page.evaluate(f"() => window.jupyterapp.commands.execute('docmanager:open', {{path: {json.dumps(name)}}})")
    page.wait_for_function(f"() => ({OPEN_NOTEBOOKS})().length === 3", timeout=60_000)
    for reload in range(RELOADS):
        active = NAMES[(reload + 2) % 3]  # the notebook in the address: JupyterLab makes it the active one
        page.goto(f"{lab.url}/lab/tree/{active}?token={lab.token}")
        page.wait_for_function(
            "() => window.jupyterapp && window.jupyterapp.isPluginActivated('llm-agent-magic:plugin')", timeout=120_000
        )
        page.wait_for_function(f"() => ({OPEN_NOTEBOOKS})().length === 3", timeout=60_000)  # all three restored
        page.wait_for_function(
            f"""() => {{
          const w = window.jupyterapp.shell.currentWidget;
          return w && w.context && w.context.path === {json.dumps(active)};
        }}""",
            timeout=60_000,
        )
        browser_lab.open_panel(page)
        expected = str(lab.root / active)
        page.wait_for_function(
            f"""() => {{
              const p = document.querySelector('{PANEL} .lam-panel');
              return p && p.dataset.sessionId === {json.dumps(expected)} && p.dataset.connected === 'true';
            }}""",
            timeout=60_000,
        )
        assert page.evaluate("() => window.jupyterapp.shell.currentWidget.context.path") == active
        assert page.get_attribute(f"{PANEL} .lam-panel", "data-session-id") == expected, f"reload {reload + 1}"
