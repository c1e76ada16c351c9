"""Helpers for tests that run whole agent sessions."""

from __future__ import annotations


async def collect(session, request: str, **kwargs) -> list:
    """Every event of one run, in order."""
    return [event async for event in session.run(request, **kwargs)]


def of(events, cls) -> list:
    """The events of one type."""
    return [e for e in events if isinstance(e, cls)]


def coder_script(code: str, answer: str = "Done.") -> dict:
    """A scripted model for one ReAct run: one python_coder call that runs ``code``, then finish."""
    return {
        "rules": [
            {"purpose": "classify", "reply": {"mode": "react", "reason": "needs code"}},
            {
                "purpose": "react",
                "match": "Observation from python_coder",
                "reply": {"thought": "Done.", "action": "finish", "action_input": "see the output"},
            },
            {"purpose": "react", "reply": {"thought": "Run it.", "action": "python_coder", "action_input": "run the code"}},
            {"purpose": "code", "reply": f"```python\n{code}\n```"},
            {"purpose": "verify", "reply": {"answers_question": True, "issues": ""}},
            {"purpose": "answer", "reply": answer},
        ]
    }
