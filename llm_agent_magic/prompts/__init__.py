"""Prompts are template files in ``prompts/templates/``, rendered by one function that refuses undefined variables.

Also here: the JSON schemas of the model protocol (shared/DESIGN.md), and ``Transcript``: one run's
conversation, laid out so that consecutive calls share one long prefix a local model can cache.
"""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jinja2

from ..text import clip
from ..text import estimate_tokens as tokens_of
from ..volatile import now_text
from .transcript import Transcript, fit

__all__ = [
    "CLASSIFY_SCHEMA",
    "PLAN_SCHEMA",
    "REACT_SCHEMA",
    "VERIFY_SCHEMA",
    "PROMPTS_DIR",
    "Transcript",
    "clip",
    "fit",
    "prompt_sections",
    "react_schema",
    "render_prompt",
    "tokens_of",
]

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
REACT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "thought": {"type": "string"},
        "action": {"type": "string"},
        "action_input": {"type": "string"},
    },
    "required": ["thought", "action", "action_input"],
}


def react_schema(tool_names: list[str]) -> dict[str, Any]:
    """The ``react`` schema sent to the model: ``action`` is one of the tools offered, or ``finish``.

    Replies are still read with the looser ``REACT_SCHEMA``, so that a model that ignores the constraint and
    names an unknown action is told which ones exist (an observation) rather than that its reply is malformed.
    """
    actions = [*tool_names, "finish"]
    return {**REACT_SCHEMA, "properties": {**REACT_SCHEMA["properties"], "action": {"enum": actions}}}


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


@cache
def prompt_sections(name: str) -> dict[str, str]:
    """The ``## key`` sections of ``templates/<name>.md`` (prompt text that is data, such as error guidance)."""
    text = (PROMPTS_DIR / f"{name}.md").read_text(encoding="utf-8")
    sections: dict[str, str] = {}
    for block in text.split("\n## ")[1:]:
        key, _, body = block.partition("\n")
        sections[key.strip()] = body.strip()
    return sections


def render_prompt(name: str, **variables: Any) -> str:
    """Render ``templates/<name>.md.j2``; a variable the template uses but the caller did not give is an error.

    ``now`` (the current date and time) is filled in for the run's opening message unless given.
    """
    if name == "request":
        variables.setdefault("now", now_text())
    try:
        return _environment().get_template(f"{name}.md.j2").render(**variables).strip() + "\n"
    except jinja2.UndefinedError as exc:
        raise ValueError(f"prompt {name!r} needs a variable that was not given: {exc.message}") from None
