"""The command line: doctor, demo and fake-ollama, run as a user runs them."""

import json
import os
import signal
import socket
import subprocess
import sys

import httpx

from llm_agent_magic.testing.fake_ollama import FakeOllama


def cli(*args, cwd, env=None, timeout=120):
    env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "llm_agent_magic.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_doctor_reports_each_check_with_its_fix(tmp_path):
    with FakeOllama({"models": ["qwen3:8b", "nomic-embed-text"]}) as server:
        url = server.url
        out = cli("doctor", "--json", f"--host={url}", "--LLMConfig.coder_model=qwen2.5-coder:7b", cwd=tmp_path,
                  env={"TAVILY_API_KEY": ""})
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


def test_demo_streams_from_the_scripted_server_when_no_ollama_answers(tmp_path):
    out = cli("demo", f"--host=http://127.0.0.1:{closed_port()}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "No live model" in out.stdout and "using the scripted Ollama server" in out.stdout
    assert "Notebooks keep code, results and the reasoning" in out.stdout
    assert (tmp_path / ".llm_agent" / "logs" / "llm_calls.jsonl").exists()


def test_demo_uses_a_live_server_when_one_answers(tmp_path):
    with FakeOllama({"models": ["qwen3:8b"], "default": "Live answer."}) as server:
        out = cli("demo", f"--host={server.url}", cwd=tmp_path)
    assert "Using the live Ollama at" in out.stdout and "Live answer." in out.stdout


def test_fake_ollama_command_prints_its_url_and_serves(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"default": "scripted"}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "llm_agent_magic.cli", "fake-ollama", f"--script={script}"],
        stdout=subprocess.PIPE, text=True,
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
