"""A ``%%agent`` run in another process and a server run on the same session, serialised by the session's run
lock (issue 11, item 3): the server's run waits and says for whom, gives up after the wait allowed, then runs
in the very kernel the magic's process launched. A lock left by a process killed with SIGKILL is recovered."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agent_helpers import coder_script
from cli_helpers import OUR_ENV
from conftest import receive, scenario

from llm_agent_magic.config import PathsConfig
from llm_agent_magic.sandbox.paths import SessionPaths
from llm_agent_magic.store import ConversationStore
from llm_agent_magic.testing.fake_ollama import FakeOllama

pytestmark = pytest.mark.slow  # real processes and sandbox kernels
SESSION = "/home/me/work/shared.ipynb"
WAIT = 8.0  # the server's SandboxConfig.session_wait_timeout here

# The magic's cell makes an object no snapshot can hold (only its live kernel has it), says it started, then
# keeps the kernel busy until the test lets it go.
HOLD_CODE = (
    "import os, time\n"
    "class Box:\n    pass\n"
    "box = Box()\nbox.value = 42\n"
    "open('started', 'w').write('1')\n"
    "for _ in range(2400):\n"
    "    if os.path.exists('release'):\n"
    "        break\n"
    "    time.sleep(0.05)\n"
    "print('magic done')"
)
SEEN_CODE = "print('seen', box.value)"
# A real IPython shell in its own process: %%agent, then it stays until the test says quit.
MAGIC = """
import os, sys, time
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "llm_agent_magic")
ip.run_cell_magic("agent", sys.argv[1], "Hold the session")
print("MAGIC-CELL-DONE", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
"""
# Takes the session's run lock as `llm-agent run` would, says so, and sleeps until killed.
LOCKER = """
import asyncio, sys, time
from llm_agent_magic.config import PathsConfig
from llm_agent_magic.sandbox.hold import RunLock
from llm_agent_magic.sandbox.paths import SessionPaths
lock = RunLock(SessionPaths.for_session(sys.argv[1], PathsConfig(data_root=sys.argv[2])))
asyncio.run(lock.acquire("batch", 0))
print("LOCKED", flush=True)
time.sleep(600)
"""


@pytest.fixture
def jp_server_config(jp_server_config):
    jp_server_config["SandboxConfig"]["session_wait_timeout"] = WAIT
    return jp_server_config


def session_paths(data_root: Path) -> SessionPaths:
    return SessionPaths.for_session(SESSION, PathsConfig(data_root=str(data_root)))


def child_env(data_root: Path, host: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OUR_ENV}
    env.update(OLLAMA_HOST=host, LLM_AGENT_DATA_ROOT=str(data_root))
    return env


def wait_for(path: Path, proc: subprocess.Popen, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the other process ended before {what}: {proc.communicate()[1][-3000:]}")
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def outputs_text(events: list[dict]) -> str:
    return "".join(o.get("text", "") for e in events if e["type"] == "cell_output" for o in e["outputs"])


async def test_a_server_run_waits_for_a_magic_run_of_another_process_then_uses_its_kernel(ws, ollama, data_root, tmp_path):
    paths = session_paths(data_root)
    quit_file = tmp_path / "quit"
    with FakeOllama(coder_script(HOLD_CODE, "held")) as magic_model:
        magic = subprocess.Popen(  # noqa: ASYNC220  # started, not waited for
            [sys.executable, "-c", MAGIC, f"--mode react --session {shlex.quote(SESSION)}", str(quit_file)],
            cwd=tmp_path,
            env=child_env(data_root, magic_model.url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(paths.workspace / "started", magic, "its cell started")
            ollama.load(coder_script(SEEN_CODE, "seen"))
            conn = await ws(SESSION)

            # 1. The magic's run keeps the session longer than the server waits: a clear error naming it.
            conn.write_message(json.dumps({"type": "run", "request": "Use the box", "mode": "react"}))
            gave_up = await receive(conn)
            assert [e["type"] for e in gave_up] == ["run_started", "waiting", "error", "run_finished"], gave_up
            waiting, error = gave_up[1], gave_up[2]
            assert waiting["holder"].startswith(f"a run started from %%agent in a notebook (pid {magic.pid}, since ")
            assert waiting["front_end"] == "magic" and waiting["pid"] == magic.pid and waiting["timeout"] == WAIT
            assert error["kind"] == "SessionBusy" and gave_up[-1]["status"] == "error"
            assert f"%%agent in a notebook (pid {magic.pid}" in error["message"]
            assert f"after waiting {WAIT:g} s" in error["message"] and "session_wait_timeout" in error["message"]
            assert not ollama.requests_for("code")  # nothing ran meanwhile

            # 2. Again; this time the magic's run ends while the server's waits.
            conn.write_message(json.dumps({"type": "run", "request": "Use the box", "mode": "react"}))
            head = await receive(conn, until="waiting")
            assert [e["type"] for e in head] == ["run_started", "waiting"]
            assert not ollama.requests_for("code")
            (paths.workspace / "release").write_text("go")
            rest = await receive(conn)
            assert rest[-1]["status"] == "ok", rest
            # The object exists only in the magic's live kernel: the server's run used that very kernel.
            assert outputs_text(rest) == "seen 42\n", rest

            quit_file.write_text("1")
            out, err = magic.communicate(timeout=120)
            assert magic.returncode == 0, err[-3000:]
            # The magic's own run went to its end, undisturbed.
            assert "llm-agent: 1 generated cell; run ok\nMAGIC-CELL-DONE" in out, out[-3000:]
        finally:
            quit_file.write_text("1")
            magic.kill()
            magic.wait()


async def test_a_lock_left_by_a_killed_process_is_recovered(ws, ollama, data_root, jp_serverapp, tmp_path):
    manager = jp_serverapp.web_app.settings["llm_agent_manager"]
    paths = session_paths(data_root)
    with ConversationStore.from_config(PathsConfig(data_root=str(data_root))) as store:
        store.ensure_session(SESSION)
        cut_off = store.start_run(SESSION, "a run of the process that will be killed")
    locker = subprocess.Popen(  # noqa: ASYNC220  # started, not waited for
        [sys.executable, "-c", LOCKER, SESSION, str(data_root)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "LOCKED", locker.stderr
        assert manager.busy(SESSION).startswith(f"a run started from llm-agent run (pid {locker.pid}, since ")
        # A server starting now leaves the run alone: the live process holding the session may be running it.
        assert manager.mark_interrupted(time.time() + 1) == []
    finally:
        os.kill(locker.pid, signal.SIGKILL)
        locker.wait()

    # Its label is left behind, but is not believed: the lock itself went with the process.
    assert json.loads(paths.holder_file.read_text())["pid"] == locker.pid
    assert manager.busy(SESSION) is None
    assert manager.mark_interrupted(time.time() + 1) == [cut_off]
    ollama.load(scenario("route_chat"))
    conn = await ws(SESSION)
    conn.write_message(json.dumps({"type": "run", "request": "What is a p-value?"}))
    events = await receive(conn)
    assert "waiting" not in [e["type"] for e in events] and events[-1]["status"] == "ok", events
    assert not paths.holder_file.exists()  # the server's own label went with its lock
