"""Whole evals: real sandbox kernels, the scripted Ollama server, the files an eval leaves behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cli_helpers
import nbformat
import pytest
from eval_helpers import requests_about, script, write_dataset
from traitlets.config import Config

from llm_agent_magic.evaluation import report
from llm_agent_magic.evaluation.prepare import EvalArgs, prepare
from llm_agent_magic.evaluation.runner import run_eval
from llm_agent_magic.testing.fake_ollama import FakeOllama

pytestmark = pytest.mark.slow


def settings(host: str) -> Config:
    cfg = Config()
    cfg.LLMConfig.host = host
    cfg.LLMConfig.max_retries = 0
    return cfg


def args_for(folder: Path, out: str, **more) -> EvalArgs:
    return EvalArgs(questions=str(folder / "questions.jsonl"), labels=str(folder / "labels.jsonl"),
                    tables=str(folder / "tables"), out=str(folder / out), **more)


def result(out: Path, model: str, qid: str) -> dict:
    return json.loads((out / model / qid / "result.json").read_text())


async def test_questions_run_two_at_a_time_are_scored_kept_and_replayed(tmp_path):
    folder = write_dataset(tmp_path)
    cassette = tmp_path / "cassettes" / "dabench.jsonl"
    with FakeOllama(script()) as server:
        run = prepare(args_for(folder, "out", record=str(cassette)), default_model="qwen3:8b")
        await run_eval(run, base=settings(server.url), parallel=2)
        # Every table reached the model as a preview, whatever its name, encoding or delimiter.
        latin = requests_about(server, "LATIN")[0].text
        assert "ventes latin1.csv (27 bytes); columns: région (" in latin and "could not be previewed" not in latin
        assert "rate=a+b survey 2016.csv (28 bytes); columns: wage (float64), looks (int64)" in \
            requests_about(server, "WAGE")[0].text
    out = tmp_path / "out"
    assert [(r.id, r.status, r.all_correct) for r in run.results] == [("1", "ok", True), ("2", "ok", False),
                                                                       ("3", "ok", True)]
    latin_result = result(out, "qwen3_8b", "2")
    assert latin_result["score"]["correct"] == {"total_prix": True, "first_region": False}
    assert latin_result["score"]["predicted"] == {"total_prix": "40.0", "first_region": "Nord"}
    assert latin_result["cost"]["model_calls"] == 7 and latin_result["cost"]["prompt_tokens"] > 0
    assert set(latin_result["timing"]) == {"open", "run", "close", "harness"}
    # The executed notebook: the question, the cell that read the table (with what it printed), the answer.
    nb = nbformat.read(out / "qwen3_8b" / "2" / "run.ipynb", as_version=4)
    nbformat.validate(nb)
    kinds = [c.cell_type for c in nb.cells]
    assert kinds == ["markdown", "code", "markdown", "markdown"]
    assert nb.cells[1].outputs[0]["text"] == "total 40 first nord\n"
    assert nb.cells[1].metadata["llm_agent"]["status"] == "final"
    assert "@total_prix[40.0] @first_region[Nord]" in nb.cells[2].source
    assert "| `first_region` | `nord` | `Nord` | wrong |" in nb.cells[3].source
    wage = nbformat.read(out / "qwen3_8b" / "1" / "run.ipynb", as_version=4)
    assert wage.cells[1].outputs[0]["text"] == "wage 5.005 rows 2\n"  # BOM and CR-only line ends read as a table
    for qid in ("1", "2", "3"):
        kept = sorted(p.name for p in (out / "qwen3_8b" / qid).iterdir())
        assert kept == ["answer.md", "calls.jsonl", "cassette.jsonl", "events.jsonl", "result.json", "run.ipynb"]
    calls = [json.loads(line) for line in (out / "qwen3_8b" / "3" / "calls.jsonl").read_text().splitlines()]
    # classify, react, code, verify the code, verify its output is adequate, react again (finish), answer
    assert [c["purpose"] for c in calls] == ["classify", "react", "code", "verify", "verify", "react", "answer"]
    assert (out / "qwen3_8b" / "3" / "answer.md").read_text() == "```\n@n_rows[3]\n```\n"
    events = [json.loads(line) for line in (out / "qwen3_8b" / "1" / "events.jsonl").read_text().splitlines()]
    assert events[0]["type"] == "run_started" and events[-1] == {**events[-1], "type": "run_finished", "status": "ok"}

    summary = report.summarize(run)
    m = summary["models"]["qwen3:8b"]
    assert (m["abq"], m["psaq"], m["uasq"]) == (round(2 / 3, 4), round(2.5 / 3, 4), 0.75)
    assert m["by_level"]["medium"]["psaq"] == 0.5 and m["runs"] == {"ok": 3, "error": 0, "timeout": 0}
    assert m["cost"]["model_calls"] == 21 and m["wrong"] == ["2"]
    as_json, as_md = report.write(summary, out)
    assert json.loads(as_json.read_text())["models"]["qwen3:8b"]["abq"] == 0.6667
    table = as_md.read_text()
    assert "| ABQ (all sub-answers right) | 66.7% |" in table and "| ABQ, medium | 0.0% of 1 |" in table
    assert "| runs ok / error / timeout | 3 / 0 / 0 |" in table

    # The cassette holds every question's calls; replaying it needs no model at all.
    recorded = [json.loads(line) for line in cassette.read_text().splitlines()]
    assert recorded[0]["llm_agent_cassette"] == 1 and recorded[0]["models"] == ["qwen3:8b"]
    assert len(recorded) == 1 + 21
    replayed = prepare(args_for(folder, "replayed", replay=str(cassette)), default_model="qwen3:8b")
    await run_eval(replayed, base=settings("http://127.0.0.1:9"), parallel=2)  # nothing listens there
    assert [(r.id, r.status, r.score.correct) for r in replayed.results] == \
        [(r.id, r.status, r.score.correct) for r in run.results]
    again = nbformat.read(tmp_path / "replayed" / "qwen3_8b" / "2" / "run.ipynb", as_version=4)
    assert again.cells[1].outputs[0]["text"] == "total 40 first nord\n"  # the code ran again, in a new sandbox


@pytest.mark.parametrize("jobs", [1, 3])
async def test_jobs_keep_that_many_requests_in_flight_on_one_openai_server(tmp_path, jobs):
    """-j N against one OpenAI-compatible server: every question's first call waits until N calls are in flight
    at once (or 30 s), so the server's count says how many the eval kept going, whatever the machine's speed."""
    folder = write_dataset(tmp_path)
    scripted = script()
    for rule in scripted["rules"]:
        if rule["purpose"] == "classify":
            rule["wait_for"] = jobs
    with FakeOllama(scripted) as server:
        cfg = settings("http://127.0.0.1:9")  # nothing listens there: every call must go to base_url
        cfg.LLMConfig.provider = "openai"
        cfg.LLMConfig.base_url = f"{server.url}/v1"
        run = prepare(args_for(folder, "out"), default_model="qwen3:8b")
        await run_eval(run, base=cfg, parallel=jobs)
        assert server.max_in_flight == jobs
        assert {r.path for r in server.requests} == {"/v1/chat/completions"}
    assert [(r.id, r.status, r.all_correct) for r in run.results] == [("1", "ok", True), ("2", "ok", False),
                                                                       ("3", "ok", True)]
    assert result(tmp_path / "out", "qwen3_8b", "3")["cost"]["prompt_tokens"] > 0  # usage from the server


async def test_errors_and_timeouts_are_counted_and_the_eval_goes_on(tmp_path):
    folder = write_dataset(tmp_path)
    faults = {"LATIN": {"fault": "http_500"}, "ROWS": {"fault": "timeout"}}  # timeout: the model never answers
    with FakeOllama(script(faults=faults)) as server:
        run = prepare(args_for(folder, "out", timeout=20, mode="react"), default_model="qwen3:8b")
        cfg = settings(server.url)
        cfg.AgentConfig.approval = True  # a user's setting for notebooks: no one would approve the eval's cells
        await run_eval(run, base=cfg, parallel=3)
        assert not server.requests_for("classify")  # --mode react: no classifier
    assert [(r.id, r.status) for r in run.results] == [("1", "ok"), ("2", "error"), ("3", "timeout")]
    errored, timed_out = run.results[1], run.results[2]
    assert errored.error.startswith("LLMServerError: Ollama answered HTTP 500")
    assert timed_out.error == "the question took longer than 20 s (--timeout)"
    assert errored.score.correct == {"total_prix": False, "first_region": False}  # counted, as wrong
    summary = report.summarize(run)["models"]["qwen3:8b"]
    assert summary["runs"] == {"ok": 1, "error": 1, "timeout": 1}
    assert summary["abq"] == round(1 / 3, 4) and summary["questions"] == 3
    assert [f["id"] for f in summary["failed"]] == ["2", "3"]
    # A timed-out run still leaves its folder: a notebook saying so, and the calls it made.
    nb = nbformat.read(tmp_path / "out" / "qwen3_8b" / "3" / "run.ipynb", as_version=4)
    assert "**Status:** timeout (the question took longer than 20 s (--timeout))" in nb.cells[-1].source
    assert not (tmp_path / "out" / "qwen3_8b" / "3" / "agent-data").exists()


def eval_cli(*args: str, cwd: Path, host: str) -> subprocess.CompletedProcess:
    return cli_helpers.run_cli("eval", *args, cwd=cwd, env={"OLLAMA_HOST": host}, clean=True, timeout=300)


def test_two_models_side_by_side_an_interrupted_eval_resumed(tmp_path):
    folder = write_dataset(tmp_path)
    base = ("questions.jsonl", "--labels", "labels.jsonl", "--tables", "tables", "--out", "out")
    with FakeOllama(script(models=["qwen3:8b"])) as server:
        # Interrupted once the first question is done (-j 1: the others have not finished).
        env = {k: v for k, v in os.environ.items() if k not in cli_helpers.OUR_ENV}
        proc = subprocess.Popen([sys.executable, "-m", "llm_agent_magic.cli", "eval", *base, "--ids", "1,3",
                                 "--model", "qwen3:8b", "--model", "ghost:1b", "--mode", "react"],
                                cwd=folder, env={**env, "OLLAMA_HOST": server.url},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = folder / "out" / "qwen3_8b" / "1" / "result.json"
        deadline = time.monotonic() + 240
        while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
        finished = sorted(str(p.relative_to(folder / "out")) for p in (folder / "out").glob("*/*/result.json"))
        if proc.returncode == 0:  # it won the race and finished everything: take one result away
            (folder / "out" / "ghost_1b" / "3" / "result.json").unlink()
            finished.remove("ghost_1b/3/result.json")
        else:
            assert proc.returncode == 130, stderr
            assert "interrupted; continue with: llm-agent eval --resume --out" in stderr
        assert "qwen3_8b/1/result.json" in finished and len(finished) < 4
        qwen_wage = [r for r in requests_about(server, "WAGE") if r.model == "qwen3:8b"]

        done = eval_cli("--resume", "--out", "out", cwd=folder, host=server.url)
        assert done.returncode == 0, done.stderr
        # What had finished is not asked again; what had not is.
        assert [r for r in requests_about(server, "WAGE") if r.model == "qwen3:8b"] == qwen_wage
        assert [r for r in requests_about(server, "ROWS") if r.model == "qwen3:8b"]
    # The progress bar: questions done of all, the accuracy so far, the time left.
    assert "llm-agent eval: 100%" in done.stderr and "4/4" in done.stderr and "accuracy 50%" in done.stderr
    summary = json.loads((folder / "out" / "summary.json").read_text())
    assert summary["resumed"] == len(finished) and summary["plan"]["mode"] == "react"
    qwen, ghost = summary["models"]["qwen3:8b"], summary["models"]["ghost:1b"]
    assert (qwen["abq"], qwen["runs"]) == (1.0, {"ok": 2, "error": 0, "timeout": 0})
    assert (ghost["abq"], ghost["runs"]) == (0.0, {"ok": 0, "error": 2, "timeout": 0})
    assert "ModelNotFound: Model 'ghost:1b' is not available" in ghost["failed"][0]["error"]
    assert "| | `qwen3:8b` | `ghost:1b` |" in done.stdout
    assert "| ABQ (all sub-answers right) | 100.0% | 0.0% |" in done.stdout
    assert "| runs ok / error / timeout | 2 / 0 / 0 | 0 / 2 / 0 |" in done.stdout
    assert done.stdout == (folder / "out" / "summary.md").read_text() + "\n"

    again = eval_cli(*base, cwd=folder, host="http://127.0.0.1:9")
    assert again.returncode == 2 and "already holds an eval; continue it with --resume" in again.stderr
