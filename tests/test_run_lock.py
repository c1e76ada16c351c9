"""The session's run lock in one process (``sandbox/hold.py``): exclusion, whom a waiter is told it waits for,
the timeout, and a label that is believed only while its lock is held by the live process that wrote it.
Across processes (a killed holder, a magic and a server): ``tests/server/test_shared_session.py``."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from llm_agent_magic.config import PathsConfig
from llm_agent_magic.exceptions import SessionBusy
from llm_agent_magic.sandbox.hold import RunLock, lock_taken, read_holder
from llm_agent_magic.sandbox.paths import SessionPaths
from llm_agent_magic.sandbox.state import process_start_time


@pytest.fixture
def paths(tmp_path) -> SessionPaths:
    return SessionPaths.for_session("nb/shared.ipynb", PathsConfig(data_root=str(tmp_path / "root")))


async def test_two_locks_of_one_session_exclude_each_other_and_a_waiter_is_told_whom_it_waits_for(paths):
    assert not lock_taken(paths) and not paths.kernel.exists()  # asking creates nothing
    first, second = RunLock(paths), RunLock(paths)
    assert first.try_acquire("panel")
    assert not first.try_acquire("panel")  # not re-entrant: a second task of the same session waits too
    holder = read_holder(paths)
    assert holder is not None and holder.pid == os.getpid() and holder.front_end == "panel"
    assert holder.describe().startswith(f"a run started from the side panel (pid {os.getpid()}, since ")
    assert lock_taken(paths) and not lock_taken(paths, by_others_only=True)

    told = []
    waiter = asyncio.create_task(second.acquire("magic", 30, on_wait=told.append))
    await asyncio.sleep(0.3)
    assert not waiter.done() and told == [holder]  # told once, not at every poll
    first.release()
    await asyncio.wait_for(waiter, 10)
    assert read_holder(paths).front_end == "magic"
    second.release()
    assert not paths.holder_file.exists() and not lock_taken(paths)


async def test_a_waiter_gives_up_after_the_timeout_naming_the_holder(paths):
    holder = RunLock(paths)
    async with holder.hold("batch", 0, task="a reset"):
        with pytest.raises(SessionBusy) as info:
            await RunLock(paths).acquire("panel", 0.2)
    message = str(info.value)
    assert "Session 'nb/shared.ipynb' is busy: a reset from llm-agent run (pid " in message
    assert "after waiting 0.2 s" in message and "session_wait_timeout" in message
    assert not holder.held and not lock_taken(paths)


async def test_a_label_without_its_lock_or_of_another_process_is_not_believed(paths):
    paths.ensure()
    # A label a dead process left, and one whose pid is alive but is another process (its start time differs).
    for pid, start in ((2**22 + 7, "123"), (os.getpid(), "1")):
        paths.holder_file.write_text(json.dumps({"pid": pid, "pid_start": start, "since": 1.0, "front_end": "magic"}))
        assert read_holder(paths) is None
        lock = RunLock(paths)
        assert lock.try_acquire("panel")  # a stale label never blocks
        assert read_holder(paths).front_end == "panel"
        lock.release()
    paths.holder_file.write_text("{not json")
    assert read_holder(paths) is None
    paths.holder_file.write_text(json.dumps({"pid": os.getpid(), "pid_start": process_start_time(os.getpid()), "since": "soon"}))
    assert read_holder(paths) is None
