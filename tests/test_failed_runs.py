"""A failed run is a failed run: its last attempt failed, so it ends "error" and says why; the coder never runs
the code of a failed attempt again; failed attempts are not cells unless asked for."""

from __future__ import annotations

from agent_helpers import coder_script, collect, of

from llm_agent_magic.cells import make_bundle
from llm_agent_magic.events import CellOutput, CodeCell, Error, RunFinished
from llm_agent_magic.magic.render import summary_text

FAILING = "print('about to divide')\n1 / 0"
WORKING = "print('half:', 1 / 2)"


def script(fix_reply: str, *, then: str | None = None) -> dict:
    """One python_coder call whose first cell fails; fixes answer ``fix_reply``, and ``then`` once told that
    the fix repeated a failed attempt."""
    base = coder_script(FAILING, "Done.")
    rules = [
        {"purpose": "fix", "match_last": "same code as attempt", "reply": f"```python\n{then or fix_reply}\n```"},
        {"purpose": "fix", "reply": f"```python\n{fix_reply}\n```"},
    ]
    return {"rules": rules + base["rules"]}


async def test_a_run_whose_last_attempt_failed_is_an_error_and_says_why(make_session):
    session, _ = make_session(script("print('still')\n[][1]"), max_execution_attempts=2)
    events = await collect(session, "Divide.")
    assert [o.failed for o in of(events, CellOutput)] == [True, True]
    assert events[-1].status == "error"
    (error,) = of(events, Error)
    assert error.kind == "IndexError" and error.message.startswith("list index out of range")
    bundle = make_bundle(events, include_failed=False)
    assert bundle["status"] == "error" and bundle["cells"] == []  # failed attempts are not cells by default
    assert summary_text(bundle, events) == (
        "llm-agent: 2 failed attempts not written as cells; run failed: IndexError: " + error.message
    )
    with_failed = make_bundle(events, include_failed=True)["cells"]
    assert [c["source"].split("\n")[0] for c in with_failed] == ["%%sandbox --skip"] * 2  # kept, never run again


async def test_a_fix_that_repeats_failed_code_is_not_run_again(make_session):
    session, server = make_session(script(FAILING, then=WORKING))
    events = await collect(session, "Divide.")
    assert [c.source for c in of(events, CodeCell)] == [FAILING, WORKING]  # the repeat never became a cell
    assert [o.status for o in of(events, CellOutput)] == ["error", "ok"]
    (repeated,) = [r for r in server.requests_for("fix") if "same code as attempt 1" in r.text]
    assert "rethink the approach" in repeated.body["messages"][-1]["content"]
    assert events[-1].status == "ok" and not of(events, Error)


async def test_a_model_that_only_repeats_failed_code_ends_the_coder_without_running_it(make_session):
    session, server = make_session(script(FAILING))
    events = await collect(session, "Divide.")
    assert len(of(events, CellOutput)) == 1  # executed once, not five times
    assert len(server.requests_for("fix")) == 3  # the fix, then asked twice to rethink
    assert events[-1].status == "error" and isinstance(events[-1], RunFinished)
    assert of(events, Error)[-1].kind == "ZeroDivisionError"
