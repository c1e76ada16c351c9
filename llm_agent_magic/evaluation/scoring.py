"""DABench's closed-form scoring, as published with the benchmark, and its three metrics.

Answers are pulled out of the final answer with ``@name[value]`` (the shortest value up to the first ``]``
on the same line, anywhere in the text, code blocks included; a name given twice keeps its last value). A
sub-answer is right when its text equals the label's exactly, or both parse as numbers within 1e-6. A
missing sub-answer is wrong. Unlike the published script, which leaves out questions that got no
response at all, a run that errored or timed out counts here, as wrong on every sub-answer: otherwise a
model that crashes on the hard questions would look better.

Metrics (over the questions scored): ABQ, accuracy by question (every sub-answer right); PSAQ, the share
of right sub-answers of each question, averaged over questions; UASQ, right sub-answers over all
sub-answers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..linear_regex import linear
from .dataset import Label

# RE2 (a model writes the answer; ``@a[`` repeated on one line made ``re`` quadratic); ``[\pL\pN_]`` is ``re``'s
# Unicode ``\w``.
ANSWER = linear(r"@([\pL\pN_]+)\[(.*?)\]")
TOLERANCE = 1e-6


def extract(text: str) -> dict[str, str]:
    """``{name: value}`` for every ``@name[value]`` in ``text``; a later value of a name wins."""
    return {name: value for name, value in ANSWER.findall(text or "")}


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def is_equal(predicted: str | None, expected: str) -> bool:
    if predicted is None:
        return False
    if predicted == expected:
        return True
    a, b = _number(predicted), _number(expected)
    return a is not None and b is not None and abs(a - b) < TOLERANCE


@dataclass
class Score:
    """One question's score: per sub-answer, what was expected, what came back and whether it is right."""

    expected: dict[str, str]
    predicted: dict[str, str]
    correct: dict[str, bool]

    @property
    def all_correct(self) -> bool:
        return bool(self.correct) and all(self.correct.values())

    @property
    def share(self) -> float:
        return sum(self.correct.values()) / len(self.correct) if self.correct else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"expected": self.expected, "predicted": self.predicted, "correct": self.correct, "all_correct": self.all_correct}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Score:
        return cls(
            dict(data.get("expected", {})),
            dict(data.get("predicted", {})),
            {k: bool(v) for k, v in dict(data.get("correct", {})).items()},
        )


def score(answer: str, label: Label) -> Score:
    expected = dict(label.answers)
    predicted = extract(answer)
    return Score(expected, predicted, {name: is_equal(predicted.get(name), value) for name, value in expected.items()})


@dataclass
class Metrics:
    questions: int = 0
    sub_answers: int = 0
    abq: float = 0.0
    psaq: float = 0.0
    uasq: float = 0.0
    by_level: dict[str, Metrics] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "questions": self.questions,
            "sub_answers": self.sub_answers,
            "abq": round(self.abq, 4),
            "psaq": round(self.psaq, 4),
            "uasq": round(self.uasq, 4),
        }
        if self.by_level:
            out["by_level"] = {level: m.to_dict() for level, m in self.by_level.items()}
        return out


def _plain(scores: Sequence[Score]) -> Metrics:
    if not scores:
        return Metrics()
    subs = sum(len(s.correct) for s in scores)
    right = sum(sum(s.correct.values()) for s in scores)
    return Metrics(
        questions=len(scores),
        sub_answers=subs,
        abq=sum(s.all_correct for s in scores) / len(scores),
        psaq=sum(s.share for s in scores) / len(scores),
        uasq=right / subs if subs else 0.0,
    )


def metrics(scored: Iterable[tuple[str, Score]], levels: Sequence[str] = ("easy", "medium", "hard")) -> Metrics:
    """ABQ, PSAQ and UASQ over ``(level, score)`` pairs, and the same for each level that occurs."""
    pairs = list(scored)
    overall = _plain([s for _, s in pairs])
    seen = [lv for lv in levels if any(level == lv for level, _ in pairs)]
    seen += sorted({level for level, _ in pairs} - set(seen))
    overall.by_level = {lv: _plain([s for level, s in pairs if level == lv]) for lv in seen}
    return overall
