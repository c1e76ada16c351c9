"""The notebook's cells and the panel (issue 22), in a real browser: "Fix with agent" on a failing cell (the diff
shown, accepted, the cell run in the user's kernel), "Explain" from the cell's context menu, selected cells added
to the chat (and sent), Copy / Insert below / Replace on an answer's code block, and `@file` / `{variable}`
completion. One JupyterLab and one browser for the module; the tests run in order (the fix defines `sales`).
"""

from __future__ import annotations

import json

import lab as browser_lab
import nbformat
import pytest
from test_panel_ux import drag_panel_edge, panel_width

from llm_agent_magic.testing.fake_ollama import FakeOllama

pytestmark = pytest.mark.slow

PANEL = browser_lab.PANEL
CSV = "region,amount\nnorth,10\nsouth,30\neast,20\n"
FAILING = "totals = sales['amount'].sum()\nprint(totals)"
BROKEN = "print(undefined_name)"
FIXED = "import pandas as pd\nsales = pd.read_csv('sales.csv')\ntotals = sales['amount'].sum()\nprint(totals)"
# The request opens with "Request: ..." in the run's first message; the history holds earlier requests without it.
SCRIPT = {
    "rules": [
        {
            "purpose": "answer",
            "match": r"Request: Cell \[\d+\] of my notebook failed",
            "reply": f"```python\n{FIXED}\n```\n\n`sales` was never loaded: read the CSV first.",
        },
        {"purpose": "answer", "match": "Request: Explain cell", "reply": "It adds up the **amount** column."},
        {"purpose": "classify", "reply": {"mode": "chat", "reason": "talk"}},
        {
            "purpose": "answer",
            "match": "Request: Give me code",
            "reply": "Here it is:\n\n```python\nprint('from the agent')\n```\n\nRun it where you like.",
        },
        {"purpose": "answer", "reply": "These cells load and sum the sales."},
    ]
}
NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "id": "title", "metadata": {}, "source": "# Sales by region"},
        nbformat.v4.new_code_cell("regions = ['north', 'south', 'east']", id="setup"),
        {
            "cell_type": "code",
            "execution_count": 1,
            "id": "failing",
            "metadata": {},
            "source": FAILING,
            "outputs": [
                {
                    "output_type": "error",
                    "ename": "NameError",
                    "evalue": "name 'sales' is not defined",
                    "traceback": ["\u001b[31mNameError\u001b[0m: name 'sales' is not defined"],
                }
            ],
        },
        nbformat.v4.new_code_cell("# the last cell", id="last"),
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}
NB = "[...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === 'sales.ipynb')"
SOURCES = f"() => {NB}.content.widgets.map(c => c.model.sharedModel.getSource())"


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
    with browser_lab.jupyter_lab(folder, ollama.url, {"sales.csv": CSV, "sales.ipynb": json.dumps(NOTEBOOK)}) as up:
        yield up


@pytest.fixture(scope="module")
def page(lab, tmp_path_factory):
    with browser_lab.chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.url)
        page = context.new_page()
        browser_lab.open_lab(page, lab, "sales.ipynb")
        page.wait_for_function(
            f"() => {{ const k = {NB}.sessionContext.session?.kernel; return k && k.status === 'idle'; }}", timeout=120_000
        )
        browser_lab.open_panel(page)
        yield page


def select_cell(page, index: int, through: int | None = None) -> None:
    page.evaluate(f"""() => {{ const nb = {NB}; nb.content.activeCellIndex = {index}; nb.content.deselectAll();
      {"" if through is None else f"nb.content.extendContiguousSelectionTo({through});"} }}""")


def fits(page, selector: str) -> bool:
    """Nothing in the panel is wider than it, and every element `selector` finds lies inside it."""
    return page.evaluate(f"""() => {{
      const panel = document.querySelector('{PANEL}').getBoundingClientRect();
      const log = document.querySelector('{PANEL} .lam-log');
      const inside = [...document.querySelectorAll('{PANEL} {selector}')].every(e => {{
        const r = e.getBoundingClientRect(); return r.left >= panel.left - 1 && r.right <= panel.right + 1; }});
      return inside && log.scrollWidth <= log.clientWidth;
    }}""")


def at_widths(page, name: str, selector: str) -> None:
    """Screenshots at the panel's own width and at 250 px; at both, `selector` is inside the panel."""
    browser_lab.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shown = page.locator(f"{PANEL} {selector}").last
    shown.scroll_into_view_if_needed()
    page.screenshot(path=str(browser_lab.SCREENSHOTS / f"{name}.png"))
    assert fits(page, selector)
    width = panel_width(page)
    drag_panel_edge(page, width - 250)
    assert abs(panel_width(page) - 250) < 12
    page.wait_for_timeout(200)  # the layout follows the new width (not an assertion)
    assert fits(page, selector)
    shown.scroll_into_view_if_needed()
    page.screenshot(path=str(browser_lab.SCREENSHOTS / f"{name}-250px.png"))
    drag_panel_edge(page, 250 - width)


def test_a_failing_cell_is_fixed_through_fix_with_agent_then_runs_in_the_users_kernel(page, ollama):
    failing = page.locator(".jp-Notebook .jp-Cell").nth(2)
    fix_button = failing.locator(".lam-error-fix")
    fix_button.wait_for(timeout=60_000)
    assert failing.locator(".lam-error-explain").is_visible()
    # Below the error output, inside the failing cell (not above it).
    assert fix_button.bounding_box()["y"] > failing.locator(".jp-OutputArea-output").bounding_box()["y"]
    page.locator(".jp-Notebook .jp-Cell").nth(3).locator(".lam-error-actions").wait_for(state="hidden")  # no error
    fix_button.click()
    diff = page.locator(f"{PANEL} .lam-fix .lam-diff")
    diff.wait_for(timeout=120_000)
    shown = diff.inner_text()
    assert "+sales = pd.read_csv('sales.csv')" in shown and " totals = sales['amount'].sum()" in shown
    assert page.locator(f"{PANEL} .lam-user-text").last.inner_text() == "Fix cell [1]"
    asked = ollama.requests_for("answer")[-1].text
    assert "Cell [1] of my notebook failed" in asked and FAILING in asked
    assert "NameError: name 'sales' is not defined" in asked and "\u001b[31m" not in asked
    assert page.evaluate(SOURCES)[2] == FAILING  # nothing applied before Accept
    at_widths(page, "fix-diff", ".lam-fix-actions button")
    page.click(f"{PANEL} .lam-fix-accept")
    assert page.evaluate(SOURCES)[2] == FIXED
    page.click(f"{PANEL} .lam-fix-run")
    page.wait_for_function(
        f"() => /^60\\s*$/.test({NB}.content.widgets[2].node.querySelector('.jp-OutputArea').innerText)", timeout=120_000
    )
    fix_button.wait_for(state="hidden")  # the cell has no error any more
    page.screenshot(path=str(browser_lab.SCREENSHOTS / "fix-accepted.png"))


def test_a_rejected_fix_leaves_the_cell_unchanged_and_a_sandbox_fix_goes_below_it(page, ollama):
    select_cell(page, 3)
    page.evaluate(f"() => {NB}.content.widgets[3].model.sharedModel.setSource({json.dumps(BROKEN)})")
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-cell')")
    bar = page.locator(f"{PANEL} .lam-failing-cell")
    bar.wait_for(timeout=60_000)  # the panel offers the active cell's fix too
    page.click(f"{PANEL} .lam-failing-fix")
    page.locator(f"{PANEL} .lam-fix-reject").last.wait_for(timeout=120_000)
    page.locator(f"{PANEL} .lam-fix-reject").last.click()
    page.locator(f"{PANEL} .lam-fix-rejected").wait_for()
    assert page.evaluate(SOURCES)[3] == BROKEN
    # Asked again, the fix goes below as a %%sandbox cell: the user's cell stays as it is.
    page.click(f"{PANEL} .lam-failing-fix")
    page.locator(f"{PANEL} .lam-fix-proposed .lam-fix-as-sandbox").wait_for(timeout=120_000)
    page.click(f"{PANEL} .lam-fix-proposed .lam-fix-as-sandbox")
    page.locator(f"{PANEL} .lam-fix-sandbox .lam-fix-done").wait_for()
    assert page.evaluate(SOURCES)[3:5] == [BROKEN, f"%%sandbox\n{FIXED}"]
    page.evaluate(f"() => {NB}.content.model.sharedModel.deleteCell(4)")
    page.evaluate(f"() => {NB}.content.widgets[3].model.sharedModel.setSource('# the last cell')")
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-cell')")  # its error goes too


def test_explain_from_the_cells_context_menu(page, ollama):
    page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-InputArea-editor").click(button="right")
    page.locator(".lm-Menu .lm-Menu-itemLabel", has_text="Explain with agent").click()
    page.wait_for_function(
        f"() => [...document.querySelectorAll('{PANEL} .lam-answer')]"
        ".some(a => a.innerText.includes('It adds up the amount column.'))",
        timeout=120_000,
    )
    asked = ollama.requests_for("answer")[-1].text
    assert "Explain cell" in asked and "regions = ['north', 'south', 'east']" in asked


def test_selected_cells_go_with_the_next_request_as_chips_the_user_can_remove(page, ollama):
    select_cell(page, 0, through=1)
    page.locator(".jp-Notebook .jp-Cell").nth(0).click(button="right")
    page.locator(".lm-Menu .lm-Menu-itemLabel", has_text="Add selected cells to chat").click()
    chips = page.locator(f"{PANEL} .lam-cell-chip")
    chips.nth(1).wait_for()
    assert chips.count() == 2 and "# Sales by region" in chips.nth(0).inner_text()
    at_widths(page, "cell-chips", ".lam-cell-chip")
    chips.nth(0).locator(".lam-detach").click()
    assert chips.count() == 1
    browser_lab.send(page, "What do the cells I added do?")
    page.wait_for_function(
        f"() => [...document.querySelectorAll('{PANEL} .lam-answer')]"
        ".some(a => a.innerText.includes('These cells load and sum'))",
        timeout=120_000,
    )
    asked = ollama.requests_for("classify")[-1].text
    added = asked.split("Cells the user added to the chat:")[1].split("Request:")[0]
    assert "regions = ['north', 'south', 'east']" in added and "# Sales by region" not in added
    assert chips.count() == 0  # sent once


def test_cells_dragged_into_the_panel_are_added_to_the_chat(page):
    select_cell(page, 1)
    prompt = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-InputPrompt")
    start = prompt.bounding_box()
    target = page.locator(f"{PANEL} .lam-log").bounding_box()
    page.mouse.move(start["x"] + 5, start["y"] + 5)
    page.mouse.down()
    page.mouse.move(start["x"] + 40, start["y"] + 20, steps=5)
    page.mouse.move(target["x"] + target["width"] / 2, target["y"] + 80, steps=10)
    page.mouse.up()
    chip = page.locator(f"{PANEL} .lam-cell-chip")
    chip.wait_for(timeout=10_000)
    assert "regions" in chip.inner_text()
    assert page.evaluate(SOURCES)[1] == "regions = ['north', 'south', 'east']"  # copied, not moved
    chip.locator(".lam-detach").click()


def test_copy_insert_and_replace_on_a_code_block(page):
    select_cell(page, 3)
    browser_lab.send(page, "Give me code")
    actions = page.locator(f"{PANEL} .lam-answer .lam-codeblock-actions").last
    actions.wait_for(timeout=120_000)
    actions.scroll_into_view_if_needed()
    at_widths(page, "code-block-actions", ".lam-codeblock-actions button")
    actions.locator(".lam-code-copy").click()
    assert page.evaluate("() => navigator.clipboard.readText()") == "print('from the agent')"
    before = page.evaluate(SOURCES)
    actions.locator(".lam-code-insert").click()
    after = page.evaluate(SOURCES)
    assert after == before[:4] + ["print('from the agent')"] + before[4:]  # below the active cell (the 4th)
    select_cell(page, 1)
    actions.locator(".lam-code-replace").click()
    assert page.evaluate(SOURCES)[1] == "print('from the agent')"
    assert page.evaluate(SOURCES)[0] == "# Sales by region"


def test_file_and_variable_mentions_complete_with_the_keyboard(page):
    box = page.locator(f"{PANEL} .lam-input")
    box.fill("")
    box.type("Plot @sal")
    popup = page.locator(f"{PANEL} .lam-mentions")
    popup.wait_for(timeout=30_000)
    assert [t.strip() for t in popup.locator(".lam-mention").all_inner_texts()][:2] == ["@sales.csv", "@sales.ipynb"]
    page.screenshot(path=str(browser_lab.SCREENSHOTS / "mention-files.png"))
    box.press("ArrowDown")
    box.press("ArrowUp")
    box.press("Enter")
    assert box.input_value() == "Plot @sales.csv "
    box.type("by {tot")
    popup.wait_for(timeout=30_000)
    assert popup.locator(".lam-mention-chosen").inner_text() == "{totals}"  # from the kernel (the fixed cell ran)
    box.press("Enter")
    assert box.input_value() == "Plot @sales.csv by {totals}"
    box.type(" @")
    popup.wait_for()
    box.press("Escape")
    popup.wait_for(state="detached")
    assert page.evaluate("() => document.activeElement.classList.contains('lam-input')")  # Escape closed the list only
    box.fill("")
