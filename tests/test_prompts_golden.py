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
FILES = ["sales.csv (30 bytes); columns: region (object), price (int64)"]
TOOLS = [
    {"name": "python_coder", "description": "Runs Python.", "input": {"name": "task", "type": "string", "description": "a task"}}
]
STEPS = [
    {"goal": "Load", "tool": "python_coder", "success_criteria": "rows"},
    {"goal": "Plot", "tool": "python_coder", "success_criteria": "a chart"},
]

CASES = {
    "system": {"tools": TOOLS},
    "request": {"request": "What is the mean price?", "files": FILES},
    "classify": {},
    "chat": {},
    "react": {"tool_names": ["python_coder"], "in_step": False},
    "plan": {"max_steps": 8, "tool_names": ["python_coder"]},
    "replan": {"failed": {"index": 1, "goal": "Load", "summary": "file missing"}, "max_steps": 7},
    "step": {"index": 2, "total": 2, "steps": STEPS},
    "check_step": {"index": 1, "goal": "Load", "success_criteria": "rows"},
    "answer": {
        "note": "(The agent stopped after 8 steps without finishing; say what is still open.)",
        "answer_format": "Answer format: @mean_price[value], rounded to two decimals",
        "printed": "@mean_price[20.00]",
    },
    "code": {
        "task": "Print the first score",
        "variables": "Variables:\n- scores: list (EMPTY - length=0)",
        "review": "It does not print anything.",
        "constraints": "Constraints: use ddof=1; drop missing values.",
        "answer_format": "Answer format: @first[value] @n[count]",
        "names": ("first", "n"),
    },
    "verify": {"task": "Print the mean"},
    "execution": {
        "ok": False,
        "attempt": 2,
        "error_class": "index_error",
        "output": "Status: error\nIndexError: list index out of range\nVariables:\n- scores: list length=1",
    },
    "adequacy": {"task": "Print the mean"},
    "repair_json": {"reason": "missing key 'mode'", "schema": '{"type": "object"}'},
    "react_malformed": {"reason": "not JSON", "tool_names": ["python_coder", "web_search"]},
    "react_unknown": {"action": "'crystal_ball'", "tool_names": ["python_coder"]},
    "observation": {"tool": "python_coder", "text": "mean price: 20.0"},
    "fix": {
        "task": "Print the first score",
        "error_class": "index_error",
        "guidance": "Check lengths.",
        "rethink": True,
        "names": ("first",),
        "repeated": 0,
    },
    "fix-repeated": {
        "task": "Print the first score",
        "error_class": "index_error",
        "guidance": "Check lengths.",
        "rethink": True,
        "names": ("first",),
        "repeated": 2,
    },
    "approval": {"action": "skip", "attempt": 1, "code": "print(scores[0])"},
    "fetched": {"files": ["sales.csv (40 bytes); columns: region (object), amount (int64)"]},
}


def test_every_template_has_a_golden_case():
    names = {p.name.removesuffix(".md.j2") for p in PROMPTS_DIR.glob("*.md.j2")}
    assert names == {case.split("-")[0] for case in CASES}  # "fix-repeated": another case of fix.md.j2


@pytest.mark.parametrize("name", sorted(CASES))
def test_prompt_matches_golden(name):
    rendered = render_prompt(name.split("-")[0], now=NOW, **CASES[name])
    golden = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text(), f"prompt {name} changed; review and UPDATE_GOLDEN=1 if intended"


def test_missing_variables_are_refused():
    with pytest.raises(ValueError, match="prompt 'verify' needs a variable"):
        render_prompt("verify")
