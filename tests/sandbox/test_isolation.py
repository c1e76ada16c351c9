"""Each isolation layer refuses or contains what it should, at the 'full' and 'reduced' levels, and the
next execution in the same session still works."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llm_agent_magic.config import PathsConfig, SandboxConfig
from llm_agent_magic.sandbox import ExecutionResult, SandboxKernel
from llm_agent_magic.sandbox.paths import SessionPaths

pytestmark = pytest.mark.slow

SECRET = "sk-test-5ecret-value"


@pytest.fixture(scope="module")
def fake_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_rsa").write_text(f"PRIVATE KEY {SECRET}")
    return home


@pytest.fixture(scope="module")
def other_session(paths: PathsConfig) -> Path:
    other = SessionPaths.for_session("someone-else", paths).ensure()
    secret = other.workspace / "private.csv"
    secret.write_text(f"x\n{SECRET}\n")
    return secret


@pytest.fixture(scope="module")
def sb(level: str, paths: PathsConfig, fake_home: Path, config_for: Callable[..., SandboxConfig]) -> Iterator[SandboxKernel]:
    # Credentials in the parent's environment and a home folder with an ssh key, as on a real machine.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(fake_home))
        mp.setenv("TAVILY_API_KEY", SECRET)
        mp.setenv("JUPYTER_TOKEN", SECRET)
        mp.setenv("MY_SERVICE_PASSWORD", SECRET)
        sk = SandboxKernel(f"iso-{level}", config=config_for(level, memory_limit_mb=1024), paths=paths)
        sk.start()
        sk.wait_ready()
    yield sk
    sk.shutdown()


def refused(r: ExecutionResult, *enames: str) -> str:
    """Assert the execution failed with one of ``enames`` and return the error text."""
    assert r.status == "error", r.text_for_model()
    err = r.error
    assert err is not None and err["ename"] in enames, r.text_for_model()
    text = r.output_text()
    assert SECRET not in text
    return err["evalue"]


def still_works(sk: SandboxKernel) -> None:
    r = sk.execute("print(40 + 2)")
    assert r.status == "ok" and r.stdout == "42\n", r.text_for_model()


def test_reports_its_level(sb: SandboxKernel, level: str) -> None:
    r = sb.execute("import os; print(os.environ['LLM_AGENT_SANDBOX'])")
    assert r.stdout == f"{level}\n"
    assert r.metadata["isolation"] == level


def test_analysis_libraries_import_inside(sb: SandboxKernel) -> None:
    r = sb.execute("import pandas, numpy, matplotlib.pyplot, pyarrow, sklearn, scipy.stats\nprint('ok')", timeout=120)
    assert r.status == "ok" and r.stdout == "ok\n", r.text_for_model()
    r = sb.execute(
        "from sklearn.cluster import KMeans\n"
        "print(KMeans(2, n_init=1, random_state=0).fit(numpy.random.rand(50, 2)).cluster_centers_.shape)"
    )
    assert r.stdout.startswith("(2, 2)"), r.text_for_model()


def test_memory_bomb_is_contained(sb: SandboxKernel) -> None:
    r = sb.execute("big = bytearray(8 * 1024**3)")
    refused(r, "MemoryError")
    assert "1024 MB memory limit" in r.message
    r = sb.execute("def grow():\n    hog = []\n    while True:\n        hog.append(bytearray(64 * 2**20))\ngrow()")
    assert r.status in ("error", "died"), r.text_for_model()
    still_works(sb)


def test_fork_bomb_is_refused(sb: SandboxKernel) -> None:
    msg = refused(sb.execute("import os\nwhile True:\n    os.fork()"), "PermissionError")
    assert "llm-agent sandbox policy: starting processes is not allowed" in msg
    refused(sb.execute("import ctypes\nctypes.CDLL(None).fork()"), "PermissionError")
    refused(sb.execute("import multiprocessing as mp\nmp.Process(target=print).start()"), "PermissionError")
    still_works(sb)


@pytest.mark.parametrize(
    "code",
    [
        "import subprocess\nsubprocess.run(['id'])",
        "import os\nos.system('id')",
        "import os\nos.execv('/bin/true', ['true'])",
        "import os\nos.posix_spawn('/bin/true', ['true'], {})",
    ],
    ids=["subprocess", "os.system", "exec", "posix_spawn"],
)
def test_processes_are_refused(sb: SandboxKernel, code: str) -> None:
    assert "starting processes is not allowed" in refused(sb.execute(code), "PermissionError")
    still_works(sb)


@pytest.mark.parametrize(
    "code",
    [
        "import multiprocessing as mp\np = mp.get_context('spawn').Process(target=print)\np.start()",
        # calls _posixsubprocess.fork_exec directly, with this Python version's arguments
        "from multiprocessing.util import spawnv_passfds\nspawnv_passfds(b'/bin/true', [b'true'], ())",
    ],
    ids=["multiprocessing-spawn", "fork_exec"],
)
def test_processes_started_from_c_are_refused_by_seccomp(sb: SandboxKernel, code: str) -> None:
    # No audit event covers these; the seccomp filter makes the OS refuse them.
    refused(sb.execute(code), "PermissionError")
    still_works(sb)


def test_socket_to_a_local_listener_is_refused(sb: SandboxKernel) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        code = f"import socket\ns = socket.socket()\ns.connect(('127.0.0.1', {port}))"
        msg = refused(sb.execute(code), "PermissionError")
        assert f"network connections are not allowed (socket.connect to 127.0.0.1:{port})" in msg
        refused(
            sb.execute(f"import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/')"),
            "PermissionError",
            "URLError",
        )
        with pytest.raises(TimeoutError):
            listener.accept()
    refused(sb.execute("import socket\nsocket.getaddrinfo('example.com', 443)"), "PermissionError")
    still_works(sb)


def test_ssh_keys_in_home_are_not_readable(sb: SandboxKernel, fake_home: Path) -> None:
    key = fake_home / ".ssh" / "id_rsa"
    refused(sb.execute(f"print(open({str(key)!r}).read())"), "PermissionError", "FileNotFoundError")
    refused(sb.execute(f"import os\nprint(os.listdir({str(fake_home / '.ssh')!r}))"), "PermissionError", "FileNotFoundError")
    # Inside, ~ is the sandbox's own home.
    r = sb.execute("import os\nprint(os.path.exists(os.path.expanduser('~/.ssh/id_rsa')))")
    assert r.stdout == "False\n"
    still_works(sb)


def test_another_sessions_workspace_is_not_readable(sb: SandboxKernel, other_session: Path) -> None:
    refused(sb.execute(f"print(open({str(other_session)!r}).read())"), "PermissionError", "FileNotFoundError")
    r = sb.execute(f"import os\nprint(sorted(os.listdir({str(other_session.parents[2])!r})))")
    assert "someone-else" not in r.output_text()
    # Nor through a symlink planted in its own workspace.
    r = sb.execute(f"import os\nos.symlink({str(other_session)!r}, 'link.csv')\nprint(open('link.csv').read())")
    refused(r, "PermissionError", "FileNotFoundError")
    still_works(sb)


def test_writes_outside_the_workspace_are_refused(sb: SandboxKernel, paths: PathsConfig) -> None:
    project_file = Path(paths.data_root).parent / "notes.txt"
    msg = refused(sb.execute(f"open({str(project_file)!r}, 'w').write('x')"), "PermissionError", "OSError")
    assert not project_file.exists()
    assert "outside the workspace" in msg or "Read-only" in msg
    refused(sb.execute("import os\nos.remove('/etc/hostname')"), "PermissionError", "OSError")
    refused(sb.execute(f"import shutil\nshutil.rmtree({str(Path(paths.data_root))!r})"), "PermissionError", "OSError")
    assert Path(paths.data_root).is_dir()
    # Its own workspace and temporary folder are writable, and the host sees workspace files.
    r = sb.execute(
        "import tempfile\nopen('result.csv', 'w').write('a,b\\n')\n"
        "open(tempfile.gettempdir() + '/scratch', 'w').write('t')\nprint('ok')"
    )
    assert r.stdout == "ok\n", r.text_for_model()
    assert (Path(sb.workspace) / "result.csv").read_text() == "a,b\n"
    still_works(sb)


def test_environment_is_scrubbed(sb: SandboxKernel, level: str) -> None:
    r = sb.execute("import os\nprint(sorted(k for k in os.environ if any(s in k for s in ('KEY', 'TOKEN', 'PASSWORD'))))")
    assert r.stdout == "[]\n", r.text_for_model()
    # The parent's environment is not reachable through /proc either.
    r = sb.execute("import os\nprint(open(f'/proc/{os.getppid()}/environ').read())")
    assert SECRET not in r.output_text()
    if level == "reduced":
        refused(r, "PermissionError")
    still_works(sb)


def test_signals_to_other_processes_are_refused(sb: SandboxKernel) -> None:
    refused(sb.execute("import os, signal\nos.kill(os.getppid(), signal.SIGTERM)"), "PermissionError")
    still_works(sb)


def test_native_libraries_cannot_be_loaded(sb: SandboxKernel) -> None:
    # libBrokenLocale is part of glibc (always installed) and never loaded by Python.
    msg = refused(sb.execute("import ctypes\nctypes.CDLL('libBrokenLocale.so.1')"), "PermissionError")
    assert "loading native libraries is not allowed" in msg
    refused(sb.execute("import ctypes\nctypes.pythonapi.system"), "PermissionError")
    still_works(sb)


def test_kernel_spec_cannot_be_rewritten_from_inside(sb: SandboxKernel) -> None:
    spec = Path(sb.paths.kernel) / "spec" / "llm-agent-sandbox" / "kernel.json"
    refused(sb.execute(f"open({str(spec)!r}, 'w').write('{{}}')"), "PermissionError", "OSError")
    assert spec.read_text().startswith("{\n")
