"""What the scripted servers share: running an HTTP server in a background thread on 127.0.0.1."""

from __future__ import annotations

import abc
import signal
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

S = TypeVar("S", bound="BackgroundServer")


class QuietHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server for tests: quick to bind, a ``stopping`` event, quiet about hung-up clients."""

    daemon_threads = True
    block_on_close = False  # BackgroundServer.stop() joins with a deadline instead

    def __init__(self, address: tuple[str, int], fake: Any, handler: type[BaseHTTPRequestHandler]) -> None:
        self.fake = fake
        self.stopping = threading.Event()
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a DNS lookup that can take seconds.
        socketserver.TCPServer.server_bind(self)
        # An AF_INET address: the host is a str (typeshed allows bytes for other families).
        self.server_name, self.server_port = self.server_address[:2]  # type: ignore[assignment]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer (a timeout, a closed stream, stop()) is normal here.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class BackgroundServer(abc.ABC):
    """Start/stop, ``url``/``port`` and context managers (sync and async) for a threaded test server.

    Subclasses implement ``_make_server()`` returning a server with a ``stopping`` event, and may
    extend ``_release(server)`` to free hanging connections after shutdown.
    """

    label = "server"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self._requested_port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @abc.abstractmethod
    def _make_server(self) -> Any:
        """A ``socketserver`` server bound to (host, port), with a ``stopping`` threading.Event."""

    def _release(self, server: Any) -> None:  # noqa: B027 - an optional hook: most servers need nothing here
        """Called after shutdown, before the socket closes."""

    def start(self: S) -> S:
        if self._server is None:
            self._server = self._make_server()
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{self.label}-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; returns within about a second even if requests are hanging."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        self._release(server)
        server.server_close()
        if self._thread is not None:
            self._thread.join(1.0)

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self: S) -> S:
        return self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running; call start() first")
        port: int = self._server.server_address[1]
        return port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def serve_until_signal(server: BackgroundServer, name: str) -> None:
    """Run ``server`` until SIGINT or SIGTERM, saying where it listens (``llm-agent fake-ollama``, ``fake-tavily``)."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with server:
            print(f"{name} listening on {server.url}", flush=True)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
