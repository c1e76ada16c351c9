"""A wheel installed into a fresh venv enables the server extension and the labextension with no other step."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent

pytestmark = pytest.mark.slow  # builds a wheel and a venv with every dependency (about 30 s)


def test_a_fresh_venv_lists_the_extension_enabled(tmp_path):
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-w", str(wheels), "-q"], capture_output=True, text=True
    )
    if built.returncode != 0:
        pytest.skip(f"a wheel could not be built here (offline without hatchling?): {built.stderr[-500:]}")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    wheel = next(wheels.glob("llm_agent_magic-*.whl"))
    installed = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], capture_output=True, text=True)
    if installed.returncode != 0 and "No matching distribution" in installed.stderr:
        pytest.skip(f"the dependencies are not available from this machine's package index: {installed.stderr[-500:]}")
    assert installed.returncode == 0, installed.stderr[-2000:]
    assert (venv / "etc" / "jupyter" / "jupyter_server_config.d" / "llm_agent_magic.json").is_file()
    listed = subprocess.run(
        [str(venv / "bin" / "jupyter"), "server", "extension", "list"], capture_output=True, text=True, cwd=tmp_path
    )
    out = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr).split())  # no colours
    assert "llm_agent_magic.server enabled" in out, out
    assert "Validating llm_agent_magic.server... llm_agent_magic.server OK" in out, out
    # The side panel comes prebuilt in the wheel: JupyterLab lists it enabled, with no `jupyter lab build`.
    assert (venv / "share" / "jupyter" / "labextensions" / "llm-agent-magic" / "package.json").is_file()
    assert (venv / "share" / "jupyter" / "labextensions" / "llm-agent-magic" / "schemas").is_dir()
    labext = subprocess.run(
        [str(venv / "bin" / "jupyter"), "labextension", "list"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    out = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", labext.stdout + labext.stderr).split())
    assert "llm-agent-magic v0.1.0 enabled OK" in out, out
