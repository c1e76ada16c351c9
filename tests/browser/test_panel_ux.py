"""The panel as a person first meets it, in a real browser: its width, names, pickers, what an empty panel
offers, wide tables and charts, and the way out when Ollama or a model is missing.

One JupyterLab and one browser for the module; the tests run in order (the last ones stop the scripted Ollama).
"""

from __future__ import annotations

import json

import lab as browser_lab
import nbformat
import pytest

from llm_agent_magic.testing.fake_ollama import FakeOllama

pytestmark = pytest.mark.slow

PANEL = browser_lab.PANEL
LONG_LINE = "summary = " + " + ".join(f"wide[{i}]" for i in range(40))
CODE = (
    "```python\nimport pandas as pd\nimport matplotlib.pyplot as plt\n"
    "wide = pd.DataFrame({f'a_rather_long_column_name_{i}': [i, 2 * i, 3 * i] for i in range(16)})\n"
    "display(wide)\nwide.iloc[1].plot.bar(title='second row')\nplt.show()\n"
    f"# {LONG_LINE}\n```"
)
ANSWER = f"The table has 16 columns. The sum, as code:\n\n```python\n{LONG_LINE}\n```\n"
STORY = " ".join(f"word{i}" for i in range(60))
SCRIPT = {
    "rules": [
        # "Request: ..." is this run's own request: the notebook's cells (the %%agent cell's text among them) are in
        # every run's context, and earlier requests in its history.
        {"purpose": "classify", "match": "Request: Tell me a SLOW", "reply": {"mode": "chat", "reason": "talk"}},
        {"purpose": "answer", "match": "Request: Tell me a SLOW", "reply": STORY, "token_delay_ms": 200},
        {"purpose": "classify", "reply": {"mode": "react", "reason": "data"}},
        {
            "purpose": "react",
            "match_last": "Observation from python_coder",
            "reply": {"thought": "Done.", "action": "finish", "action_input": "see the output"},
        },
        {"purpose": "react", "reply": {"thought": "Table it.", "action": "python_coder", "action_input": "A wide table"}},
        {"purpose": "code", "reply": CODE},
        {"purpose": "verify", "reply": {"answers_question": True, "issues": ""}},
        {"purpose": "answer", "reply": ANSWER},
    ]
}
NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "id": "intro", "metadata": {}, "source": "# Sales"},
        nbformat.v4.new_code_cell("%load_ext llm_agent_magic", id="load"),
        nbformat.v4.new_code_cell("%%agent --mode chat\nTell me a SLOW story", id="agent"),
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.fixture(scope="module")
def ollama():
    with FakeOllama(SCRIPT) as server:
        server.first_port = server.port  # where the lab looks for it, after a stop too
        yield server


@pytest.fixture(scope="module")
def lab(tmp_path_factory, ollama):
    problem = browser_lab.missing()
    if problem:
        pytest.skip(problem)
    with browser_lab.jupyter_lab(tmp_path_factory.mktemp("lab"), ollama.url, {"sales.ipynb": json.dumps(NOTEBOOK)}) as running:
        yield running


@pytest.fixture(scope="module")
def page(lab, tmp_path_factory):
    with browser_lab.chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        page = context.new_page()
        browser_lab.open_lab(page, lab, "sales.ipynb")
        yield page


def panel_width(page) -> float:
    return page.locator(PANEL).bounding_box()["width"]


#: The window sizes and themes the screenshots are taken at (build/browser-screenshots/NAME-WxH-THEME.png).
VIEWPORTS = [(1280, 800), (1920, 1080)]
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}


def set_theme(page, theme: str) -> None:
    page.evaluate(f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{THEMES[theme]}'}})")
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{str(theme == 'light').lower()}'", timeout=30_000)
    page.wait_for_timeout(300)  # the theme's stylesheet paints before the picture (not an assertion)


def shoot(page, name: str) -> list[str]:
    """Screenshots of the page as it is, at each size and in each theme; back to 1400x900, light, afterwards."""
    browser_lab.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    saved = []
    for theme in THEMES:
        set_theme(page, theme)
        for width, height in VIEWPORTS:
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(200)  # the layout follows the new size
            path = browser_lab.SCREENSHOTS / f"{name}-{width}x{height}-{theme}.png"
            page.screenshot(path=str(path))
            saved.append(path.name)
    page.set_viewport_size({"width": 1400, "height": 900})
    set_theme(page, "light")
    return saved


def drag_panel_edge(page, dx: float) -> None:
    """Drag the split handle between the main area and the panel by ``dx`` pixels (negative: wider)."""
    left = page.locator(PANEL).bounding_box()["x"]
    box = page.evaluate(f"""() => {{
      const handles = [...document.querySelectorAll('#jp-main-split-panel > .lm-SplitPanel-handle')]
        .map(h => h.getBoundingClientRect()).filter(r => r.width > 0 && r.height > 0);
      const r = handles.sort((a, b) => Math.abs(a.x - {left}) - Math.abs(b.x - {left}))[0];
      return {{x: r.x, y: r.y, width: r.width}};
    }}""")
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 200)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + dx, box["y"] + 200, steps=8)
    page.mouse.up()


def new_chat(page) -> None:
    page.click(f"{PANEL} .lam-new-chat")
    page.wait_for_function(
        f"""() => {{
      const p = document.querySelector('{PANEL} .lam-panel');
      return p && p.dataset.connected === 'true' && p.querySelectorAll('.lam-run').length === 0
        && !p.dataset.sessionId.startsWith('/');
    }}""",
        timeout=60_000,
    )


def test_an_empty_panel_opens_wide_enough_and_says_what_it_can_do(page):
    browser_lab.open_panel(page)
    assert 400 <= panel_width(page) <= 440
    # The session is named after the notebook, not the server's absolute path.
    picker = page.locator(f"{PANEL} .lam-session-select")
    assert picker.locator("option:checked").inner_text() == "sales.ipynb"
    assert not any(t.startswith("/") for t in picker.locator("option").all_inner_texts())
    # Readable modes, chat models only.
    assert page.locator(f"{PANEL} .lam-mode option").all_inner_texts() == ["Auto", "Answer only", "Use tools", "Plan steps"]
    page.wait_for_function(f"() => document.querySelectorAll('{PANEL} .lam-model option').length > 1")
    models = page.locator(f"{PANEL} .lam-model option").all_inner_texts()
    assert "qwen3:8b" in models and not any("embed" in m for m in models), models
    # Three requests about this notebook; a click puts one in the message box. Attaching and /learn are explained.
    empty = page.locator(f"{PANEL} .lam-empty")
    examples = empty.locator(".lam-example")
    assert examples.count() == 3 and all("sales.ipynb" in t for t in examples.all_inner_texts())
    assert "Attach" in empty.inner_text() and "/learn" in empty.inner_text()
    assert len(shoot(page, "empty-panel")) == 4
    examples.nth(1).click()
    assert page.input_value(f"{PANEL} .lam-input") == examples.nth(1).inner_text()


def test_the_width_the_user_drags_to_is_remembered(page, lab):
    drag_panel_edge(page, -100)
    dragged = panel_width(page)
    assert dragged > 480
    page.reload()
    browser_lab.open_lab(page, lab, "sales.ipynb")
    browser_lab.open_panel(page)
    assert abs(panel_width(page) - dragged) < 12


def test_a_wide_table_scrolls_in_the_panel_and_the_chart_fills_it(page):
    browser_lab.send(page, "Show the wide table")
    run = page.locator(f"{PANEL} .lam-run").last
    run.locator(".lam-outputs table").wait_for(timeout=120_000)
    run.locator(".lam-outputs img").wait_for(timeout=120_000)
    page.wait_for_selector(f"{PANEL} .lam-run-ok", timeout=120_000)
    sizes = page.evaluate(f"""() => {{
      const log = document.querySelector('{PANEL} .lam-log');
      const table = log.querySelector('.lam-outputs table');
      const scroller = table.closest('.jp-OutputArea-output');
      const img = log.querySelector('.lam-outputs img');
      const pre = [...log.querySelectorAll('.lam-answer pre, .lam-code pre')];
      return {{log: [log.scrollWidth, log.clientWidth], table: [table.scrollWidth, table.clientWidth],
               scroller: scroller.clientWidth, img: img.getBoundingClientRect().width,
               cells: log.querySelector('.lam-cell').getBoundingClientRect().width,
               pre: pre.map(p => [getComputedStyle(p).whiteSpace, p.scrollWidth, p.clientWidth])}};
    }}""")
    assert sizes["log"][0] <= sizes["log"][1], sizes  # nothing pushes the panel wider than itself
    assert sizes["table"][0] > sizes["table"][1], sizes  # the table scrolls inside
    assert sizes["img"] >= sizes["cells"] - 24, sizes  # the chart fills the panel's width
    assert len(sizes["pre"]) == 2 and all(ws == "pre" and sw > cw for ws, sw, cw in sizes["pre"]), sizes
    image = run.locator(".lam-outputs img")
    image.click()
    enlarged = page.locator(".lam-enlarged img")
    enlarged.wait_for()
    assert enlarged.bounding_box()["width"] > image.bounding_box()["width"] * 1.5
    page.keyboard.press("Escape")
    enlarged.wait_for(state="detached")
    assert len(shoot(page, "finished-run")) == 4
    # At 250 px the run still fits: nothing pushes the panel wider than itself.
    width = panel_width(page)
    drag_panel_edge(page, width - 250)
    assert abs(panel_width(page) - 250) < 12
    assert (
        page.evaluate(f"() => {{ const l = document.querySelector('{PANEL} .lam-log'); return l.scrollWidth <= l.clientWidth; }}")
        is True
    )
    page.screenshot(path=str(browser_lab.SCREENSHOTS / "finished-run-250px.png"))
    drag_panel_edge(page, 250 - width)


def test_the_approval_prompt(page):
    new_chat(page)
    page.check(f"{PANEL} .lam-approval-toggle input")
    browser_lab.send(page, "Show the wide table, after asking")
    waiting = page.locator(f"{PANEL} .lam-cell-awaiting")
    waiting.wait_for(timeout=120_000)
    assert waiting.locator(".lam-approve-run").is_visible()
    assert len(shoot(page, "approval-prompt")) == 4
    waiting.locator(".lam-approve-skip").click()
    page.wait_for_selector(f"{PANEL} .lam-run-ok, {PANEL} .lam-run-error", timeout=120_000)
    page.uncheck(f"{PANEL} .lam-approval-toggle input")


def test_a_shortcut_focuses_the_message_box_and_escape_goes_back_to_the_notebook(page):
    page.locator(".jp-Notebook .jp-Cell").first.click()
    active = "() => { const a = document.activeElement; return a ? [a.className, !!a.closest('.jp-Notebook')] : null; }"
    assert page.evaluate(active)[1]
    page.keyboard.press("Alt+Shift+A")
    page.wait_for_function("() => document.activeElement && document.activeElement.classList.contains('lam-input')")
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.activeElement && !!document.activeElement.closest('.jp-Notebook')")
    assert page.evaluate("() => window.jupyterapp.shell.currentWidget.context.path") == "sales.ipynb"


def test_the_palette_offers_opening_the_panel_before_a_new_chat(page):
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:activate-command-palette')")
    page.wait_for_selector(".lm-CommandPalette-item[data-command='llm-agent:open-panel']", state="attached")
    listed = page.evaluate("() => [...document.querySelectorAll('.lm-CommandPalette-item')].map(li => li.dataset.command)")
    page.keyboard.press("Escape")
    ours = [command for command in listed if command.startswith("llm-agent:")]
    assert ours == [
        "llm-agent:open-panel",
        "llm-agent:new-chat",
        "llm-agent:focus-input",
        "llm-agent:fix-cell",
        "llm-agent:explain-cell",
        "llm-agent:add-cells",
    ], ours


def test_the_settings_editors_model_host_and_context_apply_to_the_panels_runs(page, lab):
    other_script = {
        "models": ["llama3.2:3b"],
        "rules": [
            {"purpose": "classify", "reply": {"mode": "chat", "reason": "talk"}},
            {"purpose": "answer", "reply": "Hello from llama."},
        ],
    }
    with FakeOllama(other_script) as other:
        settings = {"model": "llama3.2:3b", "ollamaHost": other.url, "contextWindow": 4096, "historyMessages": 2}
        save = "raw => window.jupyterapp.serviceManager.settings.save('llm-agent-magic:plugin', raw)"
        page.evaluate(save, json.dumps(settings))  # as the Settings editor stores them
        page.reload()
        browser_lab.open_lab(page, lab, "sales.ipynb")
        browser_lab.open_panel(page)
        page.wait_for_selector(f"{PANEL} .lam-model option:has-text('default (llama3.2:3b)')", state="attached")
        new_chat(page)
        browser_lab.send(page, "Say hello")
        page.wait_for_selector(f"{PANEL} .lam-run-ok", timeout=120_000)
        assert "Hello from llama." in page.locator(f"{PANEL} .lam-answer").last.inner_text()
        answers = other.requests_for("answer")
        assert answers and all(r.model == "llama3.2:3b" and r.body["options"]["num_ctx"] == 4096 for r in answers)
        assert lab.api("/llm-agent/api/settings")["user"] == {
            "model": "llama3.2:3b",
            "host": other.url,
            "num_ctx": 4096,
            "history_messages": 2,
        }
        page.evaluate(save, "{}")  # back to the server's settings for the tests after this one
        page.reload()
        browser_lab.open_lab(page, lab, "sales.ipynb")
        browser_lab.open_panel(page)
    assert lab.api("/llm-agent/api/settings")["user"] == {}


RUN_CELL = """start => {  // the cell whose source starts so; not awaited: the command's promise ends with the cell
  const app = window.jupyterapp;
  const nb = [...app.shell.widgets('main')].find(w => w.context && w.context.path === 'sales.ipynb');
  app.shell.activateById(nb.id);
  const cells = nb.content.model.cells;
  for (let i = 0; i < cells.length; i++) {
    if (cells.get(i).sharedModel.getSource().startsWith(start)) { nb.content.activeCellIndex = i; break; }
  }
  void app.commands.execute('notebook:run-cell');
}"""
KERNEL = """() => {
  const nb = [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === 'sales.ipynb');
  const kernel = nb && nb.sessionContext.session && nb.sessionContext.session.kernel;
  return kernel ? kernel.status : '';
}"""
OUTPUT_OF = """start => {
  const nb = [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === 'sales.ipynb');
  const cells = nb.content.model.cells;
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.sharedModel.getSource().startsWith(start)) return JSON.stringify(cell.outputs.toJSON());
  }
  return '';
}"""


def test_an_agent_cell_in_progress_shows_live_in_the_panel_and_a_stop_keeps_its_text(page):
    page.wait_for_function(f"() => ({KERNEL})() === 'idle'", timeout=120_000)
    page.evaluate(RUN_CELL, "%load_ext")
    page.wait_for_function(
        """() => {
      const nb = [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === 'sales.ipynb');
      const cells = nb.content.model.cells;
      for (let i = 0; i < cells.length; i++) {
        const cell = cells.get(i);
        if (cell.sharedModel.getSource().startsWith('%load_ext')) return cell.executionCount !== null;
      }
      return false;
    }""",
        timeout=120_000,
    )
    page.wait_for_function(f"() => ({KERNEL})() === 'idle'", timeout=120_000)
    page.evaluate(RUN_CELL, "%%agent")  # streaming slowly
    answer = page.locator(f"{PANEL} .lam-run").last.locator(".lam-answer")
    page.wait_for_function(
        f"""() => {{
      const all = document.querySelectorAll('{PANEL} .lam-answer');
      const text = all.length ? all[all.length - 1].textContent : '';
      return text.includes('word3');
    }}""",
        timeout=120_000,
    )
    shown = answer.inner_text()
    assert page.evaluate(KERNEL) == "busy"  # the cell is still running: the panel shows it as it goes
    assert "word59" not in shown
    assert "Tell me a SLOW story" in page.locator(f"{PANEL} .lam-user-text").last.inner_text()
    page.wait_for_function(
        f"""() => {{
      const all = document.querySelectorAll('{PANEL} .lam-answer');
      return all[all.length - 1].textContent.includes('word8');
    }}""",
        timeout=60_000,
    )
    # Stopping the cell keeps, in its output, the text streamed so far.
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:interrupt-kernel')")
    page.wait_for_function(f"() => ({OUTPUT_OF})('%%agent').includes('Stopped')", timeout=60_000)
    output = page.evaluate(OUTPUT_OF, "%%agent")
    assert "word8" in output and "word59" not in output
    page.wait_for_selector(f"{PANEL} .lam-run-cancelled", timeout=60_000)
    assert "word8" in page.locator(f"{PANEL} .lam-run-cancelled .lam-answer").last.inner_text()


def test_ollama_down_is_said_once_with_a_retry_that_works(page, lab, ollama):
    port = ollama.first_port
    ollama.stop()
    page.reload()
    browser_lab.open_lab(page, lab, "sales.ipynb")
    browser_lab.open_panel(page)
    down = page.locator(f"{PANEL} .lam-ollama-down")
    down.wait_for(timeout=60_000)
    assert page.locator(PANEL).inner_text().count("The model server does not answer") == 1
    assert "ollama serve" in down.inner_text()
    assert len(shoot(page, "ollama-down")) == 4
    down.locator(".lam-retry").click()  # still down: said again, still once
    page.wait_for_selector(f"{PANEL} .lam-ollama-down .lam-retry:not([disabled])")
    assert page.locator(PANEL).inner_text().count("The model server does not answer") == 1
    # Ollama starts, with the default model not pulled yet: Retry lists the models and says how to pull it.
    with FakeOllama({**SCRIPT, "models": ["llama3.2:3b", "nomic-embed-text"]}, port=port) as started:
        page.locator(f"{PANEL} .lam-retry").click()
        missing = page.locator(f"{PANEL} .lam-model-missing")
        missing.wait_for(timeout=30_000)
        assert down.count() == 0
        assert "ollama pull qwen3:8b" in missing.locator("code").inner_text()
        models = page.locator(f"{PANEL} .lam-model option").all_inner_texts()
        assert "llama3.2:3b" in models and not any("embed" in m for m in models)
        missing.locator(".lam-copy").click()
        assert missing.locator(".lam-copy").inner_text() == "Copied"
        started.load(SCRIPT)  # pulled now
        missing.locator(".lam-retry").click()
        missing.wait_for(state="detached", timeout=30_000)


def models_listed(page) -> list[str]:
    return page.locator(f"{PANEL} .lam-model option").all_inner_texts()


def test_models_are_asked_for_again_on_opening_the_panel_and_every_minute_while_none(page, lab, ollama):
    # Ollama is down again (the previous test's one stopped): opening the panel asks, and says so.
    page.clock.install()  # the page's timers, under the test's hand from the next load on
    page.reload()
    browser_lab.open_lab(page, lab, "sales.ipynb")
    browser_lab.open_panel(page)
    page.locator(f"{PANEL} .lam-ollama-down").wait_for(timeout=60_000)
    tab = page.locator(f'.jp-SideBar .lm-TabBar-tab[data-id="{PANEL.lstrip("#")}"]')
    tab.click()  # closed
    page.locator(PANEL).wait_for(state="hidden")
    with FakeOllama(SCRIPT, port=ollama.first_port):
        tab.click()  # opened again: the models are there without a Retry
        page.wait_for_selector(f"{PANEL} .lam-model option[value='qwen3:8b']", state="attached", timeout=30_000)
        assert page.locator(f"{PANEL} .lam-ollama-down").count() == 0
    # Down again; the panel stays open and says so after its next look.
    page.reload()
    browser_lab.open_lab(page, lab, "sales.ipynb")
    browser_lab.open_panel(page)
    page.locator(f"{PANEL} .lam-ollama-down").wait_for(timeout=60_000)
    with FakeOllama(SCRIPT, port=ollama.first_port):
        page.clock.fast_forward("00:30")
        assert "qwen3:8b" not in models_listed(page)  # not asked again yet
        page.clock.fast_forward("00:31")  # a minute after the last look
        page.wait_for_selector(f"{PANEL} .lam-model option[value='qwen3:8b']", state="attached", timeout=30_000)
        assert page.locator(f"{PANEL} .lam-ollama-down").count() == 0
