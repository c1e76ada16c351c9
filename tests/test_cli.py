"""The command line: doctor, demo and fake-ollama, run as a user runs them."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import nbformat
import pytest
from cli_helpers import run_cli
from llm_helpers import closed_port
from nbclient import NotebookClient

from llm_agent_magic.testing.fake_ollama import FakeOllama

pytestmark = pytest.mark.slow  # every test here runs llm-agent as a process


def cli(*args, cwd, env=None, timeout=120):
    return run_cli(*args, cwd=cwd, env=env, timeout=timeout)


def test_doctor_reports_each_check_with_its_fix(tmp_path):
    with FakeOllama({"models": ["qwen3:8b", "nomic-embed-text"]}) as server:
        url = server.url
        out = cli(
            "doctor",
            "--json",
            f"--host={url}",
            "--LLMConfig.coder_model=qwen2.5-coder:7b",
            cwd=tmp_path,
            env={"TAVILY_API_KEY": ""},
        )
    checks = {c["name"]: c for c in json.loads(out.stdout)}
    assert checks["ollama"]["status"] == "ok" and url in checks["ollama"]["detail"]
    assert checks["model qwen3:8b"]["status"] == "ok"
    missing = checks["model qwen2.5-coder:7b"]
    assert missing["status"] == "fail" and missing["fix"] == "ollama pull qwen2.5-coder:7b"
    assert checks["tavily"]["status"] == "warn" and "TAVILY_API_KEY" in checks["tavily"]["fix"]
    assert checks["sandbox isolation"]["detail"].startswith("level in force:")
    assert checks["sandbox libraries"]["status"] == "ok" and "pandas" in checks["sandbox libraries"]["detail"]
    assert checks["data root"]["status"] == "ok"
    assert out.returncode == 1  # a model is missing


def test_doctor_reports_landlock_and_what_the_operating_system_enforces(tmp_path):
    from llm_agent_magic.sandbox.inside.landlock import abi_version

    out = cli("doctor", "--json", "--isolation=reduced", f"--host=http://127.0.0.1:{closed_port()}", cwd=tmp_path)
    checks = {c["name"]: c for c in json.loads(out.stdout)}
    landlock, level = checks["sandbox landlock"], checks["sandbox isolation"]
    # The audit hook is described for what it is.
    assert "a guide, not a wall" in checks["sandbox audit hook"]["detail"]
    assert level["detail"].startswith("level in force: reduced")
    abi = abi_version()
    if abi:
        assert landlock["status"] == "ok" and landlock["detail"].startswith(f"Landlock ABI {abi}:")
        assert level["status"] == "warn" and f"enforced by the operating system: landlock-abi-{abi}" in level["detail"]
    else:
        assert landlock["status"] == "warn" and "Linux 5.13" in landlock["fix"]
        assert level["status"] == "fail" and "allow_unenforced" in level["detail"]


def test_doctor_without_ollama_says_how_to_start_it(tmp_path):
    out = cli("doctor", f"--host=http://127.0.0.1:{closed_port()}", cwd=tmp_path)
    assert out.returncode == 1
    assert "✗ ollama: no Ollama server answers" in out.stdout and "fix: start it with `ollama serve`" in out.stdout


def test_doctor_flags_an_unwritable_data_root(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = cli("doctor", "--json", f"--data-root={blocker}/root", f"--host=http://127.0.0.1:{closed_port()}", cwd=tmp_path)
    root = {c["name"]: c for c in json.loads(out.stdout)}["data root"]
    assert root["status"] == "fail" and "LLM_AGENT_DATA_ROOT" in root["fix"]


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _demo(tmp_path, host, clock=None):
    out = tmp_path / "demo.ipynb"
    result = cli(
        "demo",
        f"--host={host}",
        f"--notebook={EXAMPLES / 'quickstart.ipynb'}",
        f"--output={out}",
        cwd=tmp_path,
        env={"LLM_AGENT_DATA_ROOT": str(tmp_path / "data"), **(clock or {})},
        timeout=300,
    )
    return result, out


#: The quickstart's cassette was recorded on a Saturday in UTC (examples/refresh.py); the demo replays it
#: on other days and in other zones.
OTHER_DAYS = {
    "tuesday-los-angeles": {"LLM_AGENT_NOW": "2027-03-02T18:40:00-08:00", "TZ": "America/Los_Angeles"},
    "friday-kolkata": {"LLM_AGENT_NOW": "2028-02-04T06:05:00+05:30", "TZ": "Asia/Kolkata"},
}


@pytest.mark.parametrize("day", sorted(OTHER_DAYS))
def test_demo_replays_the_quickstart_when_no_ollama_answers(tmp_path, day):
    result, out = _demo(tmp_path, f"http://127.0.0.1:{closed_port()}", OTHER_DAYS[day])
    assert result.returncode == 0, result.stderr
    assert "No live model" in result.stdout and "replaying its recorded cassette" in result.stdout
    assert f"The executed notebook, with the agent's cells, is {out}" in result.stdout
    assert "make lab" in result.stdout  # how to open it in JupyterLab
    # The notebook's kernel talks over Unix sockets: ipykernel does not warn about unencrypted TCP.
    assert "without encryption" not in result.stdout + result.stderr, result.stderr
    nb = nbformat.read(out, as_version=4)
    generated = [c for c in nb.cells if c.get("metadata", {}).get("llm_agent")]
    assert generated and 'groupby("region")' in generated[0].source
    assert any("West" in str(o) for c in nb.cells for o in c.get("outputs", []))


def test_the_demos_notebook_runs_again_where_it_was_written_without_a_model(tmp_path):
    """The executed notebook sits beside its example: plain nbclient runs it again, top to bottom, with no model
    (the %%agent cell replays, its %%sandbox cell reads data/sales.csv in the sandbox), with the same outputs."""
    examples = tmp_path / "examples"
    shutil.copytree(EXAMPLES, examples, ignore=shutil.ignore_patterns("*.out.ipynb", ".llm_agent"))
    closed = f"http://127.0.0.1:{closed_port()}"
    result = cli(
        "demo",
        f"--host={closed}",
        f"--notebook={examples / 'quickstart.ipynb'}",
        cwd=tmp_path,
        env={"LLM_AGENT_DATA_ROOT": str(tmp_path / "data")},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    written = nbformat.read(examples / "quickstart.out.ipynb", as_version=4)
    again = nbformat.read(examples / "quickstart.out.ipynb", as_version=4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_AGENT_")}  # not llm-agent run's steering
    env.update({"OLLAMA_HOST": closed, "LLM_AGENT_DATA_ROOT": str(tmp_path / "data")})
    NotebookClient(again, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(examples)}}).execute(env=env)
    assert [c.source for c in again.cells] == [c.source for c in written.cells]
    (sandboxed,) = [c for c in again.cells if c.source.startswith("%%sandbox")]
    assert sandboxed.outputs[0]["text"].startswith("region\nWest     7996.75")


def test_demo_uses_a_live_server_when_one_answers(tmp_path):
    with FakeOllama(EXAMPLES / "scripts" / "quickstart.json") as server:
        result, out = _demo(tmp_path, server.url)
        asked = len(server.requests_for("react"))
    assert result.returncode == 0, result.stderr
    assert "against the live Ollama at" in result.stdout and asked == 2
    assert out.exists()


def test_fake_ollama_command_prints_its_url_and_serves(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"default": "scripted"}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "llm_agent_magic.cli", "fake-ollama", f"--script={script}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("fake-ollama listening on http://127.0.0.1:")
        url = line.split()[-1]
        reply = httpx.post(f"{url}/api/chat", json={"model": "m", "messages": [], "stream": False}, timeout=10)
        assert reply.json()["message"]["content"] == "scripted"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        proc.stdout.close()


def test_unknown_command(tmp_path):
    out = cli("frobnicate", cwd=tmp_path)
    assert out.returncode == 2 and "unknown command 'frobnicate'" in out.stderr


def test_sessions_on_a_corrupt_store_says_what_to_do_without_a_traceback(tmp_path):
    store = tmp_path / ".llm_agent" / "store.sqlite"
    store.parent.mkdir()
    store.write_bytes(b"this is not an SQLite database, it was overwritten by something\n" * 64)
    out = cli("sessions", cwd=tmp_path, env={"LLM_AGENT_DATA_ROOT": str(store.parent)})
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith(f"llm-agent sessions: The conversation store {store} is not a readable SQLite")
    assert f"mv {store} {store}.broken" in out.stderr
    assert store.read_bytes().startswith(b"this is not an SQLite database")  # nothing was changed
