"""``llm-agent doctor`` with a gateway: it answers and lists its kernel specs, or says what to fix."""

from __future__ import annotations

import json
from pathlib import Path

import cli_helpers
import pytest
from gateway_helpers import Gateway

from llm_agent_magic.agents.diagnostics import check_gateway
from llm_agent_magic.config import SandboxConfig


def test_doctor_lists_the_gateways_kernel_specs(tmp_path: Path, kernel_gateway: Gateway) -> None:
    env = {
        "LLM_AGENT_GATEWAY_URL": kernel_gateway.url,
        "LLM_AGENT_GATEWAY_TOKEN": kernel_gateway.token,
        "LLM_AGENT_DATA_ROOT": str(tmp_path / "data"),
        "OLLAMA_HOST": "http://127.0.0.1:9",
    }
    out = cli_helpers.run_cli("doctor", "--json", cwd=tmp_path, env=env, clean=True)
    checks = {c["name"]: c for c in json.loads(out.stdout)}
    gateway = checks["sandbox gateway"]
    assert gateway["status"] == "ok", gateway
    assert "kernel specs: python3" in gateway["detail"] and "the sandbox uses 'python3'" in gateway["detail"]
    assert checks["sandbox isolation"]["status"] == "warn" and "gateway" in checks["sandbox isolation"]["detail"]
    assert "sandbox bubblewrap" not in checks  # this machine's layers do not apply to the gateway's kernels
    assert kernel_gateway.token not in out.stdout + out.stderr


@pytest.mark.slow
def test_doctor_says_what_to_fix(kernel_gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_AGENT_GATEWAY_TOKEN", raising=False)
    monkeypatch.delenv("JUPYTER_GATEWAY_AUTH_TOKEN", raising=False)
    refused = check_gateway(SandboxConfig(gateway_url=kernel_gateway.url))[0]
    assert refused.status == "fail" and "refuses this process (HTTP 401)" in refused.detail
    assert "LLM_AGENT_GATEWAY_TOKEN" in refused.fix
    monkeypatch.setenv("LLM_AGENT_GATEWAY_TOKEN", kernel_gateway.token)
    missing = check_gateway(SandboxConfig(gateway_url=kernel_gateway.url, kernel_name="julia-1.9"))[0]
    assert missing.status == "fail" and "has no kernel spec 'julia-1.9'" in missing.detail
    assert missing.fix == "set SandboxConfig.kernel_name to one of: python3"
    down = check_gateway(SandboxConfig(gateway_url="http://127.0.0.1:9"))[0]
    assert down.status == "fail" and "does not answer" in down.detail and "gateway_url" in down.fix
