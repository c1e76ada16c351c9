"""What one question's run leaves in the output folder, and reading it back for ``--resume`` and the summary.

``<out>/<model>/<question id>/`` holds ``result.json`` (status, score, cost; written last, so its presence
means the question is finished), ``answer.md``, ``run.ipynb`` (the question, the generated cells with their
outputs, the answer and the score), ``events.jsonl`` (the run's events), ``calls.jsonl`` (the model calls)
and, when recording, ``cassette.jsonl``. Everything is written atomically.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import atomic
from ..cells import cells_from_events
from ..events import Event, Token
from ..safe_text import literal_markdown
from .dataset import Question
from .scoring import Score

RESULT = "result.json"
STATUSES = ("ok", "error", "timeout")


def slug(text: str) -> str:
    """A folder name for a model or question id (``qwen3:8b`` -> ``qwen3_8b``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "_"


@dataclass
class Cost:
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_seconds: float = 0.0


@dataclass
class QuestionResult:
    id: str
    model: str
    level: str
    file_name: str
    status: str
    answer: str = ""
    error: str = ""
    score: Score | None = None
    cost: Cost = field(default_factory=Cost)
    wall_seconds: float = 0.0
    #: Seconds spent opening the session (the sandbox starting), running it, closing it, and in the harness itself.
    timing: dict[str, float] = field(default_factory=dict)
    run_id: str = ""
    cells: int = 0
    #: The ``--variant`` it ran under; "" without variants.
    variant: str = ""

    @property
    def all_correct(self) -> bool:
        return self.score is not None and self.score.all_correct

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["score"] = self.score.to_dict() if self.score is not None else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuestionResult:
        if data.get("status") not in STATUSES:
            raise ValueError(f"status {data.get('status')!r} is not one of {', '.join(STATUSES)}")
        score = data.get("score")
        return cls(
            id=str(data["id"]),
            model=str(data["model"]),
            level=str(data.get("level", "unknown")),
            file_name=str(data.get("file_name", "")),
            status=str(data["status"]),
            answer=str(data.get("answer", "")),
            error=str(data.get("error", "")),
            score=Score.from_dict(score) if isinstance(score, dict) else None,
            cost=Cost(**{k: v for k, v in dict(data.get("cost", {})).items() if k in Cost.__dataclass_fields__}),
            wall_seconds=float(data.get("wall_seconds", 0.0)),
            timing={str(k): float(v) for k, v in dict(data.get("timing", {})).items()},
            run_id=str(data.get("run_id", "")),
            cells=int(data.get("cells", 0)),
            variant=str(data.get("variant", "")),
        )


def question_dir(out: Path, model: str, question_id: str) -> Path:
    return out / slug(model) / slug(question_id)


def read_result(folder: Path) -> QuestionResult | None:
    """The finished result in ``folder``; None when there is none or it is unreadable (the question runs again)."""
    try:
        return QuestionResult.from_dict(json.loads((folder / RESULT).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1, default=str) + "\n"


def write_run(folder: Path, question: Question, result: QuestionResult, events: list[Event]) -> None:
    """Everything of one finished run but ``result.json`` (``write_result``, last: a crash before it means
    'not finished')."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic.write_text(
        folder / "events.jsonl",
        "".join(json.dumps(e.to_dict(), ensure_ascii=False, default=str) + "\n" for e in events if not isinstance(e, Token)),
    )
    atomic.write_text(folder / "answer.md", result.answer + ("\n" if result.answer else ""))
    cells = cells_from_events(events, model=result.model)
    result.cells = len(cells)
    atomic.write_text(folder / "run.ipynb", _json(notebook(question, result, cells)))


def write_result(folder: Path, result: QuestionResult) -> None:
    atomic.write_text(folder / RESULT, _json(result.to_dict()))


def notebook(question: Question, result: QuestionResult, cells: list[dict[str, Any]]) -> dict[str, Any]:
    """The executed notebook of one run, as nbformat 4 JSON: never signed, so its outputs open untrusted.

    The question (the dataset's), the answer and the values the model gave (the model's) go into markdown
    cells only as ``literal_markdown``: whoever opens or exports the notebook sees them, never their markup.
    """
    ids = iter(range(1, 10**9))

    def markdown(text: str) -> dict[str, Any]:
        return {"cell_type": "markdown", "id": f"eval-{next(ids)}", "metadata": {}, "source": text}

    def inline(text: Any) -> str:
        return literal_markdown(str(text), block=False)

    head = f"# DABench question {inline(question.id)} ({inline(question.level)})\n\n{literal_markdown(question.question)}\n\n"
    if question.constraints.strip():
        head += f"**Constraints:** {inline(question.constraints)}\n\n"
    head += (
        f"**Format:** {inline(question.format)}\n\n**Table:** {inline(question.file_name)} · **model:** {inline(result.model)}"
    )
    body = [markdown(head)]
    for cell in cells:
        body.append({**cell, "id": f"eval-{next(ids)}"})
    verdict = f"**Status:** {inline(result.status)}" + (f" ({inline(result.error)})" if result.error else "")
    if result.score is not None:
        rows = "\n".join(
            f"| {inline(name)} | {inline(expected)} | {inline(result.score.predicted.get(name, '(missing)'))} | "
            f"{'right' if result.score.correct.get(name) else 'wrong'} |"
            for name, expected in result.score.expected.items()
        )
        verdict += f"\n\n| answer | expected | given | |\n| --- | --- | --- | --- |\n{rows}"
    body += [markdown("## Answer\n\n" + literal_markdown(result.answer or "(no answer)")), markdown(verdict)]
    return {
        "cells": body,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "llm_agent": {
                "eval": {
                    "question": question.id,
                    "model": result.model,
                    "status": result.status,
                    "all_correct": result.all_correct,
                }
            },
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def move_call_log(logs: Path, folder: Path) -> None:
    """The session's call log, kept beside the result (whatever ``LLMConfig.log_format`` named it)."""
    with contextlib.suppress(OSError):
        for path in sorted(logs.iterdir()):
            if path.is_file() and not path.is_symlink():
                target = "calls.jsonl" if path.suffix == ".jsonl" else f"calls{path.suffix or '.log'}"
                path.replace(folder / target)
