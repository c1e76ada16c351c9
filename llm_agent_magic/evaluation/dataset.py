"""InfiAgent-DABench questions and labels, read from their JSONL files and checked before anything runs.

A question line holds ``id``, ``question``, ``constraints``, ``format`` (asking for ``@answer_name[value]``),
``file_name`` (a table in the tables folder) and ``level`` (``easy``, ``medium``, ``hard``); a label line
holds ``id`` and ``common_answers`` as ``[[name, value], ...]``. Extra keys (``concepts``) are kept but not
needed. Every problem in the files is reported at once, with its line, so a user fixes them in one go.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..agents.workspace import read_confined
from ..exceptions import UnsafePath, UsageProblem

LEVELS = ("easy", "medium", "hard")
#: The largest questions or labels file read (DABench's are well under 1 MB).
MAX_JSONL_BYTES = 256 * 2**20
#: Problems listed in one error message at most; the rest are counted.
_MAX_LISTED = 10


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    constraints: str
    format: str
    file_name: str
    level: str
    concepts: tuple[str, ...] = ()

    def request(self) -> str:
        """What the agent is asked: the question, its constraints and the answer format DABench scores."""
        parts = [self.question.strip()]
        if self.constraints.strip():
            parts.append(f"Constraints: {self.constraints.strip()}")
        parts.append(f"Answer format: {self.format.strip()}")
        parts.append(
            f"Use the attached file {self.file_name}. End your answer with every requested value written exactly "
            f"as the answer format says."
        )
        return "\n\n".join(parts)


@dataclass(frozen=True)
class Label:
    id: str
    answers: tuple[tuple[str, str], ...]


@dataclass
class Dataset:
    questions: list[Question]
    labels: dict[str, Label]
    tables: Path
    #: Questions left out by the filters, by reason; for the summary.
    skipped: dict[str, int] = field(default_factory=dict)

    def table(self, question: Question) -> Path:
        return self.tables / question.file_name


def _id_of(value: Any) -> str:
    # DABench ids are integers; ids typed on a command line are text. One spelling for both.
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip():
        raise ValueError("'id' must be a number or a non-empty string")
    return str(value).strip()


def _text(item: dict[str, Any], key: str, required: bool = True) -> str:
    value = item.get(key, "")
    if value is None or (not required and value == ""):
        value = ""
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string")
    if required and not value.strip():
        raise ValueError(f"{key!r} is missing or empty")
    return value


def _read_jsonl(path: Path, what: str) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, str]]]:
    """The JSON objects of the file with their line numbers, and the lines that are not one."""
    try:  # a cloned dataset keeps links: the file itself is read, a regular file, never a link or a pipe
        raw = read_confined(os.path.realpath(path.parent), path.name, MAX_JSONL_BYTES)
    except FileNotFoundError:
        raise UsageProblem(f"{what} file {path} does not exist") from None
    except UnsafePath as exc:
        raise UsageProblem(
            f"{what} file {path} is not read: {exc.reason}; name the regular file itself "
            f"(copy it with `cp -L` if it is a link you trust)"
        ) from None
    except OSError as exc:
        raise UsageProblem(f"{what} file {path} cannot be read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark from a Windows editor is not part of the first line
    except UnicodeDecodeError as exc:
        raise UsageProblem(f"{what} file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    rows: list[tuple[int, dict[str, Any]]] = []
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append((number, f"not JSON ({exc.msg})"))
            continue
        if not isinstance(item, dict):
            problems.append((number, f"a JSON object is expected, not {type(item).__name__}"))
            continue
        rows.append((number, item))
    if not rows and not problems:
        raise UsageProblem(f"{what} file {path} holds no lines; it should have one JSON object per line")
    return rows, problems


def _raise_problems(path: Path, what: str, found: list[tuple[int, str]]) -> None:
    if not found:
        return
    problems = [f"line {number}: {problem}" for number, problem in sorted(found)]
    listed = problems[:_MAX_LISTED]
    more = f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
    raise UsageProblem(f"{what} file {path} has {len(problems)} problem(s):\n  " + "\n  ".join(listed) + more)


def _plain_file_name(name: str) -> str:
    # A table is named relative to the tables folder: no folders, no way out of it.
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name or name != name.strip("\r\n"):
        raise ValueError(f"'file_name' {name!r} must be a plain file name inside the tables folder")
    return name


def read_questions(path: Path) -> list[Question]:
    questions, seen = [], set()
    rows, problems = _read_jsonl(path, "questions")
    for number, item in rows:
        try:
            qid = _id_of(item.get("id"))
            if qid in seen:
                raise ValueError(f"id {qid} appears twice")
            level = _text(item, "level", required=False).strip().lower()
            if level and level not in LEVELS:
                raise ValueError(f"'level' {level!r} is not one of {', '.join(LEVELS)}")
            concepts = item.get("concepts") or []
            questions.append(
                Question(
                    id=qid,
                    question=_text(item, "question"),
                    constraints=_text(item, "constraints", required=False),
                    format=_text(item, "format"),
                    file_name=_plain_file_name(_text(item, "file_name")),
                    level=level or "unknown",
                    concepts=tuple(str(c) for c in concepts) if isinstance(concepts, list) else (),
                )
            )
            seen.add(qid)
        except ValueError as exc:
            problems.append((number, str(exc)))
    _raise_problems(path, "questions", problems)
    return questions


def read_labels(path: Path) -> dict[str, Label]:
    labels: dict[str, Label] = {}
    rows, problems = _read_jsonl(path, "labels")
    for number, item in rows:
        try:
            qid = _id_of(item.get("id"))
            answers = item.get("common_answers")
            if not isinstance(answers, list) or not answers:
                raise ValueError("'common_answers' must be a non-empty list of [name, value] pairs")
            pairs = []
            for pair in answers:
                if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) and pair[0]):
                    raise ValueError(f"'common_answers' entry {pair!r} is not a [name, value] pair")
                # Values are compared as text, as the published scorer does; a number in the file is its text.
                pairs.append((pair[0], pair[1] if isinstance(pair[1], str) else json.dumps(pair[1])))
            labels[qid] = Label(qid, tuple(pairs))
        except ValueError as exc:
            problems.append((number, str(exc)))
    _raise_problems(path, "labels", problems)
    return labels


def select(questions: list[Question], *, ids: Iterable[str] = (), level: str = "", limit: int = 0) -> list[Question]:
    """The questions the filters keep, in file order: ``ids`` first, then ``level``, then the first ``limit``."""
    wanted = [i.strip() for i in ids if i.strip()]
    chosen = questions
    if wanted:
        known = {q.id for q in questions}
        unknown = [i for i in wanted if i not in known]
        if unknown:
            raise UsageProblem(f"--ids names questions the questions file does not have: {', '.join(unknown[:20])}")
        keep = set(wanted)
        chosen = [q for q in chosen if q.id in keep]
    if level:
        if level not in LEVELS:
            raise UsageProblem(f"--level must be one of {', '.join(LEVELS)}, not {level!r}")
        chosen = [q for q in chosen if q.level == level]
    if limit < 0:
        raise UsageProblem("--limit must be 0 (no limit) or more")
    if limit:
        chosen = chosen[:limit]
    if not chosen:
        raise UsageProblem("no question is left after --ids, --level and --limit; loosen them")
    return chosen


def load(
    questions: str | os.PathLike[str],
    labels: str | os.PathLike[str],
    tables: str | os.PathLike[str],
    *,
    ids: Iterable[str] = (),
    level: str = "",
    limit: int = 0,
) -> Dataset:
    """Read and check everything an eval needs: every chosen question has a label and its table exists."""
    tables_dir = Path(tables).expanduser().resolve()
    if not tables_dir.is_dir():
        raise UsageProblem(f"tables folder {tables} does not exist; --tables names the folder holding the CSV files")
    all_questions = read_questions(Path(questions).expanduser())
    label_map = read_labels(Path(labels).expanduser())
    chosen = select(all_questions, ids=ids, level=level, limit=limit)
    unlabelled = [q.id for q in chosen if q.id not in label_map]
    if unlabelled:
        raise UsageProblem(
            f"no label for question(s) {', '.join(unlabelled[:20])} in {labels}; "
            f"check that the labels file belongs to these questions, or leave them out with --ids"
        )
    # Anything at the name passes here (a link too): the table is read when its question runs, without
    # following links and only as a regular file (``tools/files.attach``); a refused one fails that question.
    missing = sorted({q.file_name for q in chosen if not os.path.lexists(tables_dir / q.file_name)})
    if missing:
        raise UsageProblem(
            f"table(s) not found in {tables_dir}: {', '.join(missing[:20])}; check --tables, "
            f"or leave those questions out with --ids"
        )
    return Dataset(
        chosen, {q.id: label_map[q.id] for q in chosen}, tables_dir, skipped={"filtered out": len(all_questions) - len(chosen)}
    )
