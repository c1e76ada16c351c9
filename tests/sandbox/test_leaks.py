"""Less to leak: the sandbox inherits an allowlisted environment, not whatever this process holds; a home folder
that is the project shows its files but not its dot-files; only the sandbox Python's own folders are there,
not everything on this process's sys.path (issue 9, item 8). The audit hook is switched off first: what
holds is what the operating system enforces."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sandbox_helpers import defeat_hook, need_landlock

from llm_agent_magic.config import PathsConfig, SandboxConfig
from llm_agent_magic.sandbox import SandboxKernel

pytestmark = pytest.mark.slow

SECRET = "postgres://admin:s3cret-pw@db.internal/prod"
LEAKY_ENV = {
    "DATABASE_URL": SECRET,
    "MYSQL_PWD": SECRET,
    "AZURE_STORAGE_CONNECTION_STRING": f"AccountKey={SECRET}",
    "SENTRY_DSN": f"https://{SECRET}@sentry.io/1",
    "GITHUB_PAT": SECRET,
    "MY_SERVICE_PASSWORD": SECRET,
}
DOTFILES = (
    ".pgpass",
    ".npmrc",
    ".cache/huggingface/token",
    ".ollama/id_ed25519",
    ".local/share/jupyter/notebook_secret",
    ".mozilla/firefox/abc.default/cookies.sqlite",
    ".config/some-app/credentials.json",
    ".ssh/id_ed25519",
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home folder that is also the project folder, as when notebooks live directly in ~."""
    home = tmp_path_factory.mktemp("home")
    for name in DOTFILES:
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(SECRET)
    (home / "notes.csv").write_text("a,b\n1,2\n")
    (home / "analysis").mkdir()
    (home / "analysis" / "data.csv").write_text("x\n3\n")
    return home


@pytest.fixture(scope="module")
def on_sys_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder this process added to its sys.path: not the sandbox Python's."""
    folder = tmp_path_factory.mktemp("parent-path")
    (folder / "private_settings.py").write_text(f"TOKEN = {SECRET!r}\n")
    sys.path.append(str(folder))
    yield folder
    sys.path.remove(str(folder))


@pytest.fixture(scope="module")
def sb(
    level: str, home: Path, on_sys_path: Path, tmp_path_factory: pytest.TempPathFactory, config_for: Callable[..., SandboxConfig]
) -> Iterator[SandboxKernel]:
    need_landlock()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        mp.setenv("TZ", "Europe/Vienna")
        mp.setenv("MYAPP_MODE", "batch")
        mp.setenv("PYTHONPATH", str(on_sys_path))
        for name, value in LEAKY_ENV.items():
            mp.setenv(name, value)
        paths = PathsConfig(data_root=str(home / ".llm_agent"))
        config = config_for(level, project_dir=str(home), pass_env=["MYAPP_*", "MY_SERVICE_*"])
        sk = SandboxKernel(f"leaks-{level}", config=config, paths=paths)
        sk.start()
        sk.wait_ready()
    defeat_hook(sk)
    yield sk
    sk.shutdown()


def test_the_environment_is_an_allowlist(sb: SandboxKernel) -> None:
    r = sb.execute("import os, json\nprint(json.dumps(dict(os.environ)))")
    assert r.status == "ok", r.text_for_model()
    assert SECRET not in r.stdout
    env = __import__("json").loads(r.stdout)
    assert not set(LEAKY_ENV) & set(env)
    assert env["TZ"] == "Europe/Vienna" and env["MYAPP_MODE"] == "batch"  # allowlisted, and configured
    assert "PYTHONPATH" not in env


def test_home_dotfiles_are_hidden_when_the_home_folder_is_the_project(sb: SandboxKernel, home: Path) -> None:
    r = sb.execute(f"print(open({str(home / 'notes.csv')!r}).read(), open({str(home / 'analysis/data.csv')!r}).read())")
    assert r.stdout == "a,b\n1,2\n x\n3\n\n", r.text_for_model()
    for name in DOTFILES:
        r = sb.execute(f"print(repr(open({str(home / name)!r}).read()))")
        assert SECRET not in r.output_text(), name
        assert r.status == "error" or r.stdout == "''\n", r.text_for_model()  # masked with an empty file at 'full'


def test_only_the_sandbox_pythons_own_folders_are_there(sb: SandboxKernel, on_sys_path: Path) -> None:
    r = sb.execute(f"print(open({str(on_sys_path / 'private_settings.py')!r}).read())")
    assert r.status == "error" and SECRET not in r.output_text(), r.text_for_model()
    r = sb.execute("import private_settings")
    assert r.error is not None and r.error["ename"] == "ModuleNotFoundError", r.text_for_model()
    # Its own libraries are there.
    assert sb.execute("import pandas\nprint('ok')").stdout == "ok\n"
