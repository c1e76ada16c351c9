"""Every prompt template rendered with fixed inputs, compared with its golden file.

A change to a prompt shows up here as a diff to review. After an intended change:
UPDATE_GOLDEN=1 pytest tests/test_prompts_golden.py
"""

import os
from pathlib import Path

import pytest

from llm_agent_magic.prompts import PROMPTS_DIR, render_prompt

GOLDEN = Path(__file__).parent / "golden" / "prompts"
NOW = "2026-11-21 09:00 UTC (Saturday)"
ATTEMPTS = [
    {"attempt": 1, "outcome": "failed: index_error", "code": "scores = []\nprint(scores[0])", "error": "IndexError: list index out of range"},
    {"attempt": 2, "outcome": "failed: index_error", "code": "print(scores[3])", "error": "IndexError: list index out of range"},
]
FILES = ["sales.csv (30 bytes); columns: region (object), price (int64)"]
TOOLS = [{"name": "python_coder", "description": "Runs Python. Input: a task."}]
STEPS = [{"goal": "Load", "tool": "python_coder", "success_criteria": "rows"}, {"goal": "Plot", "tool": "python_coder", "success_criteria": "a chart"}]

CASES = {
    "classify": {},
    "chat_system": {},
    "react_system": {"tools": TOOLS, "tool_names": ["python_coder"], "files": FILES, "plan_context": "You are on step 1."},
    "plan": {"max_steps": 8, "tool_names": ["python_coder"], "files": ["sales.csv"]},
    "replan": {
        "request": "Report on sales",
        "done": [{"goal": "Load", "status": "failed", "summary": "file missing"}],
        "failed": {"goal": "Load", "summary": "file missing"},
        "max_steps": 7,
    },
    "step_context": {"index": 2, "total": 2, "request": "Report", "steps": STEPS, "done": [{"index": 1, "summary": "2 rows"}]},
    "check_step": {"goal": "Load", "success_criteria": "rows", "result": "2 rows"},
    "answer": {"request": "Mean price?", "work": "[python_coder] mean\nmean price: 20.0"},
    "code": {
        "task": "Print the first score", "request": "What is the first score?", "plan_context": "",
        "history": [{"role": "user", "content": "hi"}], "files": FILES, "variables": "Variables:\n- scores: list (EMPTY - length=0)",
        "attempts": ATTEMPTS[:1], "review": "It does not print anything.",
    },
    "verify": {"task": "Print the mean", "variables": "Variables: (none)", "code": "print(1)"},
    "fix": {
        "task": "Print the first score", "request": "What is the first score?", "plan_context": "", "files": FILES,
        "attempts": ATTEMPTS, "error_class": "index_error", "guidance": "Check lengths.",
        "variables": "Variables:\n- scores: list length=1", "rethink": True,
    },
    "adequacy": {"task": "Print the mean", "code": "print(df.shape)", "output": "(2, 2)"},
}


def test_every_template_has_a_golden_case():
    names = {p.name.removesuffix(".md.j2") for p in PROMPTS_DIR.glob("*.md.j2")}
    assert names == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_prompt_matches_golden(name):
    rendered = render_prompt(name, now=NOW, **CASES[name])
    golden = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text(), f"prompt {name} changed; review and UPDATE_GOLDEN=1 if intended"


def test_missing_variables_are_refused():
    with pytest.raises(ValueError, match="prompt 'verify' needs a variable"):
        render_prompt("verify", task="t", code="c")
