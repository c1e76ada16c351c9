"""The audit hook is a guide, not a wall: generated code can switch it off from pure Python. What it announces,
the operating system enforces anyway (Landlock at 'reduced', bubblewrap + Landlock at 'full'): these tests
switch the hook off first, then try what it would have refused (issue 9, item 6)."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sandbox_helpers import defeat_hook, denied, need_landlock

from llm_agent_magic.config import PathsConfig, SandboxConfig
from llm_agent_magic.exceptions import SandboxUnavailable
from llm_agent_magic.sandbox import SandboxKernel, isolation
from llm_agent_magic.sandbox.paths import SessionPaths

pytestmark = pytest.mark.slow

SECRET = "key-of-the-users-own-kernel"


@pytest.fixture(scope="module")
def planted(paths: PathsConfig) -> Iterator[dict[str, Path]]:
    """What a user's machine holds beside the sandbox: a kernel's connection file in /tmp, another session."""
    tmp = Path("/tmp") / f"llm-agent-test-{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    connection = tmp / "kernel-4242.json"
    connection.write_text(f'{{"key": "{SECRET}", "transport": "tcp"}}')
    other = SessionPaths.for_session("another-session", paths).ensure().workspace / "private.csv"
    other.write_text(f"x\n{SECRET}\n")
    yield {"connection": connection, "other": other}
    connection.unlink()
    tmp.rmdir()


@pytest.fixture(scope="module")
def sb(level: str, paths: PathsConfig, config_for: Callable[..., SandboxConfig]) -> Iterator[SandboxKernel]:
    need_landlock()
    sk = SandboxKernel(f"boundary-{level}", config=config_for(level), paths=paths)
    sk.start()
    defeat_hook(sk)
    yield sk
    sk.shutdown()


def test_results_say_what_the_operating_system_enforces(sb: SandboxKernel, level: str) -> None:
    meta = sb.execute("1").metadata
    assert meta["isolation"] == level and meta["kernel_enforced"] is True
    assert f"landlock-abi-{isolation.landlock_abi()}" in meta["enforced_by"]
    assert ("bubblewrap" in meta["enforced_by"]) == (level == "full")


def test_reads_outside_the_allowed_roots_fail(sb: SandboxKernel, level: str, planted: dict[str, Path]) -> None:
    # At 'full' these files are not even there (private /tmp, other sessions hidden); at 'reduced' they are,
    # and the kernel refuses to open them.
    enames = ("PermissionError",) if level == "reduced" else ("PermissionError", "FileNotFoundError")
    for path in (planted["connection"], planted["other"]):
        r = sb.execute(f"print(open({str(path)!r}).read())")
        denied(r, *enames)
        assert SECRET not in r.output_text()
    # Nor through C code, which never passed the hook.
    r = sb.execute(f"import pyarrow.fs\npyarrow.fs.LocalFileSystem().open_input_stream({str(planted['connection'])!r})")
    denied(r, "PermissionError", "FileNotFoundError", "OSError")
    # The parent's environment and command line are another process's: out of reach too.
    r = sb.execute("import os\nprint(open(f'/proc/{os.getppid()}/environ').read())")
    denied(r, *enames)
    r = sb.execute("import os\nprint(open(f'/proc/{os.getppid()}/cmdline').read())")
    denied(r, *enames)
    # Nor can it take the session's lock or read who holds it (only its connection file is readable there).
    for name in ("hold", "lock", "holder.json", "state.json", "policy.json"):
        denied(sb.execute(f"open({str(sb.paths.kernel / name)!r}).close()"), "PermissionError", "FileNotFoundError")
    # Its own process is readable.
    assert sb.execute("print(len(open('/proc/self/status').read()) > 0)").stdout == "True\n"


def test_writes_into_the_project_fail_from_c_code(sb: SandboxKernel, paths: PathsConfig) -> None:
    project = Path(paths.data_root).parent
    target = project / "from-pyarrow.txt"
    r = sb.execute(
        f"import pyarrow.fs\nwith pyarrow.fs.LocalFileSystem().open_output_stream({str(target)!r}) as f:\n    f.write(b'x')"
    )
    denied(r, "PermissionError", "OSError")
    assert "ermission denied" in r.error["evalue"] or "Read-only" in r.error["evalue"]
    assert not target.exists()
    target = project / "from-libc.txt"
    r = sb.execute(
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        f"fd = libc.open({str(target).encode()!r}, os.O_WRONLY | os.O_CREAT, 0o644)\n"
        "print(fd, ctypes.get_errno())"
    )
    fd, err = r.stdout.split()
    assert fd == "-1" and int(err) in (errno.EACCES, errno.EROFS), r.text_for_model()
    assert not target.exists()
    # The workspace is still writable, from C too.
    r = sb.execute(
        "import pyarrow.fs\nwith pyarrow.fs.LocalFileSystem().open_output_stream('ok.bin') as f:\n    f.write(b'x')\nprint('ok')"
    )
    assert r.stdout == "ok\n", r.text_for_model()


def test_network_fails_in_the_kernel(sb: SandboxKernel, level: str) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        r = sb.execute(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5)")
        # 'reduced': Landlock refuses the connect (EACCES); 'full': Landlock, or the empty network namespace.
        enames = ("PermissionError",) if level == "reduced" else ("PermissionError", "ConnectionRefusedError", "OSError")
        assert "ermission denied" in denied(r, *enames) or level == "full"
        with pytest.raises(TimeoutError):
            listener.accept()
    # Another program's unix socket (a container runtime's, an ssh agent's): Landlock does not cover connecting
    # to one, the seccomp filter refuses new unix sockets once the kernel has its own.
    folder = Path("/tmp") / f"llm-agent-sock-{os.getpid()}"
    folder.mkdir(exist_ok=True)
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(folder / "agent.sock"))
        listener.listen()
        listener.settimeout(0.2)
        r = sb.execute(f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({str(folder / 'agent.sock')!r})")
        denied(r, "PermissionError", "FileNotFoundError")
        with pytest.raises(TimeoutError):
            listener.accept()
    (folder / "agent.sock").unlink()
    folder.rmdir()
    # asyncio's self-pipe (socketpair) still works.
    r = sb.execute("import asyncio\nasyncio.new_event_loop().close()\nprint('ok')")
    assert r.stdout == "ok\n", r.text_for_model()
    # UDP is beyond Landlock: the seccomp filter refuses the socket itself.
    r = sb.execute("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.sendto(b'x', ('8.8.8.8', 53))")
    denied(r, "PermissionError")
    # Nor can io_uring, which makes sockets without the socket() system call.
    r = sb.execute(
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "print(libc.syscall(425, 8, ctypes.create_string_buffer(120)), ctypes.get_errno())"
    )
    assert r.stdout == f"-1 {errno.EPERM}\n", r.text_for_model()


def test_signals_to_processes_outside_fail(sb: SandboxKernel) -> None:
    r = sb.execute("import os, signal\nos.kill(os.getppid(), signal.SIGTERM)")
    denied(r, "PermissionError", "ProcessLookupError")


def test_a_level_without_a_boundary_runs_only_when_opted_in(
    monkeypatch: pytest.MonkeyPatch, paths: PathsConfig, config_for: Callable[..., SandboxConfig]
) -> None:
    # A machine without bubblewrap and without Landlock:
    monkeypatch.setattr(isolation, "landlock_abi", lambda: 0)
    monkeypatch.setattr(isolation, "bubblewrap_check", lambda allow_network=False: isolation.LayerCheck(False, "absent"))
    with pytest.raises(SandboxUnavailable, match="allow_unenforced") as info:
        SandboxKernel("unenforced", config=config_for("auto", allow_unenforced=False), paths=paths).execute("1")
    assert "neither bubblewrap nor Landlock" in str(info.value)
    with SandboxKernel("unenforced-ok", config=config_for("auto", allow_unenforced=True), paths=paths) as sk:
        r = sk.execute("print('runs')")
    assert r.stdout == "runs\n"
    assert r.metadata["isolation"] == "reduced" and r.metadata["kernel_enforced"] is False
    assert r.metadata["enforced_by"] == [] and "opted in" in r.metadata["isolation_layers"]
