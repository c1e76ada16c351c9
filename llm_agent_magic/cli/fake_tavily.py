"""``llm-agent fake-tavily``: the Tavily stand-in from a shell, like ``llm-agent fake-ollama``."""

from __future__ import annotations

from traitlets import Int, Unicode

from .app import LLMAgentApp


class FakeTavilyApp(LLMAgentApp):
    name = "llm-agent fake-tavily"
    description = "Serve the scripted Tavily stand-in (web search without the web); point TAVILY_BASE_URL at it."
    script = Unicode("", help="Script file (JSON) with the results the server answers by.").tag(config=True)
    port = Int(0, help="Port to listen on; 0 picks a free one.").tag(config=True)
    bind = Unicode("127.0.0.1", help="Address to listen on.").tag(config=True)
    aliases = {"script": "FakeTavilyApp.script", "port": "FakeTavilyApp.port", "bind": "FakeTavilyApp.bind"}

    def start(self) -> None:
        from ..testing._background import serve_until_signal
        from ..testing.fake_tavily import FakeTavily

        serve_until_signal(FakeTavily(self.script or None, host=self.bind, port=self.port), "fake-tavily")
