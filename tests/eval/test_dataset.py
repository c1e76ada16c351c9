"""Reading DABench files, choosing questions, and the tables they name as real datasets have them."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from eval_helpers import QUESTIONS, TABLES, write_dataset

from llm_agent_magic.evaluation import dataset
from llm_agent_magic.evaluation.prepare import EvalArgs, prepare, split_ids
from llm_agent_magic.exceptions import AttachmentRefused, UsageProblem
from llm_agent_magic.tools.file_analyzer import FileAnalyzerTool
from llm_agent_magic.tools.files import attach, describe_file


def lines(path: Path, *items) -> Path:
    path.write_text("".join(i if isinstance(i, str) else json.dumps(i) + "\n" for i in items))
    return path


def test_questions_and_labels_are_read_with_their_fields(tmp_path):
    folder = write_dataset(tmp_path)
    (folder / "questions.jsonl").write_bytes(b"\xef\xbb\xbf" + (folder / "questions.jsonl").read_bytes() + b"\n\n")
    data = dataset.load(folder / "questions.jsonl", folder / "labels.jsonl", folder / "tables")
    assert [q.id for q in data.questions] == ["1", "2", "3"]  # a byte-order mark and blank lines are no problem
    first = data.questions[0]
    assert (first.file_name, first.level, first.concepts) == ("rate=a+b survey 2016.csv", "easy", ("Summary Statistics",))
    assert data.labels["2"].answers == (("total_prix", "40"), ("first_region", "nord"))
    assert data.table(first) == (folder / "tables" / "rate=a+b survey 2016.csv").resolve()
    request = first.request()
    assert request.startswith("What is the mean wage? [WAGE]\n\nConstraints: Round to two decimals.")
    assert "Answer format: @mean_wage[value], a number rounded to two decimals" in request
    assert "rate=a+b survey 2016.csv" in request and "written exactly as the answer format says" in request


def test_every_problem_in_a_file_is_reported_with_its_line(tmp_path):
    good = QUESTIONS[0]
    path = lines(
        tmp_path / "q.jsonl",
        good,
        "not json\n",
        [1, 2],
        {**good, "id": 1},
        {**good, "id": 7, "format": ""},
        {**good, "id": 8, "level": "extreme"},
        {**good, "id": 9, "file_name": "../secrets.csv"},
        {**good, "id": True},
    )
    with pytest.raises(UsageProblem) as err:
        dataset.read_questions(path)
    message = str(err.value)
    assert "has 7 problem(s)" in message
    for expected in (
        "line 2: not JSON",
        "line 3: a JSON object is expected, not list",
        "line 4: id 1 appears twice",
        "line 5: 'format' is missing or empty",
        "line 6: 'level' 'extreme' is not one of easy, medium, hard",
        "line 7: 'file_name' '../secrets.csv' must be a plain file name inside the tables folder",
        "line 8: 'id' must be a number or a non-empty string",
    ):
        assert expected in message
    labels = lines(tmp_path / "l.jsonl", {"id": 1, "common_answers": []}, {"id": 2, "common_answers": [["a"]]})
    with pytest.raises(
        UsageProblem,
        match=r"line 1: 'common_answers' must be a non-empty list(.|\n)*line 2: "
        r"'common_answers' entry \['a'\] is not a \[name, value\] pair",
    ):
        dataset.read_labels(labels)
    with pytest.raises(UsageProblem, match="holds no lines"):
        dataset.read_labels(lines(tmp_path / "empty.jsonl", "\n"))
    with pytest.raises(UsageProblem, match="does not exist"):
        dataset.read_labels(tmp_path / "nowhere.jsonl")
    (tmp_path / "utf16.jsonl").write_bytes('{"id": 1}'.encode("utf-16"))
    with pytest.raises(UsageProblem, match="is not UTF-8 text"):
        dataset.read_labels(tmp_path / "utf16.jsonl")


def test_filters_and_what_must_exist_before_anything_runs(tmp_path):
    folder = write_dataset(tmp_path)
    q, lab, t = folder / "questions.jsonl", folder / "labels.jsonl", folder / "tables"
    assert [x.id for x in dataset.load(q, lab, t, ids=["3", "1"]).questions] == ["1", "3"]  # file order
    assert [x.id for x in dataset.load(q, lab, t, level="medium").questions] == ["2"]
    assert [x.id for x in dataset.load(q, lab, t, limit=2).questions] == ["1", "2"]
    assert split_ids(["3,5", "7 8", ""]) == ["3", "5", "7", "8"]
    with pytest.raises(UsageProblem, match="--ids names questions the questions file does not have: 99"):
        dataset.load(q, lab, t, ids=["99"])
    with pytest.raises(UsageProblem, match="no question is left"):
        dataset.load(q, lab, t, ids=["1"], level="hard")
    with pytest.raises(UsageProblem, match="--level must be one of easy, medium, hard"):
        dataset.load(q, lab, t, level="tricky")
    lines(lab, {"id": 1, "common_answers": [["a", "1"]]})
    with pytest.raises(UsageProblem, match=r"no label for question\(s\) 2, 3"):
        dataset.load(q, lab, t)
    write_dataset(tmp_path)
    (t / "plain.csv").unlink()
    with pytest.raises(UsageProblem, match=r"table\(s\) not found in .*: plain.csv; check --tables"):
        dataset.load(q, lab, t)
    with pytest.raises(UsageProblem, match="tables folder .* does not exist"):
        dataset.load(q, lab, tmp_path / "no-tables")


def test_the_command_line_is_checked_and_a_finished_eval_is_not_overwritten(tmp_path):
    folder = write_dataset(tmp_path)
    args = EvalArgs(
        questions=str(folder / "questions.jsonl"),
        labels=str(folder / "labels.jsonl"),
        tables=str(folder / "tables"),
        out=str(tmp_path / "out"),
    )
    for change, message in [
        ({"labels": ""}, "name --labels"),
        ({"mode": "chat"}, "--mode must be one of auto, react, plan"),
        ({"replay": "a.jsonl", "record": "b.jsonl"}, "choose one of --replay and --record"),
        ({"replay": str(tmp_path / "none.jsonl")}, "does not exist; record one first"),
        ({"timeout": -1}, "--timeout must be 0"),
        ({"resume": True}, "holds no eval.json"),
    ]:
        with pytest.raises(UsageProblem, match=message):
            prepare(EvalArgs(**{**args.__dict__, **change}), default_model="m:1b")
    run = prepare(args, default_model="m:1b")
    assert run.plan.models == ["m:1b"] and run.plan.ids == ["1", "2", "3"]
    assert json.loads((tmp_path / "out" / "eval.json").read_text())["models"] == ["m:1b"]
    with pytest.raises(UsageProblem, match="already holds an eval; continue it with --resume"):
        prepare(args, default_model="m:1b")
    with pytest.raises(UsageProblem, match=r"these differ: models \(\['other:2b'\] here, \['m:1b'\] in eval.json\)"):
        prepare(EvalArgs(**{**args.__dict__, "resume": True, "models": ["other:2b"]}), default_model="m:1b")
    with pytest.raises(UsageProblem, match="--ids/--level/--limit"):
        prepare(EvalArgs(out=args.out, resume=True, limit=1), default_model="m:1b")
    resumed = prepare(EvalArgs(out=args.out, resume=True), default_model="other:2b")
    assert resumed.plan == run.plan and [q.id for q in resumed.dataset.questions] == ["1", "2", "3"]
    plan_file = tmp_path / "out" / "eval.json"
    for broken in (
        "[1, 2]",
        '{"questions": "q"}',
        json.dumps({**run.plan.to_dict(), "models": "m:1b"}),
        json.dumps({**run.plan.to_dict(), "mode": "sideways"}),
        "{not json",
    ):
        plan_file.write_text(broken)
        with pytest.raises(UsageProblem, match="eval.json cannot be read .*; start again in a new --out folder"):
            prepare(EvalArgs(out=args.out, resume=True), default_model="m:1b")


def test_real_world_tables_attach_under_their_names_and_are_previewed(tmp_path):
    write_dataset(tmp_path)
    workspace = tmp_path / "workspace"
    copies = attach([str(tmp_path / "tables" / name) for name in TABLES], str(workspace))
    assert copies == list(TABLES)  # outside any notebook folder: under their names
    assert [(workspace / c).read_bytes() for c in copies] == list(TABLES.values())  # byte for byte: BOM, CR, Latin-1 kept
    described = {c: describe_file(workspace, c) for c in copies}
    # The byte-order mark is not part of the first column's name; CR-only line ends are rows.
    assert "columns: wage (float64), looks (int64)" in described["rate=a+b survey 2016.csv"]
    assert "5.73" in described["rate=a+b survey 2016.csv"]
    # Latin-1 and ';': read as the table it is, not "could not be previewed".
    assert "columns: région (" in described["ventes latin1.csv"]  # object or str, by pandas version
    assert "prix (int64)" in described["ventes latin1.csv"]
    assert "nord" in described["ventes latin1.csv"]
    assert "columns: x (int64)" in described["plain.csv"]


def test_attach_copies_only_regular_files_within_the_limit(tmp_path):
    write_dataset(tmp_path)
    tables, workspace = tmp_path / "tables", tmp_path / "workspace"
    (tmp_path / "passwd").write_text("root:x:0:0:SECRET_TOKEN=xyz\n")
    (tables / "up.csv").symlink_to("../passwd")  # a relative link out of the tables folder
    (tables / "inside.csv").symlink_to("plain.csv")  # one that stays inside is not followed either
    os.link(tmp_path / "passwd", tables / "hard.csv")
    (tables / "folder.csv").mkdir()
    refused = {
        "up.csv": "it is a symbolic link",
        "inside.csv": "it is a symbolic link",
        "hard.csv": "it is a hard link (the same file has other names, perhaps outside the folder)",
        "folder.csv": "it is a folder, not a file",
    }
    for name, why in refused.items():
        with pytest.raises(AttachmentRefused, match=re.escape(f"Refused to attach {tables / name}: {why}. ")):
            attach([str(tables / name)], str(workspace))
    with pytest.raises(AttachmentRefused, match=r"it is larger than the 5 bytes allowed\. Attach a smaller file"):
        attach([str(tables / "plain.csv")], str(workspace), max_bytes=5)
    with pytest.raises(FileNotFoundError, match="Attached file nowhere.csv does not exist"):
        attach(["nowhere.csv"], str(workspace))
    assert sorted(p.name for p in workspace.iterdir()) == []  # nothing of them reached the workspace
    (copy,) = attach([str(tables / "plain.csv")], str(workspace), max_bytes=len(TABLES["plain.csv"]))
    assert copy == "plain.csv" and (workspace / copy).read_bytes() == TABLES["plain.csv"]


def test_a_table_that_is_a_link_passes_loading_and_is_refused_when_its_question_runs(tmp_path):
    folder = write_dataset(tmp_path)
    (folder / "tables" / "plain.csv").unlink()
    (folder / "tables" / "plain.csv").symlink_to("/proc/self/environ")
    data = dataset.load(folder / "questions.jsonl", folder / "labels.jsonl", folder / "tables")
    (question,) = [q for q in data.questions if q.file_name == "plain.csv"]
    with pytest.raises(AttachmentRefused, match="plain.csv: it is a symbolic link"):
        attach([str(data.table(question))], str(tmp_path / "workspace"))


def test_the_file_analyzer_reads_the_same_tables(tmp_path):
    from llm_agent_magic.config import ToolsConfig

    write_dataset(tmp_path)
    tool = FileAnalyzerTool(ToolsConfig())
    analyzer = tool._read_table  # the table reader the tool describes tables with
    with open(tmp_path / "tables" / "ventes latin1.csv", "rb") as fh:
        frame, _ = analyzer(fh, ".csv", 0)
    assert list(frame.columns) == ["région", "prix"] and frame["prix"].sum() == 40
    with open(tmp_path / "tables" / "rate=a+b survey 2016.csv", "rb") as fh:
        frame, _ = analyzer(fh, ".csv", 0)
    assert list(frame.columns) == ["wage", "looks"] and len(frame) == 2


def test_every_model_and_question_gets_a_folder_of_its_own(tmp_path):
    from llm_agent_magic.evaluation.runner import jobs_of

    folder = write_dataset(tmp_path)
    run = prepare(
        EvalArgs(
            questions=str(folder / "questions.jsonl"),
            labels=str(folder / "labels.jsonl"),
            tables=str(folder / "tables"),
            out=str(tmp_path / "out"),
            models=["qwen3:8b", "llama3.1:8b"],
        ),
        default_model="m:1b",
    )
    jobs = jobs_of(run.plan, run.dataset, run.out)
    # Models side by side: every model's first question before anyone's second.
    assert [(j.model, j.question.id) for j in jobs][:3] == [("qwen3:8b", "1"), ("llama3.1:8b", "1"), ("qwen3:8b", "2")]
    assert jobs[0].folder == tmp_path / "out" / "qwen3_8b" / "1"
    run.plan.models = ["a:1b", "a/1b"]
    with pytest.raises(UsageProblem, match="give the same folder name twice"):
        jobs_of(run.plan, run.dataset, run.out)
    run.plan.models = ["a:1b"]
    run.dataset.questions = [question_with_id("x/1"), question_with_id("x_1")]
    with pytest.raises(UsageProblem, match="question ids 'x/1' and 'x_1' would share one folder"):
        jobs_of(run.plan, run.dataset, run.out)


def question_with_id(qid: str) -> dataset.Question:
    q = QUESTIONS[0]
    return dataset.Question(qid, q["question"], q["constraints"], q["format"], q["file_name"], q["level"])
