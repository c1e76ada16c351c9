"""Fixtures for sandbox tests: real kernels, shared per module because each start costs a fraction of a second
of two shared cores, and an isolated data root per module so sessions never collide with other tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from llm_agent_magic.config import PathsConfig, SandboxConfig
from llm_agent_magic.sandbox.isolation import bubblewrap_check, landlock_abi

LEVELS = ["full", "reduced"]


def level_available(level: str) -> bool:
    return level != "full" or bubblewrap_check(False).ok


def skip_unless_available(level: str) -> None:
    if not level_available(level):
        pytest.skip(f"bubblewrap does not work here: {bubblewrap_check(False).detail}")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The project folder (read-only in the sandbox) is the data root's parent: keep it small and private.
    return tmp_path_factory.mktemp("project") / ".llm_agent"


@pytest.fixture(scope="module")
def paths(data_root: Path) -> PathsConfig:
    return PathsConfig(data_root=str(data_root))


def make_config(level: str, **overrides: object) -> SandboxConfig:
    settings: dict[str, object] = {"isolation": level, "execution_timeout": 30.0, "interrupt_grace": 2.0}
    # Where Landlock is missing, the tests of the other layers still run at 'reduced' (opted in).
    settings["allow_unenforced"] = not landlock_abi()
    settings.update(overrides)
    return SandboxConfig(**settings)


@pytest.fixture(scope="session")
def config_for() -> Callable[..., SandboxConfig]:
    """``config_for(level, **traits)``: a SandboxConfig for tests (short timeouts)."""
    return make_config


@pytest.fixture(scope="module", params=LEVELS)
def level(request: pytest.FixtureRequest) -> str:
    skip_unless_available(request.param)
    return request.param
