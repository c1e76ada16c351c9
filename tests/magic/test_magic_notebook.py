"""``%%agent`` and ``%agent`` in a real kernel, cell by cell through nbclient, against the scripted server.

One kernel serves the module; each test has a session (conversation and sandbox) of its own, so tests
do not depend on their order or on what another test left (the two-cell test shares its sandbox between
its own two cells: that is its point).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
from cli_helpers import run_cli
from html_checks import active_parts
from magic_helpers import bundle, stream, texts

from llm_agent_magic.agents.diagnostics import Diagnostic
from llm_agent_magic.cells import CELLS_MIME
from llm_agent_magic.sandbox.isolation import landlock_abi

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("own_session")]

VERIFY_OK = {"purpose": "verify", "reply": {"answers_question": True, "issues": ""}}
FINISH = {
    "purpose": "react",
    "match_last": "Observation from python_coder",
    "reply": {"thought": "Done.", "action": "finish", "action_input": "see the output"},
}


def react_script(action_input: str, code: str, answer: str, **extra_rules) -> dict:
    return {
        "rules": [
            {"purpose": "classify", "reply": {"mode": "react", "reason": "needs code"}},
            FINISH,
            {"purpose": "react", "reply": {"thought": "Run code.", "action": "python_coder", "action_input": action_input}},
            {"purpose": "code", "reply": f"```python\n{code}\n```"},
            VERIFY_OK,
            {"purpose": "answer", "reply": answer},
        ]
    }


def usage_error(cell) -> str:
    """The message of a UsageError: on stderr, with no traceback and no error output."""
    assert not [o for o in cell.outputs if o.output_type == "error"]
    err = stream(cell, "stderr")
    assert err.startswith("UsageError: ") and "Traceback" not in err
    return err


def test_a_question_streams_then_leaves_the_answer_and_the_cells(kernel):
    kernel.script(
        react_script(
            "mean price of sales.csv",
            "import pandas as pd\nsales = pd.read_csv('sales.csv')\nprint('mean price:', sales['price'].mean())",
            "The mean price is **20.0**.",
        )
    )
    cell = kernel.run("%%agent --files sales.csv\nWhat is the mean price in sales.csv?")
    answer, cells = cell.outputs
    assert answer.output_type == "display_data"
    assert answer.data == {
        "text/html": "<p>The mean price is <strong>20.0</strong>.</p>\n",
        "text/plain": "The mean price is **20.0**.",
    }
    assert cells.data["text/plain"] == "llm-agent: 1 generated cell; run ok"
    assert '<pre><code class="language-python">import pandas as pd' in cells.data["text/html"]
    assert set(cells.data) == {"text/html", "text/plain", CELLS_MIME}  # no markdown another reader could misread
    assert "mean price: 20.0" in cells.data["text/html"]
    assert "The mean price is" not in cells.data["text/html"]  # the answer shows once
    generated = cells.data[CELLS_MIME]
    assert isinstance(generated, dict) and generated["status"] == "ok"
    (code,) = generated["cells"]
    assert code["outputs"][0]["text"] == "mean price: 20.0\n"
    assert code["metadata"]["llm_agent"]["status"] == "final" and code["metadata"]["llm_agent"]["model"] == "qwen3:8b"
    # No ids or timings outside the bundle: the same events render the same outputs.
    assert generated["run_id"] not in str(answer.data) + cells.data["text/html"] + cells.data["text/plain"]


#: Issue 19: a closing fence followed by a tab, which JupyterLab's markdown reader (marked) does not take as a
#: close, so the <img> after it was live HTML in a trusted output.
PAYLOAD = 'Result:\n\n```\nx\n```\t\n\n```\n<img src=x onerror="window.__pwned=1">\n```'


def test_a_hostile_answer_reaches_the_notebook_only_as_sanitized_html_and_text(kernel, own_session):
    kernel.script({"rules": [{"purpose": "answer", "reply": PAYLOAD}]})
    cell = kernel.run("%%agent --mode chat\nSummarize the report.")
    history = kernel.run("%agent history 2")
    outputs = cell.outputs + history.outputs
    assert [sorted(o.data) for o in outputs] == [
        ["text/html", "text/plain"],
        [CELLS_MIME, "text/html", "text/plain"],
        ["text/html", "text/plain"],
    ]  # no markdown for another reader
    assert active_parts(outputs) == []
    assert cell.outputs[0].data == {
        "text/html": "<p>Result:</p>\n<pre><code>x\n</code></pre>\n"
        '<pre><code>&lt;img src=x onerror="window.__pwned=1"&gt;\n</code></pre>\n',
        "text/plain": PAYLOAD,
    }
    assert history.outputs[0].data["text/plain"] == f"user: Summarize the report.\n\nassistant: {PAYLOAD}"
    assert '<pre><code>&lt;img src=x onerror="window.__pwned=1"&gt;\n</code></pre>' in history.outputs[0].data["text/html"]


def test_dry_run_shows_the_code_and_runs_nothing(kernel):
    kernel.script(react_script("set a marker", "dry_marker = 'ran'\nprint(dry_marker)", "unused"))
    cell = kernel.run("%%agent --dry-run\nSet a marker called {{dry_marker}}")
    answer, cells = cell.outputs
    assert "```python\ndry_marker = 'ran'" in answer.data["text/plain"]
    assert "<pre><code class=\"language-python\">dry_marker = 'ran'" in answer.data["text/html"]
    assert "Dry run" in answer.data["text/html"] and "text/markdown" not in answer.data
    assert bundle(cell)["cells"] == [] and cells.data["text/plain"] == "llm-agent: 1 drafted cell, nothing was run; run ok"
    assert "Drafted cell" in cells.data["text/html"]
    assert "{dry_marker}" in kernel.server.requests_for("classify")[0].text  # {{ }} are literal braces
    assert not kernel.server.requests_for("react")
    variables = kernel.run("%agent vars")
    assert "dry_marker" not in texts(variables)[0]


def test_variables_fill_the_request_and_dataframes_reach_the_sandbox(kernel):
    kernel.script(
        react_script(
            "count rows of prices above the threshold", "print(int((prices['price'] > 15).sum()))", "Two regions sell above 15."
        )
    )
    kernel.run(
        "import pandas as pd\nthreshold = 15\n"
        "prices = pd.DataFrame({'region': ['north', 'south', 'east'], 'price': [10, 30, 20]})"
    )
    cell = kernel.run("%%agent --quiet\nHow many rows of {prices} have a price above {threshold}?")
    request = kernel.server.requests_for("classify")[0].text
    assert "How many rows of `prices` have a price above 15?" in request
    assert "The DataFrame `prices` (3 rows x 2 columns: region, price) is available in the sandbox" in request
    (code,) = bundle(cell)["cells"]
    assert code["outputs"][0]["text"] == "2\n"  # the code read `prices` inside the sandbox
    assert texts(cell, "text/html")[0] == "<p>Two regions sell above 15.</p>\n"


def test_push_and_pull_round_trip(kernel):
    kernel.run("import pandas as pd\nmine = pd.DataFrame({'a': [1, 2, 3], 'b': ['x', 'y', 'z']})")
    pushed = kernel.run("%agent push mine")
    assert stream(pushed) == "mine is in the sandbox (DataFrame, shape (3, 2))\n"
    pulled = kernel.run("%agent pull mine as back\nprint(back.equals(mine))")
    assert stream(pulled).splitlines() == ["back = mine from the sandbox (DataFrame, shape (3, 2))", "True"]
    listing = texts(kernel.run("%agent vars"))[0]
    assert "mine" in listing and "dataframe" in listing


def test_two_cells_share_the_sandbox(kernel):
    kernel.script(
        {
            "rules": [
                FINISH,
                {
                    "purpose": "react",
                    "times": 1,
                    "reply": {"thought": "a", "action": "python_coder", "action_input": "make totals"},
                },
                {"purpose": "react", "times": 1, "reply": {"thought": "b", "action": "python_coder", "action_input": "largest"}},
                {
                    "purpose": "code",
                    "times": 1,
                    "reply": "```python\ntotals = {'q1': 10, 'q2': 32}\nprint(sum(totals.values()))\n```",
                },
                {"purpose": "code", "times": 1, "reply": "```python\nprint(max(totals, key=totals.get))\n```"},
                VERIFY_OK,
                {"purpose": "answer", "times": 1, "reply": "The totals are ready."},
                {"purpose": "answer", "reply": "q2 is the largest quarter."},
            ]
        }
    )
    first = kernel.run("%%agent --mode react\nMake quarterly totals.")
    second = kernel.run("%%agent --mode react\nWhich quarter in totals is the largest?")
    assert bundle(first)["cells"][0]["outputs"][0]["text"] == "42\n"
    (code,) = bundle(second)["cells"]
    assert code["source"] == "%%sandbox\nprint(max(totals, key=totals.get))" and code["outputs"][0]["text"] == "q2\n"
    assert texts(second, "text/html")[0] == "<p>q2 is the largest quarter.</p>\n"
    pulled = kernel.run("%agent pull totals\nprint(totals['q2'])")
    assert stream(pulled).endswith("32\n")


def test_pull_refuses_a_catalog_entry_the_sandbox_pointed_outside(kernel):
    (kernel.folder / "secret.json").write_text('"the user\'s secret"')
    plant = (
        "import json, pathlib\np = pathlib.Path('../snapshots/catalog.json')\nc = json.loads(p.read_text())\n"
        "c['variables']['loot'] = {'name': 'loot', 'kind': 'json', 'file': '../../../../secret.json'}\n"
        "p.write_text(json.dumps(c))\ndel p, c"
    )
    kernel.script(react_script("keep", "kept = {'q2': 32}", "Kept."))
    kernel.run("%%agent --quiet\nKeep a value.")  # the session now has a catalog
    kernel.script(react_script("plant", plant, "Planted."))
    kernel.run("%%agent --quiet\nPlant an entry.")
    message = usage_error(kernel.run("%agent pull loot", raises=True))
    assert "No snapshot of 'loot'" in message and "not inside the snapshots folder" in message
    assert "secret" not in stream(kernel.run("print(repr(globals().get('loot')))"))
    assert "refused: its file '../../../../secret.json' is not inside the snapshots folder" in texts(kernel.run("%agent vars"))[0]
    pulled = kernel.run("%agent pull kept as t\nprint(t['q2'])")  # the rest of the catalog still works
    assert stream(pulled).endswith("32\n")


def test_mistakes_are_usage_errors_without_tracebacks(kernel):
    kernel.run("import pandas as pd\nthreshold = 15\nmine = pd.DataFrame({'a': [1]})")
    kernel.run("%agent push mine")
    bad_option = usage_error(kernel.run("%%agent --colour red\nhello", raises=True))
    assert "unrecognized arguments: --colour red" in bad_option and "usage: %%agent [--mode" in bad_option
    bad_mode = usage_error(kernel.run("%%agent --mode sideways\nhello", raises=True))
    assert "invalid choice: 'sideways'" in bad_mode
    unknown = usage_error(kernel.run("%%agent\nWhat is {nope} worth?", raises=True))
    assert "no variable named 'nope'" in unknown and "{{nope}}" in unknown
    empty = usage_error(kernel.run("%%agent --mode chat\n   \n", raises=True))
    assert "The cell is empty" in empty
    missing = usage_error(kernel.run("%agent pull ghost", raises=True))
    assert "No snapshot of 'ghost'" in missing and "mine" in missing  # says what does exist
    not_frame = usage_error(kernel.run("%agent push threshold", raises=True))
    assert "takes a pandas DataFrame; threshold is of type int" in not_frame
    assert "Unknown command 'frobnicate'" in usage_error(kernel.run("%agent frobnicate", raises=True))
    assert "does not exist" in usage_error(kernel.run("%%agent --files nothere.csv\nhi", raises=True))
    assert stream(kernel.run("print('still fine')")) == "still fine\n"


def test_interrupt_stops_the_run_and_the_kernel_stays_usable(kernel):
    kernel.script(
        react_script(
            "wait",
            "import pathlib, time\npathlib.Path('sleeping.marker').write_text('x')\ntime.sleep(60)\nprint('slept')",
            "done",
        )
    )
    data_root = kernel.folder / ".llm_agent"
    for old in data_root.glob("sessions/*/workspace/sleeping.marker"):
        old.unlink()

    def interrupt_while_the_code_runs() -> None:
        deadline = time.monotonic() + 60
        while not list(data_root.glob("sessions/*/workspace/sleeping.marker")) and time.monotonic() < deadline:
            time.sleep(0.05)  # polling for the state, not waiting for time to pass
        os.kill(kernel.pid, signal.SIGINT)  # what the notebook's stop button does: the sandbox is in time.sleep

    threading.Thread(target=interrupt_while_the_code_runs, daemon=True).start()
    cell = kernel.run("%%agent --mode react\nWait a minute, then say slept.", raises=True)
    assert texts(cell)[0] == "Stopped: the run was interrupted before it finished."
    assert "<strong>Stopped</strong>" in texts(cell, "text/html")[0]
    assert bundle(cell)["status"] == "cancelled"
    assert texts(cell)[1] == "llm-agent: 1 cell stopped before it finished; run cancelled"
    # A stopped run is a failed cell, so Run All stops there: one line, no Python traceback.
    (error,) = [o for o in cell.outputs if o.output_type == "error"]
    assert error.traceback == ["AgentRunFailed: The agent run was stopped before it finished."]
    assert stream(kernel.run("print('kernel alive')")) == "kernel alive\n"
    # The sandbox was interrupted too: it answers at once and did not print 'slept'.
    kernel.script(react_script("say after", "print('after the stop')", "It printed."))
    after = kernel.run("%%agent --mode react\nPrint after the stop.")
    assert bundle(after)["cells"][-1]["outputs"][0]["text"] == "after the stop\n"


def test_config_status_models_sessions_and_history(kernel):
    kernel.script({"rules": [{"purpose": "answer", "reply": "Hi."}], "models": ["qwen3:8b", "tiny:1b"]})
    kernel.run('%config LLMConfig.model = "tiny:1b"')
    status = texts(kernel.run("%agent status"))[0]
    assert "model      tiny:1b" in status and "reachable at http://127.0.0.1" in status
    assert "isolation" in status and "cassette   live" in status
    # The level in force and the layers that enforce it (Landlock where this kernel has it).
    isolation = status.split("\nisolation")[1].splitlines()[0]
    assert "audit hook" in isolation and ("Landlock ABI" in isolation) == (landlock_abi() > 0), isolation
    assert "pandas" in status.split("libraries")[1].splitlines()[0]
    session_id = status.splitlines()[0].split()[-1]
    kernel.run("%%agent --mode chat\nSay hi.")
    assert kernel.server.requests_for("answer")[-1].model == "tiny:1b"
    kernel.run("%%agent --mode chat --model qwen3:8b\nSay hi again.")
    assert kernel.server.requests_for("answer")[-1].model == "qwen3:8b"  # for that run only
    kernel.run("%%agent --mode chat\nAnd once more.")
    assert kernel.server.requests_for("answer")[-1].model == "tiny:1b"
    models = texts(kernel.run("%agent models"))[0]
    assert "tiny:1b" in models and "configured" in models
    assert f"* {session_id}" in texts(kernel.run("%agent sessions"))[0]
    history = texts(kernel.run("%agent history 2"))[0]
    assert history == "user: And once more.\n\nassistant: Hi."
    kernel.run('%config LLMConfig.model = "qwen3:8b"')


def test_status_shows_the_checks_doctor_reports_for_the_same_config(kernel):
    kernel.script({"models": ["qwen3:8b", "nomic-embed-text"]})
    key = "tvly-set-in-the-notebook-0123456789"
    kernel.run('%config LLMConfig.coder_model = "qwen2.5-coder:7b"')
    kernel.run(f'%config ToolsConfig.tavily_api_key = "{key}"')
    try:
        status = texts(kernel.run("%agent status"))[0]
    finally:
        kernel.run('%config LLMConfig.coder_model = ""')
        kernel.run('%config ToolsConfig.tavily_api_key = __import__("os").environ.get("TAVILY_API_KEY", "")')
    doctor = run_cli(
        "doctor",
        "--json",
        f"--host={kernel.server.url}",
        "--LLMConfig.coder_model=qwen2.5-coder:7b",
        f"--ToolsConfig.tavily_api_key={key}",
        cwd=kernel.folder,
        clean=True,
        env={"LLM_AGENT_DATA_ROOT": str(kernel.folder / ".llm_agent")},
    )
    checks = [Diagnostic(**c) for c in json.loads(doctor.stdout)]
    assert "tavily" in [c.name for c in checks] and "model qwen2.5-coder:7b" in [c.name for c in checks]
    # The same checks, in the same order, with the same findings: one list, rendered twice.
    assert status.split("\n\n", 1)[1] == "\n".join(str(c) for c in checks)
    assert "✓ tavily: a Tavily API key is set" in status and key not in status


def test_record_replay_and_live_in_the_notebook(kernel):
    kernel.script({"rules": [{"purpose": "answer", "reply": "Recorded answer."}]})
    assert kernel.run("%agent record answers.cassette.jsonl").outputs == []  # silent, like %config
    recorded = kernel.run("%%agent --mode chat --session cassette-1\nRemember this.\n")
    assert texts(recorded, "text/html")[0] == "<p>Recorded answer.</p>\n"
    assert (kernel.folder / "answers.cassette.jsonl").is_file()
    kernel.script({"rules": [{"purpose": "answer", "reply": "A live answer."}]})
    kernel.run("%agent replay answers.cassette.jsonl")
    assert "cassette   replay " in texts(kernel.run("%agent status"))[0]
    replayed = kernel.run("%%agent --mode chat --session cassette-2\nRemember this.\n")  # same prompt: no history
    assert texts(replayed, "text/html")[0] == "<p>Recorded answer.</p>\n" and not kernel.server.requests_for("answer")
    kernel.run("%agent live")
    assert texts(kernel.run("%%agent --mode chat --session cassette-2\nAnd now?"))[0] == "A live answer."
    missing = usage_error(kernel.run("%agent replay nothere.jsonl", raises=True))
    assert "cassette nothere.jsonl does not exist" in missing


ODD_NAMES = ["beauty and the labor market.csv", "rate=a+b.csv", "données été.csv"]


def test_file_names_with_spaces_equals_plus_non_ascii_and_tilde(kernel):
    for name in ODD_NAMES:
        (kernel.folder / name).write_text("x\n1\n")
    home = kernel.folder.parent / f"{kernel.folder.name}-home"  # outside the notebook's folder: attached by its name
    home.mkdir(exist_ok=True)
    (home / "in home.csv").write_text("x\n2\n")
    kernel.run(f"import os\nos.environ['HOME'] = {str(home)!r}")  # what ~ means for this kernel
    kernel.script(
        react_script("list the files", "import os\nprint(sorted(f for f in os.listdir() if f.endswith('.csv')))", "Four files.")
    )
    cell = kernel.run(
        '%%agent --mode react --session "odd names" --files "beauty and the labor market.csv" '
        "rate=a+b.csv données\\ été.csv '~/in home.csv'\nList the attached files."
    )
    listed = bundle(cell)["cells"][0]["outputs"][0]["text"]
    for name in [*ODD_NAMES, "in home.csv"]:
        assert repr(name) in listed
    assert bundle(cell)["session_id"] == "odd names"
    pulled = kernel.run('%agent pull "odd_frame" as "local_copy"', raises=True)
    assert "No snapshot of 'odd_frame'" in usage_error(pulled)  # the quotes are gone from the name
    unclosed = usage_error(kernel.run('%%agent --files "beauty and\nhi', raises=True))
    assert "close the quote" in unclosed
    missing = usage_error(kernel.run('%%agent --files "no such file.csv"\nhi', raises=True))
    assert "--files: no such file.csv does not exist" in missing


def test_reset_starts_a_new_conversation_and_an_empty_sandbox(kernel):
    kernel.script(react_script("make totals", "totals = {'q2': 32}\nprint(totals)", "Made."))
    kernel.run("%%agent --mode react\nMake totals.")
    assert "totals" in texts(kernel.run("%agent vars"))[0]
    assert "Make totals." in texts(kernel.run("%agent history"))[0]
    kernel.run("%agent reset")
    assert texts(kernel.run("%agent history"))[0].startswith("No messages yet")
    assert texts(kernel.run("%agent vars"))[0] == "The sandbox has no variables yet."
    assert "No snapshot of 'totals'" in usage_error(kernel.run("%agent pull totals", raises=True))


def test_vars_starts_no_sandbox_and_unloading_closes_the_sessions_and_removes_the_magic(kernel):
    kernel.run("%agent vars")  # opens the session; its sandbox starts only with code to run
    assert "not started" in texts(kernel.run("%agent status"))[0]
    kernel.script(react_script("make totals", "totals = {'q2': 32}\nprint(totals)", "Made."))
    kernel.run("%%agent --mode react\nMake totals.")
    pid = kernel.run("%agent status")
    sandbox_pid = int(texts(pid)[0].split("running (pid ")[1].split(")")[0])
    kernel.run("%unload_ext llm_agent_magic")
    gone = kernel.run(
        f"import os\ntry:\n    os.kill({sandbox_pid}, 0)\n    print('alive')\nexcept ProcessLookupError:\n    print('gone')"
    )
    assert stream(gone) == "gone\n"
    assert "%agent" in stream(kernel.run("%agent status", raises=True), "stderr")
    assert "LLMConfig" not in stream(kernel.run("%config"))
    kernel.run("%load_ext llm_agent_magic")
    assert "session" in texts(kernel.run("%agent status"))[0]
