"""The session service's runs (``agents/runs.py``): one owner of which run each session is running, its numbered
events, stop and approval addressed by session and run."""

from __future__ import annotations

import contextlib

import pytest
from traitlets.config import Config

from llm_agent_magic.agents.manager import SessionManager
from llm_agent_magic.agents.session import AnswerParts
from llm_agent_magic.events import Answer, RunFinished, Token
from llm_agent_magic.exceptions import NotWaitingForApproval, RunNotRunning, RunOfAnotherSession, SessionBusy
from llm_agent_magic.run_requests import ApprovalReply, RunRequest
from llm_agent_magic.testing.fake_ollama import FakeOllama

TEN = "one two three four five six seven eight nine ten"


def slow_answer(delay_ms: int) -> dict:
    return {"rules": [{"purpose": "answer", "reply": TEN, "token_delay_ms": delay_ms}]}


@pytest.fixture
async def manager(tmp_path):
    with FakeOllama(slow_answer(100)) as server:
        explicit = Config({"LLMConfig": {"host": server.url}, "PathsConfig": {"data_root": str(tmp_path / "data")}})
        manager = SessionManager(explicit=lambda: explicit)
        try:
            yield manager
        finally:
            await manager.close_all()


async def first_token(live) -> None:
    async for event in live.follow():
        if event["type"] == "token":
            return


async def test_a_message_for_one_session_never_reaches_another_sessions_run(manager):
    runs = manager.runs
    a = await runs.start("a", RunRequest("Count slowly.", mode="chat"))
    b = await runs.start("b", RunRequest("Count too.", mode="chat"))
    await first_token(a)
    assert set(runs.running()) == {a.run_id, b.run_id} and runs.current("a") is a

    with pytest.raises(RunOfAnotherSession, match=f"Run {a.run_id!r} belongs to another session; stop it from"):
        runs.stop("b", a.run_id)
    with pytest.raises(RunOfAnotherSession, match="answer it from that session"):
        runs.approve("b", ApprovalReply(a.run_id, "cell", "run"))
    with pytest.raises(RunOfAnotherSession, match="follow it from that session"):
        await runs.events_after(a.run_id, 0, session_id="b")
    with pytest.raises(SessionBusy, match=f"Session 'a' is already running {a.run_id}"):
        await runs.start("a", RunRequest("And another thing.", mode="chat"))
    with pytest.raises(NotWaitingForApproval, match="not waiting for an approval of cell 'cell'"):
        runs.approve("a", ApprovalReply(a.run_id, "cell", "run"))

    assert runs.stop("b") == b.run_id  # its own run, named by its session alone
    b_events = [e async for e in b.follow_events()]
    assert isinstance(b_events[-1], RunFinished) and b_events[-1].status == "cancelled"

    a_events = [e async for e in a.follow_events()]  # run A went on to its end
    assert isinstance(a_events[-1], RunFinished) and a_events[-1].status == "ok"
    assert [e for e in a_events if isinstance(e, Answer)][0].markdown == TEN
    assert [e.seq for e in a_events] == list(range(1, len(a_events) + 1))
    await a.stored()
    assert runs.current("a") is None and runs.running() == []
    with pytest.raises(RunNotRunning, match="nothing to stop"):
        runs.stop("a", a.run_id)
    with pytest.raises(RunNotRunning, match="No run of this session is running in this process"):
        runs.stop("a")


async def test_a_run_stopped_before_its_work_began_still_ends_cancelled_and_stored(manager):
    live = await manager.runs.start("early", RunRequest("Count.", mode="chat"))
    assert manager.runs.stop("early", live.run_id) == live.run_id  # in the same turn of the loop as its start
    events = [e async for e in live.follow_events()]
    assert [e.type for e in events] == ["run_started", "run_finished"] and events[-1].status == "cancelled"
    await live.stored()
    found = await manager.runs.events_after(live.run_id)
    assert found.status == "cancelled" and [e["seq"] for e in found.events] == [1, 2]


async def test_a_caller_that_stops_listening_stops_the_run(manager):
    got = []
    async with contextlib.aclosing(manager.runs.run("listener", RunRequest("Count.", mode="chat"))) as events:
        async for event in events:
            got.append(event)
            if isinstance(event, Token):
                break
    live = manager.runs.find(got[0].run_id)
    assert live is not None and live.done and live.status == "cancelled"


def test_each_stored_part_of_an_answer_is_numbered_as_the_last_token_it_holds_whole():
    parts = AnswerParts()
    parts.add("The", 3)
    parts.add(" key", 4)
    parts.add(" is sk-", 5)
    assert parts.take(final=False) == ("The key is ", 4)  # "is " ends inside token 5: the part holds 3 and 4 whole
    parts.add("abc", 6)
    assert parts.take(final=False) is None  # "sk-abc" may go on: nothing to store yet
    parts.add("def and", 7)
    assert parts.take(final=False) == ("sk-abcdef ", 6)  # the rest of 5, all of 6, and part of 7
    parts.add(" more", 8)
    assert parts.take(final=False) == ("and ", 7)
    parts.add(" it", 9)
    assert parts.take(final=False) == ("more ", 8)
    parts.add("s own", 10)
    assert parts.take(final=True) == ("its own", 10)  # the tokens ended: all of it
    assert parts.take(final=True) is None and parts.text == ""
    parts.add("a b", 11)  # one token with a space inside: a part up to that space would hold no token whole
    assert parts.take(final=False) is None
    parts.add("c", 12)
    assert parts.take(final=True) == ("a bc", 12)
