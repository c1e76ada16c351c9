"""Timeouts, kernel death and recovery, attaching from a second SandboxKernel, restore and push."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator

import pandas as pd
import pytest

from llm_agent_magic.config import PathsConfig, SandboxConfig
from llm_agent_magic.exceptions import SandboxClosed, SnapshotNotFound
from llm_agent_magic.sandbox import SandboxKernel, load_variable
from llm_agent_magic.sandbox.state import pid_alive

pytestmark = pytest.mark.slow

TIMEOUT = 1.0
GRACE = 2.0
SLACK = 4.0  # restart + restore on two busy cores


@pytest.fixture(scope="module")
def sk(level: str, paths: PathsConfig, config_for: Callable[..., SandboxConfig]) -> Iterator[SandboxKernel]:
    kernel = SandboxKernel(f"life-{level}", config=config_for(level, interrupt_grace=GRACE), paths=paths)
    kernel.start()
    r = kernel.execute("import pandas as pd\ndf = pd.DataFrame({'a': range(5), 'b': list('vwxyz')})\nn = 7")
    assert r.status == "ok", r.text_for_model()
    yield kernel
    kernel.shutdown()


@pytest.mark.parametrize("code", ["while True: pass", "import time\ntime.sleep(1e6)"], ids=["busy", "sleep"])
def test_timeout_interrupts_within_timeout_plus_grace(sk: SandboxKernel, code: str) -> None:
    t0 = time.monotonic()
    r = sk.execute(code, timeout=TIMEOUT)
    assert time.monotonic() - t0 < TIMEOUT + GRACE + 0.5
    assert r.status == "timeout"
    assert "ran longer than 1 s and was interrupted" in r.message
    assert r.error is not None and r.error["ename"] == "KeyboardInterrupt"
    assert {"df", "n"} <= {v.name for v in r.variables}
    assert sk.execute("print(n)").stdout == "7\n"


def test_timeout_restarts_a_kernel_that_ignores_interrupts(sk: SandboxKernel) -> None:
    pid = sk.pid
    code = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass"
    t0 = time.monotonic()
    r = sk.execute(code, timeout=TIMEOUT)
    assert time.monotonic() - t0 < TIMEOUT + GRACE + SLACK
    assert r.status == "timeout"
    assert "restarted" in r.message and "df" in r.restored
    assert sk.pid != pid and not pid_alive(pid)
    assert sk.execute("print(df.shape, n)").stdout == "(5, 2) 7\n"


async def test_sigkill_mid_execution_restores_the_dataframe(sk: SandboxKernel) -> None:
    task = asyncio.ensure_future(sk.async_execute("import time\nprint('working', flush=True)\ntime.sleep(30)"))
    await asyncio.sleep(1.0)
    assert sk.pid is not None
    os.kill(sk.pid, signal.SIGKILL)
    r = await asyncio.wait_for(task, 15)
    assert r.status == "died"
    assert "killed (SIGKILL, signal 9)" in r.message
    assert {"df", "n"} <= set(r.restored)
    assert r.stdout == "working\n"
    r = await sk.async_execute("print(df['b'].tolist(), n)")
    assert r.stdout == "['v', 'w', 'x', 'y', 'z'] 7\n", r.text_for_model()


def test_os_exit_is_reported_and_recovered(sk: SandboxKernel) -> None:
    r = sk.execute("import os\nos._exit(3)")
    assert r.status == "died" and "exit code 3" in r.message and "df" in r.restored
    assert sk.execute("print(n)").stdout == "7\n"


def test_kernel_killed_while_idle_is_restarted_on_next_execute(sk: SandboxKernel) -> None:
    assert sk.pid is not None
    os.kill(sk.pid, signal.SIGKILL)
    time.sleep(0.2)
    r = sk.execute("print(n)")
    assert r.status == "ok" and r.stdout == "7\n"
    assert "restarted" in r.message and "n" in r.restored


def test_snapshot_is_readable_without_a_kernel(sk: SandboxKernel, paths: PathsConfig) -> None:
    assert sk.flush_snapshots()  # DataFrames are written in the background after the cell's reply
    df = load_variable(sk.session_id, "df", paths)
    pd.testing.assert_frame_equal(df, pd.DataFrame({"a": range(5), "b": list("vwxyz")}))
    assert sk.load("n") == 7
    with pytest.raises(SnapshotNotFound, match="No snapshot of 'missing' in session 'life-.*'. Saved variables: df, n"):
        sk.load("missing")
    with pytest.raises(KeyError):
        load_variable(sk.session_id, "missing", paths)


def test_push_a_dataframe_into_the_sandbox(sk: SandboxKernel) -> None:
    sk.push("sales", pd.DataFrame({"region": ["n", "s"], "amount": [3.0, 4.5]}))
    r = sk.execute("print(sales.amount.sum())")
    assert r.stdout == "7.5\n"
    assert "sales" in {v.name for v in r.variables}
    assert sk.load("sales")["region"].tolist() == ["n", "s"]


def test_attach_from_a_second_sandbox_kernel(level: str, paths: PathsConfig, config_for: Callable[..., SandboxConfig]) -> None:
    config = config_for(level)
    owner = SandboxKernel(f"shared-session-{level}", config=config, paths=paths)
    owner.start()
    assert owner.execute("x = 20").status == "ok"
    guest = SandboxKernel(f"shared-session-{level}", config=config, paths=paths)
    guest.start()
    try:
        assert guest.attached and not guest.owns_kernel and guest.pid == owner.pid
        r = guest.execute("y = x + 1\nprint(y)")
        assert r.stdout == "21\n" and r.metadata["attached"] is True
    finally:
        guest.shutdown()  # an attached client only disconnects
    assert owner.execute("print(y)").stdout == "21\n"
    with pytest.raises(SandboxClosed):
        guest.execute("1")

    # A dead kernel is taken over (and its variables restored), not attached to.
    pid = owner.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    successor = SandboxKernel(f"shared-session-{level}", config=config, paths=paths)
    successor.start()
    successor.wait_ready()
    try:
        assert successor.owns_kernel and successor.pid != pid
        assert set(successor.last_restore["restored"]) >= {"x", "y"}
        # The old owner notices its kernel died and attaches to the successor's instead of starting another.
        r = owner.execute("print(x + y)")
        assert r.stdout == "41\n" and owner.attached and owner.pid == successor.pid
    finally:
        owner.shutdown()
        successor.shutdown()
    assert not pid_alive(successor.pid)


def test_start_returns_before_the_kernel_is_ready(paths: PathsConfig, config_for: Callable[..., SandboxConfig]) -> None:
    sk = SandboxKernel("early-start", config=config_for("auto"), paths=paths)
    t0 = time.monotonic()
    sk.start()
    launched = time.monotonic() - t0
    try:
        assert sk.pid is not None and launched < 0.5
        assert sk.execute("print('first')").stdout == "first\n"
    finally:
        sk.shutdown()
    assert not pid_alive(sk.pid)


def test_a_new_kernel_for_a_session_restores_its_variables(paths: PathsConfig, config_for: Callable[..., SandboxConfig]) -> None:
    with SandboxKernel("comeback", config=config_for("auto"), paths=paths) as first:
        assert first.execute("import numpy as np\nkept = np.arange(6).reshape(2, 3)\nname = 'ada'").status == "ok"
    with SandboxKernel("comeback", config=config_for("auto"), paths=paths) as second:
        r = second.execute("print(kept.sum(), name)")
        assert r.stdout == "15 ada\n"
        assert second.last_restore is not None and set(second.last_restore["restored"]) == {"kept", "name"}


def test_the_log_of_a_kernel_that_died_survives_the_restart(sk: SandboxKernel) -> None:
    marker = f"last words of kernel {sk.pid}"
    # Straight to the kernel process's own stderr (the log): ipykernel's capture of fd 2 echoes there from a
    # thread, which os._exit may not leave time for.
    r = sk.execute(
        f"import os, sys\nfd = getattr(sys.stderr, '_original_stdstream_copy', None) or 2\n"
        f"os.write(fd, {(marker + chr(10)).encode()!r})\nos._exit(4)"
    )
    assert r.status == "died" and "exit code 4" in r.message
    assert marker not in sk.paths.log_file.read_text(errors="replace")  # the new kernel writes a log of its own
    assert marker in (sk.paths.kernel / "kernel.log.1").read_text(errors="replace")
    assert sk.execute("print(n)").stdout == "7\n"


def test_kernel_logs_are_rotated_keeping_a_few_of_bounded_size(tmp_path) -> None:
    from llm_agent_magic.sandbox.kernel_log import rotate_log

    log = tmp_path / "kernel.log"
    for n in range(5):
        log.write_bytes(f"launch {n}\n".encode() + b"x" * (3 << 20))
        rotate_log(log)
    assert not log.exists()
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["kernel.log.1", "kernel.log.2", "kernel.log.3"]
    newest = (tmp_path / "kernel.log.1").read_bytes()
    assert len(newest) < (1 << 20) + 100 and newest.startswith(b"[... the first ") and newest.endswith(b"x")
