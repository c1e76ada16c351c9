"""A Jupyter server with the extension, for bench/server.py, in a process of its own (as in a deployment).

It adds one route, ``/bench/lag``: POST starts a probe on the server's event loop that wakes every 5 ms and
records how late it is; DELETE stops it and answers the lags (ms) as JSON.

    python bench/_server_process.py PORT OLLAMA_URL DATA_ROOT
"""

from __future__ import annotations

import asyncio
import json
import sys

from jupyter_server.serverapp import ServerApp
from tornado import web
from traitlets.config import Config

TOKEN = "bench-token"


class LagProbe:
    def __init__(self) -> None:
        self.lags: list[float] = []
        self.task: asyncio.Task[None] | None = None

    async def run(self, period: float = 0.005) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + period
            await asyncio.sleep(period)
            self.lags.append((loop.time() - due) * 1000)


PROBE = LagProbe()


class LagHandler(web.RequestHandler):
    def check_xsrf_cookie(self) -> None:  # a bench-only route on loopback, called without a browser
        return

    def post(self) -> None:
        PROBE.lags = []
        PROBE.task = asyncio.get_running_loop().create_task(PROBE.run())
        self.finish("{}")

    def delete(self) -> None:
        if PROBE.task is not None:
            PROBE.task.cancel()
        self.finish(json.dumps(PROBE.lags))


def main(port: int, ollama_url: str, data_root: str) -> None:
    config = Config(
        {
            "ServerApp": {
                "jpserver_extensions": {"llm_agent_magic.server": True},
                "open_browser": False,
                "root_dir": data_root,
                "allow_root": True,
                "port": port,
                "port_retries": 0,
                "ip": "127.0.0.1",
            },
            "IdentityProvider": {"token": TOKEN},
            "LLMConfig": {"host": ollama_url},
            "PathsConfig": {"data_root": data_root},
        }
    )
    app = ServerApp.instance(config=config, log_level="ERROR")
    app.initialize(argv=[])
    app.web_app.add_handlers(".*$", [(r"/bench/lag", LagHandler)])
    app.start()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
