"""Fixtures: a real Jupyter Kernel Gateway on loopback, started in a folder of its own.

Its kernels run in that folder, not beside the tests' data roots: nothing the sandbox does through it may
count on a shared disk, and the tests check where the kernel's files really are.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gateway_helpers import Gateway, running_gateway


@pytest.fixture(scope="session")
def kernel_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(tmp_path_factory.mktemp("gateway-home")) as gateway:
        yield gateway


@pytest.fixture
def gateway_env(kernel_gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    """This process talks to the gateway with the token from the environment, as a user sets it."""
    monkeypatch.setenv("LLM_AGENT_GATEWAY_TOKEN", kernel_gateway.token)
    return kernel_gateway


@pytest.fixture(autouse=True)
def _forget_the_gateway_client() -> Iterator[None]:
    """jupyter_server's GatewayClient is a process-wide singleton: a Jupyter server made by a later test in this
    process must not find it pointing at this gateway (it would take every kernel there)."""
    yield
    from jupyter_server.gateway.gateway_client import GatewayClient

    GatewayClient.clear_instance()
