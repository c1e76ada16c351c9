"""Two ``llm-agent run`` processes on one session: the second waits for the first's run (the session's run
lock), or gives up with a message naming it; it never kills the first one's sandbox kernel in the middle of
a run (issue 9, item 9; issue 11, item 3: the lock is per run, not per process)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agent_helpers import coder_script
from batch_helpers import agent_outputs, read, write_notebook
from cli_helpers import OUR_ENV

from llm_agent_magic.testing.fake_ollama import FakeOllama

pytestmark = pytest.mark.slow

# The first run's code says it started, then holds its cell until the test lets it go.
HOLD_CODE = (
    "import os, time\n"
    "open('started', 'w').write('1')\n"
    "for _ in range(6000):\n"
    "    if os.path.exists('release'):\n"
    "        break\n"
    "    time.sleep(0.05)\n"
    "print('first done', os.path.exists('release'))"
)
AFTER_CODE = "import os\nprint('second done', os.path.exists('release'))"


def start_run(notebook: str, *args: str, cwd: Path, host: str, data_root: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in OUR_ENV}
    env.update(OLLAMA_HOST=host, LLM_AGENT_DATA_ROOT=str(data_root))
    return subprocess.Popen(
        [sys.executable, "-m", "llm_agent_magic.cli", "run", notebook, "--session", "shared", "--timeout", "300", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the first run ended before its cell started: {proc.communicate()[1][-3000:]}")
        assert time.monotonic() < deadline, "the first run's cell never started"
        time.sleep(0.05)


@pytest.fixture
def notebooks(folder: Path) -> Path:
    write_notebook(folder / "a.ipynb", "%load_ext llm_agent_magic", "%%agent --mode react\nHold the session")
    write_notebook(folder / "b.ipynb", "%load_ext llm_agent_magic", "%%agent --mode react\nUse the session")
    return folder


def finish_first(first: subprocess.Popen, workspace: Path, folder: Path) -> None:
    (workspace / "release").write_text("go")
    _, err = first.communicate(timeout=180)
    assert first.returncode == 0, err[-3000:]
    (out,) = agent_outputs(read(folder / "a.out.ipynb"))
    # Its cell ran to its end in its own kernel: nobody killed or took it over.
    assert out["status"] == "ok" and out["cells"][0][1] == ["first done True\n"], out


def test_a_second_run_on_a_busy_session_is_refused_naming_the_holder(notebooks: Path, data_root: Path) -> None:
    workspace = data_root / "sessions" / "shared" / "workspace"
    with FakeOllama(coder_script(HOLD_CODE, "held")) as one, FakeOllama(coder_script(AFTER_CODE, "used")) as two:
        first = start_run("a.ipynb", cwd=notebooks, host=one.url, data_root=data_root)
        try:
            wait_for(workspace / "started", first)
            second = start_run(
                "b.ipynb", "--SandboxConfig.session_wait_timeout=0", cwd=notebooks, host=two.url, data_root=data_root
            )
            _, err = second.communicate(timeout=180)
            assert second.returncode == 1, err[-3000:]
            # Who holds it: a run of the first `llm-agent run`, in its notebook's kernel (not the runner itself).
            assert "Session 'shared' is busy: a run started from llm-agent run (pid " in err, err[-3000:]
            kernel_pid = int(err.split("llm-agent run (pid ", 1)[1].split(",", 1)[0])
            assert kernel_pid not in (first.pid, second.pid)
            assert "session_wait_timeout" in err
            assert not two.requests_for("code")  # it ran nothing
            finish_first(first, workspace, notebooks)
        finally:
            first.kill()


def test_a_second_run_waits_for_the_session_then_runs(notebooks: Path, data_root: Path) -> None:
    workspace = data_root / "sessions" / "shared" / "workspace"
    with FakeOllama(coder_script(HOLD_CODE, "held")) as one, FakeOllama(coder_script(AFTER_CODE, "used")) as two:
        first = start_run("a.ipynb", cwd=notebooks, host=one.url, data_root=data_root)
        try:
            wait_for(workspace / "started", first)
            second = start_run(
                "b.ipynb", "--SandboxConfig.session_wait_timeout=300", cwd=notebooks, host=two.url, data_root=data_root
            )
            finish_first(first, workspace, notebooks)
            _, err = second.communicate(timeout=180)
            assert second.returncode == 0, err[-3000:]
        finally:
            first.kill()
    (out,) = agent_outputs(read(notebooks / "b.out.ipynb"))
    assert out["status"] == "ok" and out["cells"][0][1] == ["second done True\n"], out  # after the first let go
    # Nothing is left holding the session, and the label of the last holder went with its lock.
    assert not (data_root / "sessions" / "shared" / "kernel" / "holder.json").exists()
