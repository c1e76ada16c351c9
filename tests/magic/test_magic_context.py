"""The magic shows the agent its notebook (issue 22): the user's DataFrames by name, the folder's files, and
``%agent fix`` / ``%agent explain`` for a failed cell. A real kernel, cell by cell, against the scripted server."""

from __future__ import annotations

import pytest
from magic_helpers import bundle, stream, texts

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("own_session")]

CHAT = {"purpose": "classify", "reply": {"mode": "chat", "reason": "talk"}}


def test_a_dataframe_of_the_notebook_is_seen_by_name_without_braces(kernel):
    kernel.script({"rules": [CHAT, {"purpose": "answer", "reply": "Use `orders.groupby('region')`."}]})
    kernel.run("import pandas as pd\norders = pd.DataFrame({'region': ['north', 'south'], 'amount': [3, 4]})")
    cell = kernel.run("%%agent --quiet\nwhich column of orders says where it was sold?")
    request = kernel.server.requests_for("classify")[0].text
    assert "- orders: pandas.DataFrame, shape (2, 2); columns: region (" in request
    assert "amount (int64)" in request
    variables = request.split("Variables in the user's own kernel")[1].split("Request:")[0]
    assert "orders" in variables and "north" not in variables  # names and types, never values
    assert "orders = pd.DataFrame" in request  # the cell that made it, from the shell's history
    assert texts(cell, "text/html")[0] == "<p>Use <code>orders.groupby('region')</code>.</p>\n"


def test_the_csv_beside_the_notebook_is_found_without_attaching_it(kernel):
    kernel.script(
        {
            "rules": [
                {"purpose": "classify", "reply": {"mode": "react", "reason": "needs code"}},
                {
                    "purpose": "react",
                    "match_last": "Observation from python_coder",
                    "reply": {"thought": "Done.", "action": "finish", "action_input": "south"},
                },
                {"purpose": "react", "reply": {"thought": "Read it.", "action": "python_coder", "action_input": "sum"}},
                {
                    "purpose": "code",
                    "reply": "```python\nimport pandas as pd\n"
                    "print(pd.read_csv('sales.csv').groupby('region')['price'].sum().idxmax())\n```",
                },
                {"purpose": "answer", "reply": "South sold most."},
            ]
        }
    )
    cell = kernel.run("%%agent --quiet\nwhich region sold most?")
    assert "- sales.csv (" in kernel.server.requests_for("classify")[0].text
    (code,) = bundle(cell)["cells"]
    assert code["outputs"][0]["text"] == "south\n"
    assert list(kernel.folder.glob(".llm_agent/sessions/*/workspace/sales.csv"))


def test_agent_fix_after_a_failing_cell_shows_a_diff_and_applies_it(kernel):
    kernel.script(
        {"rules": [{"purpose": "answer", "reply": ("```python\nbase = 2\ntotal = base + 1\n```\n`missing` was never defined.")}]}
    )
    kernel.run("base = 2\ntotal = base + missing", raises=True)
    replies = []
    kernel.client.on_cell_executed = lambda **kw: replies.append(kw["execute_reply"])
    try:
        cell = kernel.run("%agent fix --apply")
    finally:
        kernel.client.on_cell_executed = None
    (asked,) = kernel.server.requests_for("answer")
    assert "total = base + missing" in asked.text and "NameError: name 'missing' is not defined" in asked.text
    assert "- base: int" in asked.text and "- total" not in asked.text  # what the cell uses, and exists
    assert len(kernel.server.requests) == 1  # asked once
    shown = "".join(texts(cell, "text/html"))
    assert "+total = base + 1" in shown and "-total = base + missing" in shown
    payloads = replies[-1]["content"]["payload"]
    assert {"source": "set_next_input", "text": "base = 2\ntotal = base + 1\n", "replace": False} in payloads
    assert "put into the next cell" not in stream(cell) and "the fix is in the next cell" in stream(cell)


def test_agent_explain_names_the_cell_and_its_output(kernel):
    kernel.script({"rules": [{"purpose": "answer", "reply": "It adds two numbers."}]})
    number = kernel.run("40 + 2").execution_count
    cell = kernel.run(f"%agent explain {number}")
    (asked,) = kernel.server.requests_for("answer")
    assert "40 + 2" in asked.text and "42" in asked.text
    assert texts(cell, "text/html")[0] == "<p>It adds two numbers.</p>\n"


def test_the_notebook_on_disk_gives_the_cells_outputs_and_last_error(kernel):
    import nbformat

    nb = nbformat.v4.new_notebook()
    failing = nbformat.v4.new_code_cell("df.groupby('regoin').sum()")
    failing.outputs = [
        nbformat.v4.new_output("error", ename="KeyError", evalue="'regoin'", traceback=["\x1b[31mKeyError\x1b[0m: 'regoin'"])
    ]
    shown = nbformat.v4.new_code_cell("print('loaded')")
    shown.outputs = [nbformat.v4.new_output("stream", name="stdout", text="loaded\n")]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Sales"),
        shown,
        failing,
        nbformat.v4.new_code_cell("%%agent --quiet\nwhy does the groupby fail?"),
    ]
    path = kernel.folder / "on-disk.ipynb"
    nbformat.write(nb, path)
    kernel.script({"rules": [CHAT, {"purpose": "answer", "reply": "A typo: `regoin`."}]})
    kernel.run(f"_os.environ['JPY_SESSION_NAME'] = {str(path)!r}")
    kernel.run("%%agent --quiet\nwhy does the groupby fail?")
    request = kernel.server.requests_for("classify")[0].text
    assert "[1] markdown cell\n# Sales" in request and "Output:\nloaded" in request
    assert "[3] code cell (last error)" in request and "Error:\nKeyError: 'regoin'" in request  # no colours
    assert "[4] code cell (active)" in request
