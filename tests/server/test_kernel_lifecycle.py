"""How long the server's sandbox kernels and sessions live: none for a run that runs no code, none for a GET,
at most ``max_live_kernels``, stopped when idle and restored from snapshots (DESIGN.md, "Lifecycle")."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from conftest import body, sid

from llm_agent_magic.config import PathsConfig
from llm_agent_magic.sandbox import SessionPaths
from llm_agent_magic.sandbox.hold import RunLock

pytestmark = pytest.mark.slow  # real sandbox kernels
CHAT = {"rules": [{"purpose": "answer", "reply": "A p-value is a probability."}]}
#: Code that leaves ``answer`` in the sandbox; asked to "add one", code that needs it to be there still.
CODE = {
    "rules": [
        {
            "purpose": "react",
            "match_last": "Observation from python_coder",
            "reply": {"thought": "done", "action": "finish", "action_input": "done"},
        },
        {"purpose": "react", "reply": {"thought": "compute", "action": "python_coder", "action_input": "compute"}},
        {"purpose": "code", "match": "add one", "reply": "```python\nprint(answer + 1)\n```"},
        {"purpose": "code", "reply": "```python\nanswer = 6 * 7\nprint(answer)\n```"},
        {"purpose": "verify", "reply": {"answers_question": True, "issues": ""}},
        {"purpose": "answer", "reply": "Done."},
    ]
}


@pytest.fixture
def sandbox_settings() -> dict:
    """SandboxConfig settings of the test's server (tests parametrize it)."""
    return {}


@pytest.fixture
def jp_server_config(jp_server_config, sandbox_settings):
    jp_server_config["SandboxConfig"] = {**jp_server_config["SandboxConfig"], **sandbox_settings}
    return jp_server_config


@pytest.fixture
def manager(jp_serverapp):
    return jp_serverapp.web_app.settings["llm_agent_manager"]


def kernel_processes(data_root: Path) -> set[str]:
    """The session folders named on the command line of a running process: the sandbox kernels (and bubblewrap
    around them) of this data root."""
    marker = str(data_root / "sessions") + os.sep
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                args = fh.read().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        found.update(a[len(marker) :].split(os.sep)[0] for a in args if a.startswith(marker))
    return found


async def eventually(check, what: str, limit: float = 90.0) -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, f"still not {what} after {limit:g} s"
        await asyncio.sleep(0.1)


async def complete(api, text: str, session_id: str | None = None, agent_type: str = "react"):
    request = {"model": "llm-agent", "messages": [{"role": "user", "content": text}], "agent_type": agent_type}
    if session_id:
        request["session_id"] = session_id
    return await api("/llm-agent/v1/chat/completions", method="POST", body=request)


def outputs(response) -> str:
    return "".join(o.get("text", "") for cell in body(response)["llm_agent"]["cells"] for o in cell["outputs"])


async def test_chat_completions_without_a_session_start_no_kernel(api, ollama, manager, data_root):
    ollama.load(CHAT)
    ids = set()
    for _ in range(12):
        response = await complete(api, "What is a p-value?", agent_type="chat")
        assert response.code == 200 and "probability" in body(response)["choices"][0]["message"]["content"]
        ids.add(body(response)["session_id"])
    assert len(ids) == 12
    assert manager.live_kernels() == [] and kernel_processes(data_root) == set()


@pytest.mark.parametrize("sandbox_settings", [{"max_live_kernels": 2}])
async def test_completions_that_run_code_keep_at_most_max_live_kernels(api, ollama, manager, data_root):
    ollama.load(CODE)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, len(manager.live_kernels()))
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    try:
        # Three at once: the third to need a kernel waits until one of the others is idle, then stops it.
        responses = await asyncio.gather(*(complete(api, "compute the answer", name) for name in "abc"))
        assert [r.code for r in responses] == [200] * 3 and all("42" in outputs(r) for r in responses)
        live = set(manager.live_kernels())
        assert len(live) == 2
        await eventually(lambda: kernel_processes(data_root) == live, "down to the two live kernels")
        (stopped,) = {"a", "b", "c"} - live
        for name in sorted(live):  # used last: the stopped one's next run stops the other one
            assert (await complete(api, "compute the answer", name)).code == 200
        again = await complete(api, "add one to the answer", stopped)  # its variables come back from snapshots
        assert again.code == 200 and "43" in outputs(again)
        assert set(manager.live_kernels()) == {max(live), stopped}  # min(live) was the least recently used
        await eventually(lambda: kernel_processes(data_root) == {max(live), stopped}, "the two live kernels")
    finally:
        watcher.cancel()
    assert peak == 2


async def test_get_variables_of_an_unknown_session_is_404_and_creates_nothing(api, manager, data_root):
    for path in ("/variables", "/variables/answer"):
        response = await api(f"/llm-agent/api/sessions/{sid('/no/such.ipynb')}{path}")
        assert response.code == 404, path
        if path == "/variables":
            assert "There is no session '/no/such.ipynb'" in body(response)["message"]
    assert not (data_root / "sessions").exists()
    assert body(await api("/llm-agent/api/sessions"))["sessions"] == []
    assert manager.sessions == {} and manager.live_kernels() == [] and kernel_processes(data_root) == set()


async def test_variables_of_a_session_without_a_kernel_come_from_its_snapshots(api, ollama, manager, data_root):
    ollama.load(CODE)
    assert (await complete(api, "compute the answer", "vars")).code == 200
    assert manager.live_kernels() == ["vars"]
    await manager.close("vars")  # what an idle stop or a restarted server leaves: snapshots, no kernel
    await eventually(lambda: kernel_processes(data_root) == set(), "without kernel processes")

    response = await api("/llm-agent/api/sessions/vars/variables")
    assert response.code == 200
    rows = {row["name"]: row for row in body(response)["variables"]}
    assert rows["answer"]["type"] == "int" and rows["answer"]["snapshot"].startswith("json (snapshot")
    preview = body(await api("/llm-agent/api/sessions/vars/variables/answer"))
    assert preview["value"] == 42
    assert manager.live_kernels() == [] and kernel_processes(data_root) == set()


@pytest.mark.parametrize("sandbox_settings", [{"idle_timeout": 1.0}])
async def test_an_idle_kernel_stops_unless_held_and_the_next_run_restores_its_variables(api, ollama, manager, data_root):
    ollama.load(CODE)
    assert (await complete(api, "compute the answer", "idle")).code == 200
    # A run of another process holds the session: its kernel is not idle, whatever the clock says.
    held = RunLock(SessionPaths.for_session("idle", PathsConfig(data_root=str(data_root))))
    assert held.try_acquire("batch")
    try:
        await asyncio.sleep(3.0)  # a dozen sweeps past the idle timeout
        assert manager.live_kernels() == ["idle"] and kernel_processes(data_root) == {"idle"}
    finally:
        held.release()
    await eventually(lambda: manager.live_kernels() == [] and kernel_processes(data_root) == set(), "stopped")
    await eventually(lambda: manager.sessions == {}, "closed (an idle session without a kernel)")

    again = await complete(api, "add one to the answer", "idle")
    assert again.code == 200 and "43" in outputs(again)
    history = body(await api("/llm-agent/api/sessions/idle/messages"))["messages"]
    assert [m["content"] for m in history if m["role"] == "user"] == ["compute the answer", "add one to the answer"]


@pytest.mark.parametrize("sandbox_settings", [{"max_live_kernels": 1, "session_wait_timeout": 1.0}])
async def test_when_every_kernel_is_in_use_a_run_that_needs_one_is_told_so(api, ollama, manager, data_root):
    ollama.load(CODE)
    assert (await complete(api, "compute the answer", "first")).code == 200
    held = RunLock(SessionPaths.for_session("first", PathsConfig(data_root=str(data_root))))
    assert held.try_acquire("batch")  # another process's run is using the only kernel
    try:
        refused = await complete(api, "compute the answer", "second")
    finally:
        held.release()
    assert refused.code == 502
    assert "all 1 that this process may keep running (SandboxConfig.max_live_kernels)" in body(refused)["error"]["message"]
    assert manager.live_kernels() == ["first"] and kernel_processes(data_root) == {"first"}
