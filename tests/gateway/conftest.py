"""A real Jupyter Kernel Gateway on loopback, started in a folder of its own.

Its kernels run in that folder, not beside the tests' data roots: nothing the sandbox does through it may
count on a shared disk, and the tests check where the kernel's files really are.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TOKEN = "gateway-test-token-1234"
#: A credential in the gateway's own environment: its kernels inherit it, the sandbox must remove it.
PLANTED = {"WAREHOUSE_PASSWORD": "hunter2-hunter2"}


@dataclass
class Gateway:
    url: str
    token: str
    home: Path  # the gateway's working folder, where its kernels run

    def request(self, method: str, path: str) -> tuple[int, object]:
        req = urllib.request.Request(self.url + path, method=method, headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as reply:
                body = reply.read()
                return reply.status, json.loads(body) if body else None
        except urllib.error.HTTPError as exc:
            return exc.code, None

    def kernel_ids(self) -> list[str]:
        status, kernels = self.request("GET", "/api/kernels")
        assert status == 200, status
        assert isinstance(kernels, list)
        return [k["id"] for k in kernels]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def kernel_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    home = tmp_path_factory.mktemp("gateway-home")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_AGENT_", "JUPYTER_GATEWAY_"))}
    # The gateway's python3 kernel spec runs `python`: this venv's, which has ipykernel and pandas.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(PLANTED)
    log = open(home.parent / f"{home.name}.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kernel_gateway", "--KernelGatewayApp.ip=127.0.0.1", f"--KernelGatewayApp.port={port}",
         "--KernelGatewayApp.port_retries=0", f"--KernelGatewayApp.auth_token={TOKEN}",
         "--JupyterWebsocketPersonality.list_kernels=True"],
        cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    gateway = Gateway(f"http://127.0.0.1:{port}", TOKEN, home)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if gateway.request("GET", "/api")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"jupyter kernelgateway did not start: {(home.parent / f'{home.name}.log').read_text()}")
            time.sleep(0.2)
        yield gateway
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def gateway_env(kernel_gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    """This process talks to the gateway with the token from the environment, as a user sets it."""
    monkeypatch.setenv("LLM_AGENT_GATEWAY_TOKEN", kernel_gateway.token)
    return kernel_gateway
