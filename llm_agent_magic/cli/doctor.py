"""``llm-agent doctor``: the checks of ``agents/diagnostics.py``, as text for people or JSON for programs."""

from __future__ import annotations

import json

from ..agents.diagnostics import Diagnostic


def render(checks: list[Diagnostic]) -> str:
    failed = sum(c.status == "fail" for c in checks)
    summary = f"\n{failed} problem(s) to fix." if failed else "\nAll required checks passed."
    return "\n".join([*(str(c) for c in checks), summary])


def render_json(checks: list[Diagnostic]) -> str:
    return json.dumps([c.to_dict() for c in checks], indent=2)
