"""The store marks runs still "running" from before a restart as interrupted, and leaves the others alone."""

from __future__ import annotations

import time

from llm_agent_magic.store import ConversationStore


def test_mark_interrupted_touches_only_running_runs_started_before(tmp_path):
    with ConversationStore(tmp_path / "store.sqlite") as store:
        store.create_session("a")
        store.create_session("b")
        cut, done = store.start_run("a", "cut off"), store.start_run("a", "done")
        store.finish_run(done, "ok")
        other = store.start_run("b", "other session")
        boundary = time.time() + 1
        assert store.mark_interrupted(boundary, ["a"]) == [cut]
        assert store.get_run(cut).status == "interrupted" and store.get_run(cut).finished_at is not None
        assert store.get_run(done).status == "ok" and store.get_run(other).status == "running"
        assert store.mark_interrupted(time.time() - 3600) == []  # started after: a run of this process
        assert store.mark_interrupted(boundary) == [other]
        assert store.mark_interrupted(boundary, []) == []
