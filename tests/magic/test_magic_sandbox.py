"""``%%sandbox`` in a real kernel: cells that run in the session's sandbox, generated or written by the user.

A generated cell carries ``%%sandbox`` as its first line, so running it again (edited or not) runs it where
the agent ran it: its variables are the sandbox's, for the next ``%%agent`` and for ``%agent pull``.
"""

from __future__ import annotations

import pytest
from magic_helpers import bundle, stream, texts
from test_magic_notebook import react_script, usage_error

from llm_agent_magic.cells import SANDBOX_MAGIC

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("own_session")]


def error_output(cell) -> dict:
    (error,) = [o for o in cell.outputs if o.output_type == "error"]
    return error


def test_a_sandbox_cell_runs_in_the_sandbox_and_pull_sees_its_variable(kernel):
    kernel.script({"rules": []})  # any model call would fail the run: none may happen
    cell = kernel.run("%%sandbox\nborrowed = 41 + 1\nprint('in the sandbox:', borrowed)")
    assert stream(cell) == "in the sandbox: 42\n"
    assert not kernel.server.requests
    # Not in the notebook's kernel: only in the sandbox's, until pulled.
    assert stream(kernel.run("print('borrowed' in globals())")) == "False\n"
    pulled = kernel.run("%agent pull borrowed\nprint(borrowed + 1)")
    assert stream(pulled).endswith("43\n")


def test_a_failing_sandbox_cell_raises_with_the_sandbox_traceback(kernel):
    cell = kernel.run("%%sandbox\nprint('before')\n1 / 0", raises=True)
    assert stream(cell) == "before\n"
    error = error_output(cell)
    assert error.ename == "SandboxCellFailed"
    assert "ZeroDivisionError: division by zero" in error.evalue
    assert any("ZeroDivisionError" in line for line in error.traceback)
    assert not any("magics.py" in line for line in error.traceback)  # the sandbox's frames, not the magic's


def test_sandbox_outputs_are_cleaned_as_the_agents_are(kernel):
    cell = kernel.run(
        "%%sandbox\nfrom IPython.display import HTML, display\ndisplay(HTML('<b>bold</b><script>alert(1)</script>'))"
    )
    (html,) = texts(cell, "text/html")
    assert "<b>bold</b>" in html and "<script" not in html


def test_skip_runs_nothing_and_bad_options_say_the_usage(kernel):
    cell = kernel.run("%%sandbox --skip\nskipped_marker = 1")
    assert "Not run" in stream(cell) and "remove --skip" in stream(cell)
    assert "skipped_marker" not in texts(kernel.run("%agent vars"))[0]
    message = usage_error(kernel.run("%%sandbox --colour red\nx = 1", raises=True))
    assert "unrecognized arguments: --colour red" in message and "usage: %%sandbox" in message


def test_a_generated_cell_edited_and_run_again_changes_what_the_agent_sees(kernel):
    kernel.script(react_script("total", "total = 10 * 2\nprint('total', total)", "The total is 20."))
    asked = kernel.run("%%agent\nCompute the total")
    (generated,) = bundle(asked)["cells"]
    first, code = generated["source"].split("\n", 1)
    assert first == SANDBOX_MAGIC and code == "total = 10 * 2\nprint('total', total)"
    assert generated["outputs"][0]["text"] == "total 20\n"
    kernel.server.clear_requests()
    edited = kernel.run(generated["source"].replace("10 * 2", "10 * 3"))  # the user edits the cell and runs it
    assert stream(edited) == "total 30\n"
    assert not kernel.server.requests
    assert stream(kernel.run("%agent pull total\nprint(total)")).endswith("30\n")
    kernel.script(react_script("double it", "print(total * 2)", "60."))
    kernel.run("%%agent\nDouble the total")
    (code_request,) = kernel.server.requests_for("code")
    assert "total" in code_request.text and "30" in code_request.text  # the variables the model is shown


def test_an_unchanged_request_shows_its_stored_answer_and_rerun_asks_again(kernel):
    kernel.script(react_script("count", "counted = 3\nprint('counted', counted)", "There are **3**."))
    kernel.run("%%agent --mode react --dry-run\nCount them")  # drafted only: never shown again as an answer
    first = kernel.run("%%agent --mode react\nCount them")
    assert not stream(first)
    kernel.server.clear_requests()
    again = kernel.run("%%agent --mode react\nCount them")  # what Restart & Run All does
    assert not kernel.server.requests  # the model was not asked
    assert stream(again).startswith("llm-agent: this request was answered before")
    assert texts(again, "text/html")[0] == "<p>There are <strong>3</strong>.</p>\n"
    assert bundle(again)["run_id"] == bundle(first)["run_id"]  # the same run: front ends insert nothing twice
    assert bundle(again)["cells"] == bundle(first)["cells"]
    kernel.run("%%agent --mode chat\nCount them")  # another option: asked (and the scripted model answers)
    assert kernel.server.requests_for("answer")
    kernel.server.clear_requests()
    rerun = kernel.run("%%agent --mode react --rerun\nCount them")
    assert kernel.server.requests_for("code") and bundle(rerun)["run_id"] != bundle(first)["run_id"]
