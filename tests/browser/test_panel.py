"""The side panel in a real browser: JupyterLab with the labextension, the scripted Ollama, headless chromium.

One JupyterLab and one browser for the module; the tests run in order and build on each other's notebook
(the panel's cells, then the %%agent cells), as a user's afternoon would.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import lab as browser_lab
import nbformat
import pytest

from llm_agent_magic import events
from llm_agent_magic.config import PathsConfig
from llm_agent_magic.sandbox.paths import SessionPaths
from llm_agent_magic.testing.fake_ollama import FakeOllama

pytestmark = pytest.mark.slow

PANEL = browser_lab.PANEL
CSV = "region,revenue\nnorth,10\nsouth,30\neast,20\n"
PLOT = (
    "```python\nimport pandas as pd\nimport matplotlib.pyplot as plt\nsales = pd.read_csv('sales.csv')\n"
    "totals = sales.groupby('region')['revenue'].sum()\ntotals.plot.bar(title='revenue by region')\nplt.show()\n"
    "print(totals.to_string())\n```"
)
ANSWER = "South had the highest revenue: **30**, then east with 20 and north with 10. The chart shows all three regions."
STORY = " ".join(f"word{i}" for i in range(80))
AGENT_REQUEST = "Summarise the revenue per region of sales.csv"
NOTEBOOK = {
    "cells": [
        nbformat.v4.new_code_cell("%load_ext llm_agent_magic", id="load"),
        nbformat.v4.new_code_cell(f"%%agent --mode react --files sales.csv\n{AGENT_REQUEST}", id="agent"),
        {"cell_type": "markdown", "id": "end", "metadata": {}, "source": "The end."},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}
SCRIPT = {
    "rules": [
        # Requests are told apart by `match` (the whole conversation): the classifier and the first ReAct step are
        # asked about "the request above". The stop and approval runs happen in chats of their own.
        {"purpose": "classify", "match": "revenue by region", "reply": {"mode": "react", "reason": "data"}},
        {"purpose": "classify", "match": "STORY", "reply": {"mode": "chat", "reason": "talk"}},
        {"purpose": "classify", "match": "APPROVAL", "reply": {"mode": "plan_execute", "reason": "two steps"}},
        {"purpose": "classify", "reply": {"mode": "react", "reason": "data"}},
        {
            "purpose": "plan",
            "reply": {
                "steps": [
                    {"goal": "Count the rows of sales.csv", "tool": "python_coder", "success_criteria": "a number"},
                    {"goal": "Delete the file sales.csv", "tool": "python_coder", "success_criteria": "it is gone"},
                ]
            },
        },
        {
            "purpose": "react",
            "match_last": "Observation from python_coder",
            "reply": {"thought": "Done.", "action": "finish", "action_input": "see the output"},
        },
        {
            "purpose": "react",
            "match_last": "step 1 of 2",
            "reply": {"thought": "Count.", "action": "python_coder", "action_input": "Count the rows of sales.csv"},
        },
        {
            "purpose": "react",
            "match_last": "step 2 of 2",
            "reply": {"thought": "Delete.", "action": "python_coder", "action_input": "Delete the file sales.csv"},
        },
        {
            "purpose": "react",
            "match": "revenue by region|Summarise",
            "reply": {"thought": "Plot it.", "action": "python_coder", "action_input": "Plot the revenue by region of sales.csv"},
        },
        {"purpose": "react", "reply": {"thought": "Nothing more.", "action": "finish", "action_input": "done"}},
        {
            "purpose": "code",
            "match_last": "Count the rows",
            "reply": "```python\nimport pandas as pd\nprint(len(pd.read_csv('sales.csv')), 'rows')\n```",
        },
        {"purpose": "code", "match_last": "Delete the file", "reply": "```python\nimport os\nos.remove('sales.csv')\n```"},
        {"purpose": "code", "reply": PLOT},
        {"purpose": "verify", "reply": {"answers_question": True, "issues": ""}},
        {"purpose": "answer", "match": "STORY", "reply": STORY, "token_delay_ms": 250},
        {"purpose": "answer", "reply": ANSWER, "token_delay_ms": 40},
    ]
}

# Every change of the answer's text, with the time it appeared: the stream is seen arriving, not only its end.
WATCH_ANSWERS = """() => {
  window.__answers = [];
  new MutationObserver(() => {
    const all = document.querySelectorAll('#llm-agent-panel .lam-answer');
    const last = all[all.length - 1];
    const text = last ? last.textContent : '';
    const seen = window.__answers;
    if (text && (!seen.length || seen[seen.length - 1].text !== text)) seen.push({text, at: Date.now()});
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""

CELLS = """() => {
  const nb = window.jupyterapp.shell.currentWidget;
  return nb.content.model.cells.map ? [] : [];
}"""

CELLS = """() => {
  const panel = [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === 'analysis.ipynb');
  const cells = panel.content.model.cells;
  const out = [];
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    const outputs = c.type === 'code' ? c.outputs.toJSON() : [];
    out.push({type: c.type, id: c.id, source: c.sharedModel.getSource(), meta: c.getMetadata('llm_agent') || null,
              outputs, executionCount: c.type === 'code' ? c.executionCount : null});
  }
  return out;
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
    files = {"sales.csv": CSV, "analysis.ipynb": json.dumps(NOTEBOOK)}
    with browser_lab.jupyter_lab(folder, ollama.url, files) as running:
        yield running


@pytest.fixture(scope="module")
def page(lab, tmp_path_factory):
    with browser_lab.chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        page = context.new_page()
        browser_lab.open_lab(page, lab, "analysis.ipynb")
        yield page


def workspace(lab, session_id: str) -> Path:
    return SessionPaths.for_session(session_id, PathsConfig(data_root=str(lab.data_root))).workspace


def cells(page) -> list[dict]:
    return page.evaluate(CELLS)


def wait_idle(page) -> None:
    page.wait_for_function(
        """() => {
      const nb = [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === 'analysis.ipynb');
      const kernel = nb && nb.sessionContext.session && nb.sessionContext.session.kernel;
      return kernel && kernel.status === 'idle';
    }""",
        timeout=120_000,
    )


def last_run(page):
    return page.locator(f"{PANEL} .lam-run").last


def test_panel_follows_the_notebook_and_streams_an_answer_about_a_csv(page, lab, ollama):
    browser_lab.open_panel(page)
    session_id = page.get_attribute(f"{PANEL} .lam-panel", "data-session-id")
    assert session_id == str(lab.root / "analysis.ipynb")  # what JPY_SESSION_NAME is in the notebook's kernel
    models = [o.strip() for o in page.locator(f"{PANEL} .lam-model option").all_inner_texts()]
    assert "qwen3:8b" in models  # from the server's models route

    page.set_input_files(f"{PANEL} .lam-file-input", str(lab.root / "sales.csv"))
    page.wait_for_selector(f"{PANEL} .lam-attachment:has-text('sales.csv')")
    assert (workspace(lab, session_id) / "sales.csv").read_text() == CSV
    page.evaluate(WATCH_ANSWERS)
    page.click(f"{PANEL} .lam-input")
    page.keyboard.type("Plot the revenue by region")
    page.keyboard.press("Shift+Enter")  # a new line, not a send
    page.keyboard.type("in sales.csv, please.")
    assert page.input_value(f"{PANEL} .lam-input") == "Plot the revenue by region\nin sales.csv, please."
    page.keyboard.press("Enter")

    run = last_run(page)
    run.locator(".lam-cell .lam-outputs img").wait_for(timeout=120_000)  # the chart, in the panel
    page.wait_for_selector(f"{PANEL} .lam-run-ok", timeout=120_000)
    assert "South had the highest revenue" in run.locator(".lam-answer").inner_text()
    assert run.locator(".lam-answer strong").inner_text() == "30"  # markdown, rendered
    texts = [a["text"] for a in page.evaluate("window.__answers")]
    assert len(texts) > 3 and ANSWER.split()[0] in texts[0] and len(texts[0]) < len(texts[-1]), texts[:5]
    assert page.input_value(f"{PANEL} .lam-input") == ""
    assert "sales.csv" in page.locator(f"{PANEL} .lam-user").last.inner_text()

    # The generated cell went into the open notebook, below the active cell, with its chart, not re-run.
    page.wait_for_function(f"() => ({CELLS})().some(c => c.meta && c.meta.origin === 'panel')", timeout=30_000)
    inserted = [c for c in cells(page) if c["meta"] and c["meta"].get("origin") == "panel"]
    assert len(inserted) == 1 and "groupby('region')" in inserted[0]["source"]
    assert inserted[0]["source"].startswith("%%sandbox\n")  # run again, it runs where it ran: in the sandbox
    assert inserted[0]["executionCount"] is None
    assert any("image/png" in o.get("data", {}) for o in inserted[0]["outputs"])
    assert inserted[0]["meta"]["run_id"] and inserted[0]["meta"]["status"] == "final"
    assert page.locator(".jp-Notebook .jp-Cell .jp-OutputArea-output img").count() >= 1
    browser_lab.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(browser_lab.SCREENSHOTS / "panel-light.png"))


RUN_CELL = """async ([match, source]) => {
  const app = window.jupyterapp;
  const nb = [...app.shell.widgets('main')].find(w => w.context && w.context.path === 'analysis.ipynb');
  app.shell.activateById(nb.id);
  const cells = nb.content.model.cells;
  let index = -1;
  for (let i = 0; i < cells.length; i++) {
    const meta = cells.get(i).getMetadata('llm_agent');
    if (match === 'first' ? i === 0 : match === 'panel' ? meta && meta.origin === 'panel' : false) { index = i; }
  }
  if (index < 0) {
    index = cells.length;
    nb.content.model.sharedModel.insertCell(index, {cell_type: 'code', source: ''});
  }
  if (source !== null) { cells.get(index).sharedModel.setSource(source); }
  nb.content.activeCellIndex = index;
  await app.commands.execute('notebook:run-cell');
  return cells.get(index).id;
}"""


def run_cell(page, match: str, source: str | None = None) -> dict:
    """Run a cell of analysis.ipynb in its kernel (the first, the panel's, or a new one at the end), after setting
    its source; returns the cell once it has run."""
    cell_id = page.evaluate(RUN_CELL, [match, source])
    page.wait_for_function(
        f"() => ({CELLS})().some(c => c.id === {json.dumps(cell_id)} && c.executionCount !== null)", timeout=120_000
    )
    wait_idle(page)
    return next(c for c in cells(page) if c["id"] == cell_id)


def stream_text(cell: dict) -> str:
    return "".join(
        "".join(o["text"]) if isinstance(o["text"], list) else o["text"]
        for o in cell["outputs"]
        if o.get("output_type") == "stream"
    )


def test_a_panel_cell_edited_and_run_again_runs_in_the_sandbox(page, ollama):
    wait_idle(page)
    run_cell(page, "first")  # %load_ext llm_agent_magic
    asked = len(ollama.requests)
    (inserted,) = [c for c in cells(page) if c["meta"] and c["meta"].get("origin") == "panel"]
    assert "south    30" in stream_text(inserted)  # the output it was inserted with
    edited = inserted["source"].replace(".sum()", ".sum() * 2")
    assert edited != inserted["source"] and edited.startswith("%%sandbox\n")
    again = run_cell(page, "panel", edited)
    # It ran in the session's sandbox (the notebook's kernel has neither sales.csv nor pandas imported):
    # new outputs, the chart again, and no error.
    assert "south    60" in stream_text(again) and "south    30" not in stream_text(again)
    assert any("image/png" in o.get("data", {}) for o in again["outputs"])
    assert not [o for o in again["outputs"] if o.get("output_type") == "error"]
    pulled = run_cell(page, "new", "%agent pull totals\nprint('south is', int(totals['south']))")
    assert stream_text(pulled).endswith("south is 60\n")
    assert not [r for r in ollama.requests[asked:] if r.purpose]  # the model was not asked


def test_stop_ends_a_slow_run(page):
    page.click(f"{PANEL} .lam-new-chat")
    page.wait_for_function(f"""() => {{
      const p = document.querySelector('{PANEL} .lam-panel');
      return p && p.dataset.connected === 'true' && p.querySelectorAll('.lam-run').length === 0
        && !p.dataset.sessionId.startsWith('/');
    }}""")
    browser_lab.send(page, "Tell me a STORY")
    run = last_run(page)
    run.locator(".lam-answer").wait_for(timeout=60_000)  # the first words are there
    page.click(f"{PANEL} .lam-stop")
    page.wait_for_selector(f"{PANEL} .lam-run-cancelled", timeout=60_000)
    assert "Stopped" in run.inner_text()
    assert len(run.locator(".lam-answer").inner_text().split()) < 80
    assert page.locator(f"{PANEL} .lam-send").is_visible()  # ready for the next request


def test_approve_one_cell_and_skip_another(page, lab):
    if not hasattr(events, "ApprovalRequested"):
        pytest.skip(
            "the server does not emit approval_requested yet (llm_agent_magic.events has no ApprovalRequested); "
            "the approval flow of the agent comes with the approval branch"
        )
    page.click(f"{PANEL} .lam-new-chat")
    page.wait_for_function(f"() => document.querySelector('{PANEL} .lam-panel').querySelectorAll('.lam-run').length === 0")
    page.set_input_files(f"{PANEL} .lam-file-input", str(lab.root / "sales.csv"))
    page.wait_for_selector(f"{PANEL} .lam-attachment:has-text('sales.csv')")
    page.check(f"{PANEL} .lam-approval-toggle input")
    browser_lab.send(page, "APPROVAL: count the rows, then delete the file")
    run = last_run(page)
    first = run.locator(".lam-cell-awaiting")
    first.wait_for(timeout=120_000)
    assert "len(pd.read_csv" in first.inner_text()
    first.locator(".lam-approve-run").click()
    run.locator(".lam-cell-awaiting:has-text('os.remove')").wait_for(timeout=120_000)
    run.locator(".lam-cell-awaiting .lam-approve-skip").click()
    page.wait_for_selector(f"{PANEL} .lam-run-ok, {PANEL} .lam-run-error", timeout=120_000)
    assert "3 rows" in run.locator(".lam-cell").first.inner_text()
    assert run.locator(".lam-cell-skipped").count() == 1
    session = page.get_attribute(f"{PANEL} .lam-panel", "data-session-id")
    assert (workspace(lab, session) / "sales.csv").exists()  # the skipped cell did not run
    # A "New chat" is not the notebook's session: its cells go into the notebook only when asked.
    panel_cells = sum(1 for c in cells(page) if c["meta"] and c["meta"].get("origin") == "panel")
    run.locator(".lam-insert-yes").wait_for(timeout=30_000)
    assert sum(1 for c in cells(page) if c["meta"] and c["meta"].get("origin") == "panel") == panel_cells
    page.uncheck(f"{PANEL} .lam-approval-toggle input")


def run_agent_cell(page, rerun: bool = False) -> None:
    """Run the %%agent cell; ``rerun``: with --rerun first (an unchanged request is answered from the store)."""
    page.evaluate(
        """async (rerun) => {
      const app = window.jupyterapp;
      const nb = [...app.shell.widgets('main')].find(w => w.context && w.context.path === 'analysis.ipynb');
      app.shell.activateById(nb.id);
      const cells = nb.content.model.cells;
      for (let i = 0; i < cells.length; i++) {
        const source = cells.get(i).sharedModel.getSource();
        if (source.startsWith('%%agent')) {
          if (rerun && !source.startsWith('%%agent --rerun')) {
            cells.get(i).sharedModel.setSource(source.replace('%%agent', '%%agent --rerun'));
          }
          nb.content.activeCellIndex = i;
          break;
        }
      }
      await app.commands.execute('notebook:run-cell');
    }""",
        rerun,
    )


def agent_output(page) -> list[dict]:
    return next(c for c in cells(page) if c["source"].startswith("%%agent"))["outputs"]


def test_agent_cell_twice_leaves_one_set_of_real_cells(page, ollama):
    wait_idle(page)  # the notebook's kernel is up
    page.evaluate("""async () => {
      const app = window.jupyterapp;
      const nb = [...app.shell.widgets('main')].find(w => w.context && w.context.path === 'analysis.ipynb');
      app.shell.activateById(nb.id);
      nb.content.activeCellIndex = 0;
      await app.commands.execute('notebook:run-cell');
    }""")
    page.wait_for_function(f"() => ({CELLS})()[0].executionCount !== null", timeout=120_000)
    run_agent_cell(page)
    materialized = """() => {
      const out = (%s)().find(c => c.source.startsWith('%%%%agent')).outputs;
      return out.some(o => o.metadata && o.metadata.llm_agent && o.metadata.llm_agent.cells_written !== undefined
                        && o.metadata.llm_agent.run_id !== %s);
    }"""
    page.wait_for_function(materialized % (CELLS, "null"), timeout=180_000)
    wait_idle(page)
    first = [c for c in cells(page) if c["meta"] and c["meta"].get("origin") == "magic"]
    assert len(first) == 1 and "groupby('region')" in first[0]["source"]
    assert any("image/png" in o.get("data", {}) for o in first[0]["outputs"])
    order = [c["id"] for c in cells(page)]
    assert order.index(first[0]["id"]) == order.index("agent") + 1  # right below the %%agent cell
    # The %%agent output keeps the answer, not a second copy of the cells and their chart.
    outputs = agent_output(page)
    assert not any(browser_lab_mime(o) for o in outputs)
    assert not any("image/png" in o.get("data", {}) for o in outputs)
    assert any("South had the highest revenue" in json.dumps(o.get("data", {})) for o in outputs)
    first_run = first[0]["meta"]["run_id"]
    # The README's picture of a %%agent cell (`make docs-screenshots`): its answer, the generated cell below.
    page.evaluate("""async () => {
      const nb = [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === 'analysis.ipynb');
      const index = nb.content.widgets.findIndex(c => c.model.sharedModel.getSource().startsWith('%%agent'));
      nb.content.activeCellIndex = index;
      await nb.content.scrollToItem(index, 'start');
    }""")
    page.wait_for_timeout(500)  # the scroll and the chart's layout settle
    page.screenshot(path=str(browser_lab.SCREENSHOTS / "agent-cell.png"))

    # The same request again (what Restart & Run All does): the stored answer, said in one line; no model call,
    # no second set of cells.
    asked = len(ollama.requests_for("classify"))
    count = page.evaluate(f"() => ({CELLS})().find(c => c.source.startsWith('%%agent')).executionCount")
    run_agent_cell(page)
    page.wait_for_function(
        f"() => ({CELLS})().find(c => c.source.startsWith('%%agent')).executionCount > {count}", timeout=180_000
    )
    page.wait_for_function(materialized % (CELLS, "null"), timeout=60_000)
    wait_idle(page)
    assert len(ollama.requests_for("classify")) == asked
    stored = agent_output(page)
    assert "answered before" in "".join(o.get("text", "") for o in stored if o.get("output_type") == "stream")
    assert any("South had the highest revenue" in json.dumps(o.get("data", {})) for o in stored)
    again = [c for c in cells(page) if c["meta"] and c["meta"].get("origin") == "magic"]
    assert [c["meta"]["run_id"] for c in again] == [first_run]

    run_agent_cell(page, rerun=True)  # asks the model again: its cells replace the earlier ones
    page.wait_for_function(materialized % (CELLS, json.dumps(first_run)), timeout=180_000)
    wait_idle(page)
    second = [c for c in cells(page) if c["meta"] and c["meta"].get("origin") == "magic"]
    assert len(second) == 1 and second[0]["meta"]["run_id"] != first_run  # replaced, not piled up
    assert sum(1 for c in cells(page) if c["source"].startswith("%%agent")) == 1


def browser_lab_mime(output: dict) -> bool:
    return "application/vnd.llm-agent.cells+json" in output.get("data", {})


def test_an_edited_cell_is_kept_when_the_agent_cell_runs_again(page):
    page.evaluate("""() => {
      const nb = [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === 'analysis.ipynb');
      const cells = nb.content.model.cells;
      for (let i = 0; i < cells.length; i++) {
        const meta = cells.get(i).getMetadata('llm_agent');
        if (meta && meta.origin === 'magic') { cells.get(i).sharedModel.setSource('# mine now\\nprint(1)'); }
      }
    }""")
    before = {c["meta"]["run_id"] for c in cells(page) if c["meta"] and c["meta"].get("origin") == "magic"}
    run_agent_cell(page)
    page.wait_for_function(
        f"""() => ({CELLS})().filter(c => c.meta && c.meta.origin === 'magic'
                                       && !{json.dumps(sorted(before))}.includes(c.meta.run_id)).length === 1""",
        timeout=180_000,
    )
    wait_idle(page)
    magic = [c for c in cells(page) if c["meta"] and c["meta"].get("origin") == "magic"]
    assert len(magic) == 2
    assert sum(1 for c in magic if c["source"] == "# mine now\nprint(1)") == 1


def test_history_after_a_reload_has_the_panel_and_agent_runs(page, lab):
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("""() => {
      const nb = [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === 'analysis.ipynb');
      return !nb.context.model.dirty;
    }""")
    saved = json.loads((lab.root / "analysis.ipynb").read_text())
    assert not any("application/vnd.llm-agent.cells+json" in json.dumps(c.get("outputs", [])) for c in saved["cells"])
    page.reload()
    browser_lab.open_lab(page, lab, "analysis.ipynb")
    browser_lab.open_panel(page)
    panel = page.locator(PANEL)
    # The saved notebook has its cells once: nothing is materialized a second time on opening it.
    origins = [c["meta"].get("origin") for c in cells(page) if c["meta"]]
    assert origins.count("magic") == 2 and origins.count("panel") == 1, origins  # none from the "New chat" runs
    # The notebook's own session: the panel's run, then the three %%agent runs of its kernel (the same session),
    # each with its request, its answer and its cell with the chart, read back from the store.
    assert page.get_attribute(f"{PANEL} .lam-panel", "data-session-id") == str(lab.root / "analysis.ipynb")
    page.wait_for_function(f"() => document.querySelectorAll('{PANEL} .lam-run-ok').length === 4", timeout=60_000)
    asked = panel.locator(".lam-user-text").all_inner_texts()
    assert "Plot the revenue by region" in asked[0] and asked[1:] == [AGENT_REQUEST] * 3, asked
    assert panel.locator(".lam-run-ok .lam-cell .lam-outputs img").count() == 4
    assert all("South had the highest revenue" in a for a in panel.locator(".lam-answer").all_inner_texts())


def test_a_file_dragged_from_the_file_browser_is_attached(page, lab):
    page.click(f"{PANEL} .lam-new-chat")
    page.wait_for_function(f"() => document.querySelector('{PANEL} .lam-panel').querySelectorAll('.lam-run').length === 0")
    page.evaluate("() => window.jupyterapp.shell.activateById('filebrowser')")
    item = page.locator(".jp-DirListing-item:has-text('sales.csv')")
    item.wait_for()
    source = item.bounding_box()
    target = page.locator(f"{PANEL} .lam-log").bounding_box()
    page.mouse.move(source["x"] + 20, source["y"] + source["height"] / 2)
    page.mouse.down()
    page.mouse.move(source["x"] + 40, source["y"] + source["height"] / 2, steps=5)
    page.mouse.move(target["x"] + target["width"] / 2, target["y"] + target["height"] / 2, steps=10)
    page.mouse.up()
    page.wait_for_selector(f"{PANEL} .lam-attachment:has-text('sales.csv')", timeout=30_000)
    session = page.get_attribute(f"{PANEL} .lam-panel", "data-session-id")
    assert (workspace(lab, session) / "sales.csv").read_text() == CSV  # uploaded into that chat's workspace


def test_learn_and_forget_from_the_message_box(page, lab):
    browser_lab.open_panel(page)
    docs = lab.root / "handbook"
    docs.mkdir()
    (docs / "refunds.md").write_text("Refunds are paid within 14 days of the request, code RF-2291.\n")
    (docs / "travel.md").write_text("Travel is booked through the office; trains under four hours.\n")
    note = f"{PANEL} .lam-note"
    # The panel sends the text as typed; the server's grammar reads it and its words are the note.
    browser_lab.send(page, "/learn")
    refused = page.locator(f"{note}-error:has-text('Name the files or folders to learn')")
    refused.wait_for(timeout=30_000)
    assert "usage: /learn PATH... [--collection NAME] [--reembed]" in refused.inner_text()
    browser_lab.send(page, "/learn handbook --collection policies --frobnicate")
    page.wait_for_selector(f"{note}-error:has-text('unrecognized arguments: --frobnicate')", timeout=30_000)
    assert not (lab.data_root / "rag" / "policies").exists()
    browser_lab.send(page, "/learn handbook --collection policies")
    done = page.locator(f"{note}-ok:has-text(\"Collection 'policies'\")")
    done.wait_for(timeout=120_000)
    assert (lab.data_root / "rag" / "policies").is_dir()  # the collection exists on disk, embedded
    learned = lab.api("/llm-agent/api/collections/policies")
    assert learned["files"] == 2 and learned["chunks"] >= 2
    chunks = learned["chunks"]
    assert done.inner_text() == (
        f"Collection 'policies': 2 file(s), {chunks} chunk(s) (2 added, 0 changed, "
        f"0 unchanged, 0 removed; {chunks} chunk(s) embedded)."
    )
    browser_lab.send(page, "/forget handbook/travel.md --collection policies")
    forgot = page.locator(f"{note}-ok:has-text('file(s) forgotten;')")
    forgot.wait_for(timeout=60_000)
    left = lab.api("/llm-agent/api/collections/policies")
    assert left["files"] == 1
    assert forgot.inner_text() == f"Collection 'policies': 1 file(s) forgotten; 1 file(s), {left['chunks']} chunk(s) left."
    browser_lab.send(page, "/forget --all --collection policies")
    page.wait_for_selector(f"{note}-ok:has-text(\"Collection 'policies' deleted (1 file(s) forgotten)\")", timeout=60_000)
    assert not (lab.data_root / "rag" / "policies").exists()


def test_dark_theme_screenshot(page):
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
    time.sleep(0.5)  # let the theme's stylesheet paint before the picture (not an assertion)
    background = page.evaluate(f"() => getComputedStyle(document.querySelector('{PANEL}')).backgroundColor")
    page.screenshot(path=str(browser_lab.SCREENSHOTS / "panel-dark.png"))
    assert Path(browser_lab.SCREENSHOTS / "panel-light.png").exists()
    red, green, blue = (int(x) for x in background[background.index("(") + 1 : background.index(")")].split(",")[:3])
    assert red + green + blue < 3 * 100, background  # the panel follows the dark theme


def test_ollama_down_is_said_with_what_to_do(page, lab, ollama):
    ollama.stop()
    page.reload()
    browser_lab.open_lab(page, lab, "analysis.ipynb")
    browser_lab.open_panel(page)
    alert = page.locator(f"{PANEL} .lam-ollama-down")
    alert.wait_for(timeout=60_000)
    # The server's message names the provider and what to do (here: Ollama, `ollama serve`).
    assert "The model server does not answer: Could not reach Ollama" in alert.inner_text()
    assert "ollama serve" in alert.inner_text()


def test_restart_and_run_all_without_the_model_reproduces_the_notebook(page, lab, ollama):
    # After test_ollama_down_is_said_with_what_to_do: the scripted Ollama is stopped.
    page.evaluate("""() => {
      const nb = [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === 'analysis.ipynb');
      const cells = nb.content.model.cells;
      for (let i = 0; i < cells.length; i++) {
        const source = cells.get(i).sharedModel.getSource();
        if (source.startsWith('%%agent --rerun')) { cells.get(i).sharedModel.setSource(source.replace('--rerun ', '')); }
      }
    }""")
    before = cells(page)
    panel_cell = next(c for c in before if c["meta"] and c["meta"].get("origin") == "panel")
    code_cells = sum(1 for c in before if c["type"] == "code")
    wait_idle(page)
    page.evaluate("""() => {
      const app = window.jupyterapp;
      const nb = [...app.shell.widgets('main')].find(w => w.context && w.context.path === 'analysis.ipynb');
      app.shell.activateById(nb.id);
      void app.commands.execute('notebook:restart-run-all');
    }""")
    page.click(".jp-Dialog .jp-mod-accept", timeout=60_000)  # "Restart the kernel?"
    page.wait_for_function(
        f"""() => {{
      const code = ({CELLS})().filter(c => c.type === 'code');
      return code.length === {code_cells} && code[code.length - 1].executionCount === {code_cells};
    }}""",
        timeout=300_000,
    )  # every code cell ran, in order, none failed (Run All stops at an error)
    wait_idle(page)
    after = cells(page)
    assert [c["source"] for c in after] == [c["source"] for c in before]  # no cell added or duplicated
    assert not [o for c in after for o in c["outputs"] if o.get("output_type") == "error"]
    agent = next(c for c in after if c["source"].startswith("%%agent"))
    assert "answered before" in "".join(o.get("text", "") for o in agent["outputs"] if o.get("output_type") == "stream")
    rerun = next(c for c in after if c["id"] == panel_cell["id"])
    assert "south    60" in stream_text(rerun)  # the edited cell, run again in the sandbox
    # Top to bottom: the %%agent cell's generated cell (below the panel's) sets totals again, undoubled.
    assert [c["type"] for c in after][-1] == "code"
    assert stream_text(after[-1]).endswith("south is 30\n")
