"""A real Jupyter Kernel Gateway on loopback, started in a folder of its own (see ``conftest.py``)."""

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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat

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


@contextmanager
def running_gateway(home: Path) -> Iterator[Gateway]:
    """``jupyter kernelgateway`` in ``home`` on a free loopback port, with a token; stopped on exit."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_AGENT_", "JUPYTER_GATEWAY_"))}
    # The gateway's python3 kernel spec runs `python`: this venv's, which has ipykernel and pandas.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(PLANTED)
    log = open(home.parent / f"{home.name}.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kernel_gateway",
            "--KernelGatewayApp.ip=127.0.0.1",
            f"--KernelGatewayApp.port={port}",
            "--KernelGatewayApp.port_retries=0",
            f"--KernelGatewayApp.auth_token={TOKEN}",
            "--JupyterWebsocketPersonality.list_kernels=True",
        ],
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
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


def write_notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path
