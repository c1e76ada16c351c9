"""Whole evals: real sandbox kernels, the scripted model server, the files an eval leaves behind.

Every eval runs against the scripted server through each protocol (``protocol``): Ollama's and the OpenAI
chat-completions API, with the other one pointing nowhere."""

from __future__ import annotations

import html
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cli_helpers
import nbformat
import pytest
from eval_helpers import (
    CHAT_PATHS,
    LABELS,
    NOWHERE,
    QUESTIONS,
    chat_requests,
    model_env,
    model_settings,
    requests_about,
    script,
    seed_of,
    write_dataset,
)
from traitlets.config import Config

from llm_agent_magic.evaluation import report
from llm_agent_magic.evaluation.prepare import EvalArgs, prepare
from llm_agent_magic.evaluation.runner import run_eval
from llm_agent_magic.testing.fake_ollama import FakeOllama

pytestmark = pytest.mark.slow


@pytest.fixture(params=list(CHAT_PATHS))
def protocol(request) -> str:
    """The protocol the eval talks to the scripted server in: ``ollama`` or ``openai``."""
    return request.param


def settings(protocol: str, url: str) -> Config:
    cfg = Config()
    for name, value in model_settings(protocol, url).items():
        setattr(cfg.LLMConfig, name, value)
    cfg.LLMConfig.max_retries = 0
    return cfg


def other(protocol: str) -> str:
    (name,) = set(CHAT_PATHS) - {protocol}
    return name


def args_for(folder: Path, out: str, **more) -> EvalArgs:
    return EvalArgs(
        questions=str(folder / "questions.jsonl"),
        labels=str(folder / "labels.jsonl"),
        tables=str(folder / "tables"),
        out=str(folder / out),
        **more,
    )


def result(out: Path, model: str, qid: str) -> dict:
    return json.loads((out / model / qid / "result.json").read_text())


async def test_questions_run_two_at_a_time_are_scored_kept_and_replayed(tmp_path, protocol):
    folder = write_dataset(tmp_path)
    cassette = tmp_path / "cassettes" / "dabench.jsonl"
    with FakeOllama(script()) as server:
        run = prepare(args_for(folder, "out", record=str(cassette)), default_model="qwen3:8b")
        await run_eval(run, base=settings(protocol, server.url), parallel=2)
        assert {r.path for r in server.requests} == {CHAT_PATHS[protocol]}
        # Every table reached the model as a preview, whatever its name, encoding or delimiter.
        latin = requests_about(server, "LATIN")[0].text
        assert "ventes latin1.csv (27 bytes); columns: région (" in latin and "could not be previewed" not in latin
        assert (
            "rate=a+b survey 2016.csv (28 bytes); columns: wage (float64), looks (int64)"
            in requests_about(server, "WAGE")[0].text
        )
        # Model calls per one-table question: no classifier (a table and a question), no review before the
        # cell runs, an adequacy check only for LATIN, whose output carries none of the requested values.
        calls = {m: [r.purpose for r in requests_about(server, m)] for m in ("WAGE", "LATIN", "ROWS")}
        assert calls["WAGE"] == calls["ROWS"] == ["react", "code", "react", "answer"]
        assert calls["LATIN"] == ["react", "code", "verify", "react", "answer"]
        assert statistics.median(len(c) for c in calls.values()) <= 4
    out = tmp_path / "out"
    assert [(r.id, r.status, r.all_correct) for r in run.results] == [("1", "ok", True), ("2", "ok", False), ("3", "ok", True)]
    latin_result = result(out, "qwen3_8b", "2")
    assert latin_result["score"]["correct"] == {"total_prix": True, "first_region": False}
    assert latin_result["score"]["predicted"] == {"total_prix": "40.0", "first_region": "Nord"}
    assert latin_result["cost"]["model_calls"] == 5 and latin_result["cost"]["prompt_tokens"] > 0
    assert set(latin_result["timing"]) == {"open", "run", "close", "harness"}
    # The executed notebook: the question, the cell that read the table (with what it printed), the answer.
    nb = nbformat.read(out / "qwen3_8b" / "2" / "run.ipynb", as_version=4)
    nbformat.validate(nb)
    kinds = [c.cell_type for c in nb.cells]
    assert kinds == ["markdown", "code", "markdown", "markdown"]
    assert nb.cells[1].outputs[0]["text"] == "total 40 first nord\n"
    assert nb.cells[1].metadata["llm_agent"]["status"] == "final"
    # The model's words and the dataset's are in markdown cells as literal text: shown, never read as markup.
    assert "@total_prix[40.0] @first_region[Nord]" in html.unescape(nb.cells[2].source) and "[" not in nb.cells[2].source
    assert "| first_region | nord | Nord | wrong |" in html.unescape(nb.cells[3].source)
    wage = nbformat.read(out / "qwen3_8b" / "1" / "run.ipynb", as_version=4)
    # BOM and CR-only line ends read as a table
    assert wage.cells[1].outputs[0]["text"] == "wage 5.005 rows 2\n@mean_wage[5.01]\n"
    for qid in ("1", "2", "3"):
        kept = sorted(p.name for p in (out / "qwen3_8b" / qid).iterdir())
        assert kept == ["answer.md", "calls.jsonl", "cassette.jsonl", "events.jsonl", "result.json", "run.ipynb"]
    calls = [json.loads(line) for line in (out / "qwen3_8b" / "3" / "calls.jsonl").read_text().splitlines()]
    assert [c["purpose"] for c in calls] == ["react", "code", "react", "answer"]
    assert (out / "qwen3_8b" / "3" / "answer.md").read_text() == "```\n@n_rows[3]\n```\n"
    events = [json.loads(line) for line in (out / "qwen3_8b" / "1" / "events.jsonl").read_text().splitlines()]
    assert events[0]["type"] == "run_started" and events[-1] == {**events[-1], "type": "run_finished", "status": "ok"}

    summary = report.summarize(run)
    m = summary["models"]["qwen3:8b"]
    assert (m["abq"], m["psaq"], m["uasq"]) == (round(2 / 3, 4), round(2.5 / 3, 4), 0.75)
    assert m["by_level"]["medium"]["psaq"] == 0.5 and m["runs"] == {"ok": 3, "error": 0, "timeout": 0}
    assert m["cost"]["model_calls"] == 13 and m["wrong"] == ["2"]
    as_json, as_md = report.write(summary, out)
    assert json.loads(as_json.read_text())["models"]["qwen3:8b"]["abq"] == 0.6667
    table = as_md.read_text()
    assert "| ABQ (all sub-answers right) | 66.7% |" in table and "| ABQ, medium | 0.0% of 1 |" in table
    assert "| runs ok / error / timeout | 3 / 0 / 0 |" in table

    # The cassette holds every question's calls; replaying it needs no model at all, and it does not matter
    # which protocol it was recorded through: it replays through the other one.
    recorded = [json.loads(line) for line in cassette.read_text().splitlines()]
    assert recorded[0]["llm_agent_cassette"] == 1 and recorded[0]["models"] == ["qwen3:8b"]
    assert len(recorded) == 1 + 13
    replayed = prepare(args_for(folder, "replayed", replay=str(cassette)), default_model="qwen3:8b")
    await run_eval(replayed, base=settings(other(protocol), NOWHERE), parallel=2)
    assert [(r.id, r.status, r.score.correct) for r in replayed.results] == [
        (r.id, r.status, r.score.correct) for r in run.results
    ]
    again = nbformat.read(tmp_path / "replayed" / "qwen3_8b" / "2" / "run.ipynb", as_version=4)
    assert again.cells[1].outputs[0]["text"] == "total 40 first nord\n"  # the code ran again, in a new sandbox


async def test_a_printed_value_the_answer_left_out_is_added_and_scored(tmp_path, protocol):
    folder = write_dataset(tmp_path)
    with FakeOllama(script(answers={"ROWS": "The table has three rows."})) as server:
        run = prepare(args_for(folder, "out", ids=["3"]), default_model="qwen3:8b")
        await run_eval(run, base=settings(protocol, server.url))
        (code_prompt,) = [r.text for r in requests_about(server, "ROWS") if r.purpose == "code"]
        (answer_prompt,) = [r.text for r in requests_about(server, "ROWS") if r.purpose == "answer"]
    # The code step was told the format; the answer step got it verbatim, with the value the code printed.
    assert "The request asks for this answer format:\nAnswer format: @n_rows[n]" in code_prompt
    assert "exactly in that format (@n_rows[...])" in code_prompt
    assert "Answer format: @n_rows[n]\nEnd the answer with every requested value" in answer_prompt
    assert answer_prompt.rstrip().endswith("copying the values the code printed:\n@n_rows[3]")
    (only,) = run.results
    assert only.answer == "The table has three rows.\n\n@n_rows[3]"
    assert only.score.correct == {"n_rows": True} and only.all_correct
    out = tmp_path / "out" / "qwen3_8b" / "3"
    assert (out / "answer.md").read_text() == "The table has three rows.\n\n@n_rows[3]\n"
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    (added,) = [e for e in events if e["type"] == "observation" and e["tool"] == "answer_format"]
    assert added["text"] == "The answer left out requested value(s) the code printed; added: @n_rows[3]"


@pytest.mark.parametrize("jobs", [1, 3])
async def test_jobs_keep_that_many_requests_in_flight_on_one_openai_server(tmp_path, jobs):
    """-j N against one OpenAI-compatible server: every question's first call (react) waits until N calls are in flight
    at once (or 30 s), so the server's count says how many the eval kept going, whatever the machine's speed.
    OpenAI only: scaling out on one OpenAI-compatible server (vLLM and the like) is what this checks."""
    folder = write_dataset(tmp_path)
    scripted = script()
    for rule in scripted["rules"]:
        if rule["purpose"] == "react" and rule.get("reply", {}).get("action") == "python_coder":
            rule["wait_for"] = jobs  # each question's first call (a question with a format asks no classifier)
    with FakeOllama(scripted) as server:
        cfg = settings("openai", server.url)  # the Ollama host points nowhere: every call must go to base_url
        run = prepare(args_for(folder, "out"), default_model="qwen3:8b")
        await run_eval(run, base=cfg, parallel=jobs)
        assert server.max_in_flight == jobs
        assert {r.path for r in server.requests} == {"/v1/chat/completions"}
    assert [(r.id, r.status, r.all_correct) for r in run.results] == [("1", "ok", True), ("2", "ok", False), ("3", "ok", True)]
    assert result(tmp_path / "out", "qwen3_8b", "3")["cost"]["prompt_tokens"] > 0  # usage from the server


async def test_errors_and_timeouts_are_counted_and_the_eval_goes_on(tmp_path, protocol):
    folder = write_dataset(tmp_path)
    faults = {"LATIN": {"fault": "http_500"}, "ROWS": {"fault": "timeout"}}  # timeout: the model never answers
    with FakeOllama(script(faults=faults)) as server:
        run = prepare(args_for(folder, "out", timeout=20, mode="react"), default_model="qwen3:8b")
        cfg = settings(protocol, server.url)
        cfg.AgentConfig.approval = True  # a user's setting for notebooks: no one would approve the eval's cells
        await run_eval(run, base=cfg, parallel=3)
        assert not server.requests_for("classify")  # --mode react: no classifier
        answered = {"ollama": "Ollama", "openai": f"The OpenAI-compatible server at {server.url}/v1"}[protocol]
    assert [(r.id, r.status) for r in run.results] == [("1", "ok"), ("2", "error"), ("3", "timeout")]
    errored, timed_out = run.results[1], run.results[2]
    assert errored.error.startswith(f"LLMServerError: {answered} answered HTTP 500")
    assert timed_out.error == "the question took longer than 20 s (--timeout)"
    assert errored.score.correct == {"total_prix": False, "first_region": False}  # counted, as wrong
    summary = report.summarize(run)["models"]["qwen3:8b"]
    assert summary["runs"] == {"ok": 1, "error": 1, "timeout": 1}
    assert summary["abq"] == round(1 / 3, 4) and summary["questions"] == 3
    assert [f["id"] for f in summary["failed"]] == ["2", "3"]
    # A timed-out run still leaves its folder: a notebook saying so, and the calls it made.
    nb = nbformat.read(tmp_path / "out" / "qwen3_8b" / "3" / "run.ipynb", as_version=4)
    assert "**Status:** timeout (the question took longer than 20 s (--timeout))" in html.unescape(nb.cells[-1].source)
    assert not (tmp_path / "out" / "qwen3_8b" / "3" / "agent-data").exists()


def test_a_table_that_is_a_link_or_a_pipe_fails_its_question_and_leaks_nothing(tmp_path, protocol):
    # A cloned dataset keeps links: to the eval's own environment, to a file beside the dataset, or a FIFO.
    (tmp_path / "secret.txt").write_text("SECRET_TOKEN=xyz-beside-the-dataset\n")
    bad = {"4": ("environ.csv", "ENV"), "5": ("passwd.csv", "UP"), "6": ("pipe.csv", "PIPE")}
    questions = [
        QUESTIONS[0],
        *(
            {
                "id": int(i),
                "question": f"How many rows? [{m}]",
                "constraints": "",
                "format": "@n_rows[n]",
                "file_name": f,
                "level": "easy",
            }
            for i, (f, m) in bad.items()
        ),
    ]
    labels = [LABELS[0], *({"id": int(i), "common_answers": [["n_rows", "3"]]} for i in bad)]
    folder = write_dataset(tmp_path / "dabench", questions, labels)
    (folder / "tables" / "environ.csv").symlink_to("/proc/self/environ")
    (folder / "tables" / "passwd.csv").symlink_to("../../secret.txt")
    os.mkfifo(folder / "tables" / "pipe.csv")
    with FakeOllama(script()) as server:
        for ids, out in (("1,4,5", "out"), ("6", "out-pipe")):  # a FIFO table once stopped the whole eval
            done = cli_helpers.run_cli(
                "eval",
                "questions.jsonl",
                "--labels",
                "labels.jsonl",
                "--tables",
                "tables",
                "--ids",
                ids,
                "-j",
                "2",
                "--out",
                out,
                cwd=folder,
                clean=True,
                timeout=300,
                env={**model_env(protocol, server.url), "EVAL_SECRET": "SECRET_TOKEN=xyz-in-the-environment"},
            )
            sent = [json.dumps(r.body) for r in server.requests]
            assert not any("SECRET_TOKEN" in text for text in sent)  # the eval's environment, the file beside it
            assert done.returncode == 0, done.stderr
        assert requests_about(server, "WAGE")  # the good question ran
        assert not any(requests_about(server, m) for _, m in bad.values())  # the refused ones asked nothing
    out = folder / "out"
    assert result(out, "qwen3_8b", "1")["status"] == "ok"  # the rest of the eval went on
    for qid, (name, _) in bad.items():
        failed = result(out if qid != "6" else folder / "out-pipe", "qwen3_8b", qid)
        assert failed["status"] == "error" and failed["error"].startswith(
            f"AttachmentRefused: Refused to attach {folder / 'tables' / name}: it is a"
        )
        assert "Attach the file itself: copy it into place" in failed["error"]
    assert "it is a symbolic link." in result(out, "qwen3_8b", "4")["error"]
    assert "it is a FIFO (named pipe), not a regular file." in result(folder / "out-pipe", "qwen3_8b", "6")["error"]
    # Nothing the eval kept (records, call logs, notebooks; the sessions' workspaces) holds the secrets.
    assert all(b"SECRET_TOKEN" not in p.read_bytes() for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def eval_cli(*args: str, cwd: Path, protocol: str, url: str) -> subprocess.CompletedProcess:
    """``llm-agent eval ARGS`` talking to the model server at ``url`` through ``protocol``."""
    return cli_helpers.run_cli("eval", *args, cwd=cwd, env=model_env(protocol, url), clean=True, timeout=300)


def test_two_models_side_by_side_an_interrupted_eval_resumed(tmp_path, protocol):
    folder = write_dataset(tmp_path)
    base = ("questions.jsonl", "--labels", "labels.jsonl", "--tables", "tables", "--out", "out")
    with FakeOllama(script(models=["qwen3:8b"])) as server:
        # Interrupted once the first question is done (-j 1: the others have not finished).
        env = {k: v for k, v in os.environ.items() if k not in cli_helpers.OUR_ENV}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llm_agent_magic.cli",
                "eval",
                *base,
                "--ids",
                "1,3",
                "--model",
                "qwen3:8b",
                "--model",
                "ghost:1b",
                "--mode",
                "react",
            ],
            cwd=folder,
            env={**env, **model_env(protocol, server.url)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
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

        done = eval_cli("--resume", "--out", "out", cwd=folder, protocol=protocol, url=server.url)
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

    again = eval_cli(*base, cwd=folder, protocol=protocol, url=NOWHERE)
    assert again.returncode == 2 and "already holds an eval; continue it with --resume" in again.stderr


def test_two_variants_side_by_side_with_a_seed(tmp_path, protocol):
    folder = write_dataset(tmp_path)
    with FakeOllama(script()) as server:
        done = eval_cli(
            "questions.jsonl",
            "--labels",
            "labels.jsonl",
            "--tables",
            "tables",
            "--out",
            "out",
            "--ids",
            "1,3",
            "--LLMConfig.seed=7",
            "--variant",
            "base:",
            "--variant",
            "review:--AgentConfig.review_before_run=True --AgentConfig.max_verification_iterations=1",
            cwd=folder,
            protocol=protocol,
            url=server.url,
        )
        assert done.returncode == 0, done.stderr
        chats = chat_requests(server)
        reviews = server.requests_for("verify")
    # Every question ran under each variant, with the same seed; only the review variant reviewed its cells.
    assert chats and all(seed_of(r) == 7 for r in chats)
    assert len(reviews) == 2 and all("[review] Before it runs" in r.text for r in reviews)
    out = folder / "out"
    assert sorted(p.parent.name + "/" + p.name for p in out.glob("*/*") if p.is_dir()) == [
        "qwen3_8b--base/1",
        "qwen3_8b--base/3",
        "qwen3_8b--review/1",
        "qwen3_8b--review/3",
    ]
    summary = json.loads((out / "summary.json").read_text())
    base, review = summary["models"]["qwen3:8b [base]"], summary["models"]["qwen3:8b [review]"]
    assert summary["plan"]["variants"] == {
        "base": [],
        "review": ["--AgentConfig.review_before_run=True", "--AgentConfig.max_verification_iterations=1"],
    }
    assert (base["abq"], review["abq"]) == (1.0, 1.0) and base["format_miss"] == review["format_miss"] == 0.0
    assert (base["cost"]["model_calls_per_question"], review["cost"]["model_calls_per_question"]) == (4, 5)
    assert "| | `qwen3:8b [base]` | `qwen3:8b [review]` |" in done.stdout
    assert "| model calls per question | 4 | 5 |" in done.stdout
    assert "| format miss (requested names absent from the answer) | 0.0% | 0.0% |" in done.stdout
    assert "Variant `review`: --AgentConfig.review_before_run=True --AgentConfig.max_verification_iterations=1" in done.stdout
    result = json.loads((out / "qwen3_8b--review" / "1" / "result.json").read_text())
    assert result["variant"] == "review" and result["model"] == "qwen3:8b"

    bad = eval_cli(
        "questions.jsonl",
        "--labels",
        "labels.jsonl",
        "--tables",
        "tables",
        "--out",
        "other",
        "--variant",
        "a:--AgentConfig.no_such=1",
        "--variant",
        "b:",
        cwd=folder,
        protocol=protocol,
        url=NOWHERE,
    )
    assert bad.returncode == 2 and "AgentConfig has no setting 'no_such'" in bad.stderr


def test_the_format_miss_rate_counts_names_absent_from_the_answer():
    from llm_agent_magic.evaluation.dataset import Label
    from llm_agent_magic.evaluation.records import QuestionResult
    from llm_agent_magic.evaluation.scoring import score

    label = Label("2", (("total_prix", "40"), ("first_region", "nord")))
    results = [
        QuestionResult("2", "m", "easy", "t.csv", "ok", score=score("@total_prix[41]", label)),
        QuestionResult("3", "m", "easy", "t.csv", "ok", score=score("no format at all", label)),
    ]
    summary = report.model_summary(results)
    assert summary["format_miss"] == 0.75  # 3 of 4 requested names absent; a wrong value is not a miss
