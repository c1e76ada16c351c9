"""Sandbox kernels on another machine, through Jupyter Kernel Gateway or Enterprise Gateway.

Which client, and why: jupyter_client has no gateway client at all (its provisioners start kernels
themselves, which on a cluster means holding the cluster's credentials), so the well-kept client of the
gateway protocol is jupyter_server's ``jupyter_server.gateway``: ``GatewayKernelManager`` is an
``AsyncKernelManager`` (so it fits ``SandboxConfig.kernel_manager_class``), it speaks the REST routes of
both gateways with retries, TLS client certificates and token renewal, and it forwards the ``KERNEL_*``
variables Enterprise Gateway reads to place a kernel (``KERNEL_NAMESPACE``, ``KERNEL_IMAGE``,
``KERNEL_USERNAME``...). It needs no running server: its only process-wide state is the
``GatewayClient`` singleton, which ``configure`` fills from ``SandboxConfig``. It is built for the
server, though, and five of its habits would hurt a plain process such as ``llm-agent run``; the
subclasses below change only those:

- ``is_alive`` answers True for a kernel the gateway no longer has (it only refreshes the model);
- the channel queue waits by spinning on ``asyncio.sleep(0)``, a whole core per waiting channel;
- once the WebSocket closes (the kernel was deleted), every read raises at once without yielding, so a
  reader that retries would block the event loop; here a closed channel is an empty one, and the
  liveness check (the REST model) says the kernel is gone;
- the WebSocket is opened without the token, which a gateway started with an auth token refuses;
- messages are sent without their channel, so the gateway puts them all on shell (a control channel
  interrupt request too);
- its HTTP requests resolve host names in a thread pool, which is gone when the process exits: the kernel
  could not be deleted from an ``atexit`` handler (where the magic closes its sessions), and would be left
  running on the gateway. Here resolving falls back to a direct lookup then.

The token comes from ``$LLM_AGENT_GATEWAY_TOKEN`` (or jupyter_server's own ``$JUPYTER_GATEWAY_AUTH_TOKEN``),
never from a setting that could be printed, and is never logged.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from queue import Empty
from threading import Thread
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from jupyter_server.gateway.gateway_client import GatewayClient
from jupyter_server.gateway.managers import ChannelQueue, GatewayKernelClient, HBChannelQueue
from jupyter_server.gateway.managers import GatewayKernelManager as _ServerGatewayKernelManager
from tornado.netutil import DefaultLoopResolver
from traitlets import Type

from llm_agent_magic.config import SandboxConfig
from llm_agent_magic.exceptions import ConfigurationError

TOKEN_ENV = ("LLM_AGENT_GATEWAY_TOKEN", "JUPYTER_GATEWAY_AUTH_TOKEN")
#: The gateway's kernel spec used when ``SandboxConfig.kernel_name`` is empty.
DEFAULT_KERNEL = "python3"
#: Longest pause between two looks at a channel: short next to a kernel round trip, cheap for the CPU.
POLL_MAX = 0.01


def token() -> str:
    return next((os.environ[name] for name in TOKEN_ENV if os.environ.get(name)), "")


def kernel_name(config: SandboxConfig) -> str:
    return config.kernel_name or DEFAULT_KERNEL


def configure(config: SandboxConfig) -> GatewayClient:
    """Point jupyter_server's process-wide ``GatewayClient`` at ``config.gateway_url`` (with the token).

    A process whose Jupyter server already uses another gateway cannot talk to a second one: that is a
    configuration error, said so.
    """
    url = config.gateway_url
    if not url:
        raise ConfigurationError(
            "The sandbox's kernel manager is a gateway one, but SandboxConfig.gateway_url is empty; set it to the "
            "gateway's URL (or $LLM_AGENT_GATEWAY_URL), e.g. http://gateway:8888."
        )
    client = GatewayClient.instance()
    if client.url and client.url.rstrip("/") != url:
        raise ConfigurationError(
            f"This process already uses the Jupyter gateway {client.url} (the Jupyter server's own), so its sandbox "
            f"kernels cannot go to {url}; set SandboxConfig.gateway_url to {client.url} or leave it empty."
        )
    client.url = url
    client.ws_url = "ws" + url[len("http") :]
    secret = token()
    if secret:
        client.auth_token = secret
    # KERNEL_LAUNCH_TIMEOUT is what Enterprise Gateway waits for a pod; the request must outlast it.
    client.request_timeout = max(float(config.startup_timeout) + client.launch_timeout_pad, 20.0)
    client._connection_args = {}  # built once from the settings above; rebuild after a change
    _install_resolver()
    return client


class _ExitSafeResolver(DefaultLoopResolver):
    """tornado's resolver, looking the name up directly once the thread pool it uses is shut down."""

    async def resolve(self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC) -> list[Any]:
        try:
            return await super().resolve(host, port, family)
        except RuntimeError:  # "cannot schedule new futures after shutdown": the process is exiting
            return [(fam, addr) for fam, _, _, _, addr in socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)]


def _install_resolver() -> None:
    """Make the HTTP client of the running loop (the sandbox's own) use ``_ExitSafeResolver``.

    tornado keeps one client per loop and takes settings from its first creation, so this affects only the
    sandbox loop's requests, never a Jupyter server's loop.
    """
    from tornado.httpclient import AsyncHTTPClient

    AsyncHTTPClient(resolver=_ExitSafeResolver())


def auth_header() -> list[str]:
    client = GatewayClient.instance()
    if not client.auth_token:
        return []
    value = f"{client.auth_scheme} {client.auth_token}" if client.auth_scheme else client.auth_token
    return [f"{client.auth_header_key}: {value}"]


class _QuietChannel(ChannelQueue):
    """A channel that waits without spinning, reads as empty once the gateway closed the WebSocket, and says
    which channel a message is for (without it, gateways put everything on shell: an interrupt too)."""

    def send(self, msg: dict[str, Any]) -> None:
        super().send({**msg, "channel": self.channel_name})

    async def _async_get(self, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        pause = 0.0005
        while True:
            try:
                return self.get(block=False)
            except Empty:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise
                await asyncio.sleep(pause if left is None else min(pause, left))
                pause = min(pause * 2, POLL_MAX)


class _QuietHBChannel(HBChannelQueue, _QuietChannel):
    pass


class SandboxGatewayKernelClient(GatewayKernelClient):
    """jupyter_server's gateway client with quiet channels and the token on the WebSocket."""

    async def start_channels(  # type: ignore[override]  # async, as jupyter_server's
        self, shell: bool = True, iopub: bool = True, stdin: bool = True, hb: bool = True, control: bool = True
    ) -> None:
        import websocket  # websocket-client, which jupyter_server's gateway client uses
        from jupyter_core.utils import ensure_async
        from jupyter_server.utils import url_escape, url_path_join

        client = GatewayClient.instance()
        ws_url = url_path_join(client.ws_url or "", client.kernels_endpoint, url_escape(self.kernel_id), "channels")
        sslopt = {"ca_certs": client.ca_certs, "certfile": client.client_cert, "keyfile": client.client_key}
        # A blocking connect: in a thread, so the sandbox's loop keeps serving the other sessions.
        self.channel_socket = await asyncio.to_thread(
            websocket.create_connection,
            ws_url,
            timeout=client.KERNEL_LAUNCH_TIMEOUT,
            enable_multithread=True,
            sslopt={k: v for k, v in sslopt.items() if v},
            header=auth_header(),
        )
        self.channel_socket.settimeout(None)  # the router thread blocks on recv until the socket closes
        # The channels of jupyter_client's client (skipping the parent's start_channels, replaced here).
        await ensure_async(super(GatewayKernelClient, self).start_channels(shell, iopub, stdin, hb, control))

        self.response_router = Thread(target=self._route_responses, name="llm-agent-gateway-ws", daemon=True)
        self.response_router.start()

    def _channel(self, name: str) -> ChannelQueue:
        attr = f"_{name}_channel"
        channel: ChannelQueue | None = getattr(self, attr)
        if channel is None:
            assert self.channel_socket is not None and self._channel_queues is not None
            channel = (_QuietHBChannel if name == "hb" else _QuietChannel)(name, self.channel_socket, self.log)
            setattr(self, attr, channel)
            self._channel_queues[name] = channel
        return channel

    @property
    def shell_channel(self) -> ChannelQueue:
        return self._channel("shell")

    @property
    def iopub_channel(self) -> ChannelQueue:
        return self._channel("iopub")

    @property
    def stdin_channel(self) -> ChannelQueue:
        return self._channel("stdin")

    @property
    def hb_channel(self) -> ChannelQueue:
        return self._channel("hb")

    @property
    def control_channel(self) -> ChannelQueue:
        return self._channel("control")


class GatewayKernelManager(_ServerGatewayKernelManager):
    """jupyter_server's ``GatewayKernelManager`` that knows when the gateway no longer has its kernel."""

    client_class = "llm_agent_magic.sandbox.gateway.SandboxGatewayKernelClient"
    client_factory = Type(klass="llm_agent_magic.sandbox.gateway.SandboxGatewayKernelClient")

    async def is_alive(self) -> bool:  # type: ignore[override]  # async, as jupyter_server's
        if not self.has_kernel:
            return False
        try:
            await self.refresh_model()  # type: ignore[no-untyped-call]
        except Exception as exc:  # noqa: BLE001  # the gateway is unreachable: the kernel cannot be used either
            self.log.debug("gateway kernel model: %s", exc)
            return False
        return self.kernel is not None


def manager_class(config: SandboxConfig) -> type[AsyncKernelManager]:
    """The manager class a launch uses: the configured one, or this gateway manager when a gateway is set."""
    cls: type[AsyncKernelManager] = config.kernel_manager_class
    if config.gateway_url and not issubclass(cls, _ServerGatewayKernelManager):
        if cls is not AsyncKernelManager:
            raise ConfigurationError(
                f"SandboxConfig.gateway_url is set, but kernel_manager_class is {cls.__module__}.{cls.__qualname__}, "
                f"which does not talk to a gateway; leave kernel_manager_class at its default or empty gateway_url."
            )
        return GatewayKernelManager
    return cls


def describe_level() -> str:
    return (
        "gateway: the gateway decides (its kernel image, pod or container, network policy and limits); "
        "audit hook and scrubbed environment inside the kernel; no local bubblewrap, Landlock or seccomp"
    )


async def start_kernel(config: SandboxConfig, session_id: str) -> tuple[AsyncKernelManager, Any]:
    """Ask the gateway for a kernel and connect to it; returns (manager, client with channels open).

    No working folder is sent: the gateway's kernel shares no disk with this process (``transport.py``).
    ``KERNEL_*`` variables of this process's environment reach the gateway (Enterprise Gateway reads them).
    """
    from llm_agent_magic.exceptions import SandboxStartError

    configure(config)
    km = manager_class(config)()
    name = kernel_name(config)
    try:
        await km.start_kernel(kernel_name=name)
    except Exception as exc:  # tornado's HTTPError with the gateway's reason, or a connection error
        raise SandboxStartError(
            session_id,
            f"the gateway at {config.gateway_url} did not start a {name!r} kernel ({_short(exc)}); "
            f"`llm-agent doctor` lists the kernel specs it offers (SandboxConfig.kernel_name)",
        ) from exc
    kc: Any = km.client()  # a SandboxGatewayKernelClient, whose start_channels is async
    kc.allow_stdin = False
    try:
        await kc.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=True)
    except Exception as exc:
        await km.shutdown_kernel(now=True)
        raise SandboxStartError(
            session_id,
            f"the gateway at {config.gateway_url} started a kernel but its channels could not be opened ({_short(exc)})",
        ) from exc
    return km, kc


def _short(exc: BaseException) -> str:
    """The error's text (tornado's HTTPError keeps it as a format and its arguments), never with the token."""
    text = str(exc)
    log_message, args = getattr(exc, "log_message", None), getattr(exc, "args", ())
    if isinstance(log_message, str):
        try:
            text = log_message % tuple(args[1:])
        except (TypeError, ValueError):
            text = log_message
    secret = token()
    return (text.replace(secret, "[REDACTED]") if secret else text)[:300]


def probe(config: SandboxConfig, timeout: float = 10.0) -> dict[str, Any]:
    """What ``llm-agent doctor`` shows: does the gateway answer, which kernel specs it offers, and is the one
    the sandbox asks for among them. ``{"ok", "detail", "fix", "specs", "version"}``; never the token."""
    import httpx

    url, name = config.gateway_url, kernel_name(config)
    headers = {"Authorization": f"token {token()}"} if token() else {}
    try:
        with httpx.Client(timeout=timeout, headers=headers, follow_redirects=False) as http:
            api = http.get(f"{url}/api")
            specs_reply = http.get(f"{url}/api/kernelspecs")
    except httpx.HTTPError as exc:
        return {
            "ok": False,
            "detail": f"{url} does not answer ({type(exc).__name__}: {_short(exc)})",
            "fix": "start the gateway (jupyter kernelgateway / jupyter enterprisegateway) or correct "
            "SandboxConfig.gateway_url ($LLM_AGENT_GATEWAY_URL)",
            "specs": [],
            "version": "",
        }
    if specs_reply.status_code in (401, 403):
        return {
            "ok": False,
            "detail": f"{url} refuses this process (HTTP {specs_reply.status_code})",
            "fix": f"set the gateway's token in ${TOKEN_ENV[0]}",
            "specs": [],
            "version": "",
        }
    try:
        version = str(api.json().get("version", ""))[:40] if api.status_code == 200 else ""
        found = specs_reply.json().get("kernelspecs", {}) if specs_reply.status_code == 200 else None
    except ValueError:
        found = None
    if not isinstance(found, dict):
        return {
            "ok": False,
            "detail": f"{url} answered HTTP {specs_reply.status_code} without kernel specs: it "
            f"does not look like a Jupyter gateway",
            "fix": "point SandboxConfig.gateway_url at the gateway's base URL",
            "specs": [],
            "version": "",
        }
    specs = sorted(str(k)[:80] for k in found)[:50]
    listed = ", ".join(specs) or "none"
    if name not in found:
        return {
            "ok": False,
            "detail": f"{url} answers (version {version or '?'}) but has no kernel spec {name!r}; it offers: {listed}",
            "fix": f"set SandboxConfig.kernel_name to one of: {listed}",
            "specs": specs,
            "version": version,
        }
    return {
        "ok": True,
        "detail": f"{url} answers (version {version or '?'}); kernel specs: {listed}; the sandbox uses {name!r}",
        "fix": "",
        "specs": specs,
        "version": version,
    }
