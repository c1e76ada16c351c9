"""The doctor's probe, the sandbox's choice of Python, the 'off' level and session folders."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llm_agent_magic.config import PathsConfig, SandboxConfig
from llm_agent_magic.exceptions import ConfigurationError, SandboxStartError, SandboxUnavailable
from llm_agent_magic.sandbox import SandboxKernel, analysis_imports, isolation, probe
from llm_agent_magic.sandbox.inside import seccomp
from llm_agent_magic.sandbox.isolation import resolve_level
from llm_agent_magic.sandbox.paths import SessionPaths, session_folder_name
from llm_agent_magic.sandbox.python_env import scrub_env


@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PATH", "/nonexistent")
    isolation.bubblewrap_check.cache_clear()
    isolation.user_namespace_check.cache_clear()
    yield
    isolation.bubblewrap_check.cache_clear()
    isolation.user_namespace_check.cache_clear()


def test_probe_reports_every_layer() -> None:
    report = probe(SandboxConfig())
    assert report.requested == "auto"
    assert report.level == ("full" if report.bubblewrap.ok else "reduced")
    assert report.rlimits.ok and report.audit_hook.ok
    assert report.seccomp.ok == seccomp.supported()
    for check in (report.bubblewrap, report.user_namespaces, report.landlock, report.rlimits, report.seccomp, report.audit_hook):
        assert check.detail and (check.ok or check.fix)
    assert json.dumps(report.to_dict())


def test_without_bubblewrap_auto_is_reduced_and_full_is_refused(no_bwrap: None) -> None:
    report = probe(SandboxConfig(isolation="full"))
    assert not report.bubblewrap.ok and "apt-get install bubblewrap" in report.bubblewrap.fix
    assert any("will not start" in note for note in report.notes)
    assert resolve_level(SandboxConfig(isolation="auto")) == "reduced"
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        resolve_level(SandboxConfig(isolation="full"))
    assert probe(SandboxConfig(isolation="off")).level == "off"


@pytest.mark.slow
def test_analysis_imports_runs_the_sandbox_python() -> None:
    found = analysis_imports(SandboxConfig(), modules=("numpy", "openpyxl", "no_such_module_here"))
    assert found == {"numpy": True, "openpyxl": True, "no_such_module_here": False}


def test_scrub_env_removes_credentials() -> None:
    env = {
        "TAVILY_API_KEY": "1",
        "JUPYTER_TOKEN": "2",
        "aws_secret_access_key": "3",
        "GH_TOKEN": "4",
        "DB_PASSWORD": "5",
        "PATH": "/bin",
        "LANG": "C",
    }
    assert scrub_env(env, SandboxConfig().scrub_env_patterns) == {"PATH": "/bin", "LANG": "C"}
    assert scrub_env({"TAVILY_API_KEY": "1", "X": "2"}, []) == {"X": "2"}


def test_session_folder_names_are_safe_and_distinct(tmp_path: Path) -> None:
    assert session_folder_name("abc-1") == "abc-1"
    a, b = session_folder_name("work/sales.ipynb"), session_folder_name("work_sales.ipynb")
    assert a != b and "/" not in a and a.startswith("work_sales.ipynb-")
    assert session_folder_name("../../etc") != "../../etc" and "/" not in session_folder_name("../../etc")
    long_root = tmp_path / ("d" * 120)
    sp = SessionPaths.for_session("x", PathsConfig(data_root=str(long_root))).ensure()
    assert len(str(sp.ipc_dir)) < 100 and sp.ipc_dir.is_dir()


def write_spec(root: Path, name: str, argv: list[str], env: dict[str, str] | None = None, language: str = "python") -> None:
    folder = root / "kernels" / name
    folder.mkdir(parents=True)
    spec = {"argv": argv, "display_name": name, "language": language, "env": env or {}}
    (folder / "kernel.json").write_text(json.dumps(spec))


@pytest.mark.slow
def test_kernel_name_picks_that_specs_python_and_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, paths: PathsConfig, config_for: Callable[..., SandboxConfig]
) -> None:
    write_spec(
        tmp_path,
        "analysis-py",
        [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        {"FROM_SPEC": "yes", "SPEC_API_KEY": "hidden"},
    )
    write_spec(tmp_path, "not-python", ["R", "--slave", "-f", "{connection_file}"], language="R")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    with SandboxKernel("by-kernel-name", config=config_for("auto", kernel_name="analysis-py"), paths=paths) as sk:
        r = sk.execute("import os, sys\nprint(os.environ.get('FROM_SPEC'), os.environ.get('SPEC_API_KEY'), sys.executable)")
        assert r.stdout == f"yes None {sys.executable}\n", r.text_for_model()
    with pytest.raises(ConfigurationError, match="not an ipykernel"):
        SandboxKernel("bad-spec", config=config_for("auto", kernel_name="not-python"), paths=paths).execute("1")
    with pytest.raises(ConfigurationError, match="No kernel spec named"):
        SandboxKernel("no-spec", config=config_for("auto", kernel_name="missing"), paths=paths).execute("1")


@pytest.mark.slow
def test_python_setting_and_the_off_level(paths: PathsConfig, config_for: Callable[..., SandboxConfig]) -> None:
    # An interpreter named in config: another name of this venv's Python, so its folders are asked from it.
    other_name = Path(sys.executable).with_name("python3")
    config = config_for("off", python=str(other_name))
    with SandboxKernel("python-off", config=config, paths=paths) as sk:
        r = sk.execute("import subprocess, os\nprint(subprocess.run(['true']).returncode, os.environ['LLM_AGENT_SANDBOX'])")
        assert r.stdout == "0 off\n", r.text_for_model()
        assert sk.execute("import sys\nprint(sys.executable)").stdout == f"{other_name}\n"
        assert r.metadata["isolation"] == "off"


def test_kernel_manager_class_is_a_type_trait() -> None:
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import TraitError

    from llm_agent_magic.sandbox.gateway import GatewayKernelManager, manager_class

    assert SandboxConfig().kernel_manager_class is AsyncKernelManager
    assert SandboxConfig(kernel_manager_class=GatewayKernelManager).kernel_manager_class is GatewayKernelManager
    by_path = SandboxConfig(kernel_manager_class="llm_agent_magic.sandbox.gateway.GatewayKernelManager")
    assert by_path.kernel_manager_class is GatewayKernelManager
    with pytest.raises(TraitError):
        SandboxConfig(kernel_manager_class="jupyter_client.manager.KernelManager")  # not an async manager
    with pytest.raises(TraitError):
        SandboxConfig(kernel_manager_class="nowhere.Manager")
    # A gateway URL makes the default manager the gateway's; another local manager with it is a mistake.
    assert manager_class(SandboxConfig(gateway_url="http://gw:8888")) is GatewayKernelManager
    assert manager_class(SandboxConfig()) is AsyncKernelManager

    class Custom(AsyncKernelManager):
        pass

    with pytest.raises(ConfigurationError, match="does not talk to a gateway"):
        manager_class(SandboxConfig(gateway_url="http://gw:8888", kernel_manager_class=Custom))


@pytest.mark.slow
def test_a_python_without_ipykernel_fails_to_start_with_the_reason(
    paths: PathsConfig, config_for: Callable[..., SandboxConfig]
) -> None:
    base = Path(sys.base_prefix) / "bin" / "python3"
    if not base.exists() or subprocess.run([str(base), "-c", "import ipykernel"], capture_output=True).returncode == 0:
        pytest.skip("needs an interpreter without ipykernel")
    sk = SandboxKernel("no-ipykernel", config=config_for("auto", python=str(base), startup_timeout=20), paths=paths)
    with pytest.raises(SandboxStartError, match="No module named 'ipykernel'") as info:
        sk.execute("1")
    assert "did not start" in str(info.value)
    assert not sk.is_alive()
    sk.shutdown()
