"""``llm-agent run``: real notebooks, real kernels, the scripted Ollama server; asserts on the files it writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from agent_helpers import coder_script
from batch_helpers import SCENARIOS, agent_outputs, read, run_cli, write_notebook

from llm_agent_magic.cells import CELLS_MIME, FAILED_TAG, drop_materialized, materialize
from llm_agent_magic.cli.run import kernel_name_for, plan_jobs
from llm_agent_magic.exceptions import UsageProblem
from llm_agent_magic.testing.fake_ollama import FakeOllama

CSV_QUESTION = "%%agent --files sales.csv\nWhat is the mean price in sales.csv?"
CHAT_QUESTION = "%%agent --mode chat\nWhat is a p-value?"


def scenario(*names: str, **extra) -> dict:
    rules = []
    for name in names:
        rules += json.loads((SCENARIOS / f"{name}.json").read_text())["rules"]
    return {"rules": rules, **extra}


@pytest.mark.slow
def test_generated_cells_become_real_cells_after_the_agent_cell(folder, data_root):
    source = write_notebook(
        folder / "csv.ipynb", "%load_ext llm_agent_magic", CSV_QUESTION, "# md The agent's cells are above.", "print('after')"
    )
    with FakeOllama(scenario("react_csv")) as server:
        out = run_cli("csv.ipynb", "--model", "tiny:1b", cwd=folder, host=server.url, data_root=data_root)
        assert {r.model for r in server.requests if r.path == "/api/chat"} == {"tiny:1b"}  # the kernel got --model
    assert out.returncode == 0, out.stderr
    assert "[csv.ipynb] cell 2/3 '%%agent --files sales.csv': ok (agent ok, 1 generated cell; " in out.stderr
    assert "llm-agent run: 1 notebook, all ok" in out.stderr
    nb = read(folder / "csv.out.ipynb")
    kinds = [(c.cell_type, c.source.splitlines()[0]) for c in nb.cells]
    assert kinds == [
        ("code", "%load_ext llm_agent_magic"),
        ("code", "%%agent --files sales.csv"),
        ("code", "%%sandbox"),
        ("markdown", "The agent's cells are above."),
        ("code", "print('after')"),
    ]
    generated = nb.cells[2]
    assert generated.outputs[0].text == "mean price: 20.0\n"
    provenance = generated.metadata.llm_agent
    assert provenance["status"] == "final" and provenance["attempt"] == 1 and provenance["model"] == "tiny:1b"
    assert provenance["run_id"] == nb.cells[1].outputs[1].metadata["llm_agent"]["run_id"]
    # the cells are real now: the %%agent cell keeps the answer and a line, not a second copy of the cells
    assert nb.cells[1].outputs[1].data == {"text/plain": "llm-agent: 1 generated cell; run ok"}
    assert provenance["materialized_by"] == "llm-agent run"
    assert nb.cells[1].outputs[0].data == {
        "text/html": "<p>The mean price in <code>sales.csv</code> is <strong>20.0</strong>.</p>\n",
        "text/plain": "The mean price in `sales.csv` is **20.0**.",
    }
    assert nb.cells[4].outputs[0].text == "after\n"
    nbformat.validate(nb)
    assert read(source) == read(folder / "csv.ipynb")  # the input is left alone


@pytest.mark.slow
def test_record_then_replay_two_notebooks_in_parallel_without_a_server(folder, data_root):
    # Each notebook asks for a cassette of its own; the command line's wins over it.
    write_notebook(folder / "a.ipynb", "%load_ext llm_agent_magic", "%agent replay notebook-says.jsonl", CHAT_QUESTION)
    write_notebook(folder / "b.ipynb", "%load_ext llm_agent_magic", "%agent replay notebook-says.jsonl", CSV_QUESTION)
    with FakeOllama(scenario("react_csv", "route_chat")) as server:
        recorded = run_cli(
            "a.ipynb",
            "b.ipynb",
            "-j",
            "2",
            "--record",
            "{name}.cassette.jsonl",
            "--output-dir",
            "rec",
            cwd=folder,
            host=server.url,
            data_root=data_root,
        )
        host = server.url
    assert recorded.returncode == 0, recorded.stderr
    assert (folder / "a.cassette.jsonl").is_file() and (folder / "b.cassette.jsonl").is_file()
    assert read(folder / "rec" / "a.ipynb").cells[1].outputs == []  # the notebook's own cassette was set aside
    # The server is gone now: every answer must come from the cassettes.
    replayed = run_cli(
        "a.ipynb",
        "b.ipynb",
        "-j",
        "2",
        "--replay",
        "{name}.cassette.jsonl",
        "--output-dir",
        "rep",
        cwd=folder,
        host=host,
        data_root=data_root,
    )
    assert replayed.returncode == 0, replayed.stderr
    for name in ("a.ipynb", "b.ipynb"):
        first, second = agent_outputs(read(folder / "rec" / name)), agent_outputs(read(folder / "rep" / name))
        assert first == second and first[0]["status"] == "ok"
    assert agent_outputs(read(folder / "rep" / "a.ipynb"))[0]["answer"].startswith("A **p-value** is")
    assert agent_outputs(read(folder / "rep" / "b.ipynb"))[0]["cells"][0][1] == ["mean price: 20.0\n"]


@pytest.mark.slow
def test_failing_notebooks_fail_the_run_with_a_summary(folder, data_root):
    write_notebook(folder / "good.ipynb", "%load_ext llm_agent_magic", CHAT_QUESTION)
    write_notebook(
        folder / "broken.ipynb",
        "%load_ext llm_agent_magic",
        "%%agent --mode chat --model missing:1b\nWhat is a p-value?",
        "1 / 0",
        "print('never')",
    )
    write_notebook(folder / "slow.ipynb", "import time\ntime.sleep(120)", "print('never')")
    with FakeOllama(scenario("route_chat", models=["qwen3:8b"])) as server:
        out = run_cli(
            "good.ipynb",
            "broken.ipynb",
            "slow.ipynb",
            "-j",
            "3",
            "--timeout",
            "12",
            cwd=folder,
            host=server.url,
            data_root=data_root,
        )
    assert out.returncode == 1
    summary = out.stderr[out.stderr.index("llm-agent run: 3 notebooks, 2 failed") :]
    assert "ok      good.ipynb" in summary and "FAILED  broken.ipynb" in summary and "FAILED  slow.ipynb" in summary
    assert "cell 1 (import time): CellTimeoutError: the cell ran longer than 12 s" in summary
    # A failed agent run is a failed cell: the notebook stops there, as at any failing cell.
    assert (
        "cell 2 (%%agent --mode chat --model missing:1b): AgentRunFailed: The agent run ended with status 'error' (ModelNotFound"
    ) in summary
    assert "cell 3 (1 / 0)" not in summary
    broken = read(folder / "broken.out.ipynb")  # written anyway, up to the failing cell
    assert "ollama pull missing:1b" in broken.cells[1].outputs[0].data["text/html"]
    assert broken.cells[1].outputs[-1].ename == "AgentRunFailed"
    assert broken.cells[2].outputs == [] and broken.cells[3].outputs == []
    assert read(folder / "good.out.ipynb").cells[1].outputs[0].data["text/html"].startswith("<p>A <strong>p-value</strong>")


@pytest.mark.slow
def test_command_line_mistakes_exit_2_before_any_kernel_starts(folder, data_root):
    write_notebook(folder / "a.ipynb", "print(1)")
    write_notebook(folder / "b.ipynb", "print(2)")
    shared = run_cli("a.ipynb", "b.ipynb", "--record", "one.jsonl", cwd=folder, host="http://127.0.0.1:9", data_root=data_root)
    assert shared.returncode == 2 and "put {name} in the path" in shared.stderr and "usage: llm-agent run" in shared.stderr
    assert not list(folder.glob("*.out.ipynb"))
    a, b = str(folder / "a.ipynb"), str(folder / "b.ipynb")
    for args, message in [
        (dict(notebooks=[a, b], output="x.ipynb"), "-o/--output takes one notebook"),
        (dict(notebooks=[str(folder / "nothere.ipynb")]), "nothere.ipynb: no such notebook"),
        (dict(notebooks=[a], replay="x.jsonl", live=True), "choose one of --replay, --record and --live"),
        (dict(notebooks=[a, b], jobs=2, session="shared"), "cannot share one session"),
    ]:
        with pytest.raises(UsageProblem, match=re.escape(message)):
            plan_jobs(**args)


def test_kernels_are_told_the_session_cassette_and_settings(folder):
    a = write_notebook(folder / "a.ipynb", "print(1)")
    (job,) = plan_jobs([str(a)], record="cassettes/{name}.jsonl", settings={"LLMConfig": {"model": "m"}}, base_env={})
    assert job.output == folder / "a.out.ipynb" and job.session_id == f"{a}#run"
    assert job.env == {
        "LLM_AGENT_SESSION": f"{a}#run",
        "LLM_AGENT_FRESH_SESSION": "1",
        "LLM_AGENT_CASSETTE_MODE": "record",
        "LLM_AGENT_CASSETTE_PATH": str(Path.cwd() / "cassettes" / "a.jsonl"),
        "LLM_AGENT_CONFIG_JSON": '{"LLMConfig": {"model": "m"}}',
    }
    (job,) = plan_jobs(
        [str(a)],
        live=True,
        session="s-{name}",
        fresh=False,
        output_dir=str(folder / "out"),
        base_env={"LLM_AGENT_CASSETTE_PATH": "stale"},
    )
    assert job.env == {
        "LLM_AGENT_SESSION": "s-a",
        "LLM_AGENT_FRESH_SESSION": "0",
        "LLM_AGENT_CASSETTE_MODE": "live",
        "LLM_AGENT_CASSETTE_PATH": "",
    }
    assert job.output == folder / "out" / "a.ipynb"


def _agent_cell(cells: list[dict]) -> nbformat.NotebookNode:
    bundle = {"version": 1, "run_id": "r1", "session_id": "s", "request": "q", "status": "ok", "answer": "", "cells": cells}
    cell = nbformat.v4.new_code_cell("%%agent\nq")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "x", CELLS_MIME: bundle})]
    return cell


def _generated(source: str, failed: bool) -> dict:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["llm_agent"] = {"run_id": "r1", "cell_id": source[:4], "status": "failed" if failed else "final"}
    if failed:
        cell.metadata["tags"] = [FAILED_TAG]
    return dict(cell)


def test_materialized_cells_are_replaced_not_duplicated_on_the_next_run():
    generated = [_generated("bad()", True), _generated("good()", False)]
    nb = nbformat.v4.new_notebook()
    nb.cells = [_agent_cell(generated), nbformat.v4.new_code_cell("x")]
    assert materialize(nb) == 2
    assert [c.source for c in nb.cells] == ["%%agent\nq", "bad()", "good()", "x"]
    assert FAILED_TAG in nb.cells[1].metadata.tags
    assert nb.cells[0].outputs[0].data == {"text/plain": "x"}  # the bundle has done its work
    nbformat.validate(nb)
    assert drop_materialized(nb) == 2 and [c.source for c in nb.cells] == ["%%agent\nq", "x"]
    nb.cells[0] = _agent_cell(generated)  # the next run executes the %%agent cell again
    assert materialize(nb, include_failed=False) == 1 and [c.source for c in nb.cells] == ["%%agent\nq", "good()", "x"]


def test_the_notebooks_kernel_is_used_when_installed_else_this_python():
    nb = nbformat.v4.new_notebook()
    assert kernel_name_for(nb) == "python3"
    nb.metadata["kernelspec"] = {"name": "julia-1.9", "display_name": "Julia"}
    assert kernel_name_for(nb) == "python3"


@pytest.mark.slow
def test_a_fifo_left_as_a_result_file_does_not_hang_the_run(folder, data_root):
    # Reading the FIFO back as a result file blocked the agent forever; it is refused instead.
    script = coder_script("import os\nos.mkfifo('result.txt')\nprint('made a pipe')", "The pipe is there.")
    write_notebook(folder / "fifo.ipynb", "%load_ext llm_agent_magic", "%%agent\nMake a pipe called result.txt.")
    with FakeOllama(script) as server:
        out = run_cli("fifo.ipynb", cwd=folder, host=server.url, data_root=data_root, timeout=240)
        react = [r.text for r in server.requests_for("react")]
    assert out.returncode == 0, out.stderr
    assert agent_outputs(read(folder / "fifo.out.ipynb"))[0]["answer"] == "The pipe is there."
    assert "made a pipe" in react[-1] and "result.txt was not read: it is a FIFO" in react[-1]
