"""Prompts are template files in ``prompts/templates/``, rendered by one function that refuses undefined variables.

Also here: the JSON schemas of the model protocol (shared/DESIGN.md), and fitting a
conversation into the context window, oldest first, never the system prompt.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from ..llm.client import CHARS_PER_TOKEN
from ..volatile import now_text

PROMPTS_DIR = Path(__file__).parent / "templates"

CLASSIFY_SCHEMA = {
    "type": "object",
    "properties": {"mode": {"enum": ["chat", "react", "plan_execute"]}, "reason": {"type": "string"}},
    "required": ["mode", "reason"],
}
PLAN_SCHEMA = {
    "type": "object",
    "properties": {
        "steps": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "goal": {"type": "string"},
                    "tool": {"type": "string"},
                    "success_criteria": {"type": "string"},
                },
                "required": ["goal"],
            },
        }
    },
    "required": ["steps"],
}
REACT_SCHEMA = {
    "type": "object",
    "properties": {
        "thought": {"type": "string"},
        "action": {"type": "string"},
        "action_input": {"type": "string"},
    },
    "required": ["thought", "action", "action_input"],
}
VERIFY_SCHEMA = {
    "type": "object",
    "properties": {"answers_question": {"type": "boolean"}, "issues": {"type": "string"}},
    "required": ["answers_question"],
}


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(PROMPTS_DIR)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_prompt(name: str, **variables: Any) -> str:
    """Render ``templates/<name>.md.j2``; a variable the template uses but the caller did not give is an error.

    ``now`` (the current date and time) is filled in unless given: every prompt may want it.
    """
    variables.setdefault("now", now_text())
    try:
        return _environment().get_template(f"{name}.md.j2").render(**variables).strip() + "\n"
    except jinja2.UndefinedError as exc:
        raise ValueError(f"prompt {name!r} needs a variable that was not given: {exc.message}") from None


def tokens_of(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN) + 4


def fit_messages(messages: list[dict[str, Any]], num_ctx: int, reserve: int = 2048) -> list[dict[str, Any]]:
    """Drop the oldest non-system messages until the prompt fits ``num_ctx - reserve`` tokens.

    The system prompt and the last message (the current request or observation) always stay;
    if even they do not fit, the last message is cut in the middle, keeping its start and end.
    """
    budget = max(256, num_ctx - reserve)
    system = [m for m in messages[:1] if m.get("role") == "system"]
    rest = messages[len(system) :]
    if not rest:
        return list(messages)
    last, older = rest[-1], rest[:-1]
    used = sum(tokens_of(str(m.get("content", ""))) for m in [*system, last])
    kept: list[dict[str, Any]] = []
    for m in reversed(older):
        cost = tokens_of(str(m.get("content", "")))
        if used + cost > budget:
            break
        kept.append(m)
        used += cost
    kept.reverse()
    if used > budget:
        room = max(200, int((budget - (used - tokens_of(str(last.get("content", ""))))) * CHARS_PER_TOKEN))
        last = {**last, "content": clip(str(last.get("content", "")), room)}
    return [*system, *kept, last]


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, keeping the start and the end (where errors and results are)."""
    if len(text) <= limit:
        return text
    head = int(limit * 0.6)
    tail = max(0, limit - head - 80)
    cut = len(text) - head - tail
    return f"{text[:head]}\n... [{cut} characters cut; the whole output is kept on disk] ...\n{text[-tail:] if tail else ''}"
