"""``llm-agent``: the command-line front end. Each subcommand is one small app."""

from __future__ import annotations

import asyncio
import sys
import time

from traitlets import Bool, Int, Unicode

from ..config import markdown_table, trait_rows
from .app import LLMAgentApp
from .eval import EvalApp
from .fake_tavily import FakeTavilyApp
from .library_commands import CollectionsApp, ForgetApp, LearnApp
from .run import RunApp


class ConfigApp(LLMAgentApp):
    name = "llm-agent config"
    description = "Print every setting with its current value and where that value came from."
    markdown = Bool(False, help="Print the configuration table of docs/configuration.md instead.").tag(config=True)
    flags = {"markdown": ({"ConfigApp": {"markdown": True}}, "Print the configuration table as markdown.")}

    def start(self) -> None:
        if self.markdown:
            print(markdown_table())
            return
        rows = trait_rows(self.configurables)
        width = max(len(f"{r['cls']}.{r['name']}") for r in rows)
        for r in rows:
            source = self.source_of(r["cls"], r["name"], r["env"])
            print(f"{r['cls'] + '.' + r['name']:<{width}}  {r['value']!r}  ({source})")


class DoctorApp(LLMAgentApp):
    name = "llm-agent doctor"
    description = "Check that everything the agent needs is in place, and say how to fix what is not."
    as_json = Bool(False, help="Print the checks as JSON.").tag(config=True)
    flags = {"json": ({"DoctorApp": {"as_json": True}}, "Print the checks as JSON.")}

    def start(self) -> None:
        from ..agents.diagnostics import run_checks
        from .doctor import render, render_json

        checks = asyncio.run(run_checks(self.llm_config, self.sandbox_config, self.paths_config, self.tools_config))
        print(render_json(checks) if self.as_json else render(checks))
        self.exit(0 if all(c.status != "fail" for c in checks) else 1)


class FakeOllamaApp(LLMAgentApp):
    name = "llm-agent fake-ollama"
    description = (
        "Serve the scripted model server, Ollama's API and the OpenAI API under /v1 (for testing notebooks without a model)."
    )
    script = Unicode("", help="Script file (JSON) with the rules the server answers by.").tag(config=True)
    port = Int(0, help="Port to listen on; 0 picks a free one.").tag(config=True)
    bind = Unicode("127.0.0.1", help="Address to listen on.").tag(config=True)
    aliases = {"script": "FakeOllamaApp.script", "port": "FakeOllamaApp.port", "bind": "FakeOllamaApp.bind"}

    def start(self) -> None:
        from ..testing.fake_ollama import serve_forever_cli

        serve_forever_cli(self.script or None, self.port, host=self.bind)


class DemoApp(LLMAgentApp):
    name = "llm-agent demo"
    description = "Run examples/quickstart.ipynb through llm-agent run: live Ollama if one answers, else its cassette."
    notebook = Unicode("examples/quickstart.ipynb", help="The notebook to run.").tag(config=True)
    output = Unicode(
        "examples/quickstart.out.ipynb",
        help="Where the executed notebook goes: beside the notebook by default, so that the paths its cells use "
        "(data/, cassettes/) hold when it is run again.",
    ).tag(config=True)
    aliases = {**LLMAgentApp.aliases, "notebook": "DemoApp.notebook", "output": "DemoApp.output"}

    def start(self) -> None:
        from pathlib import Path

        from .demo import live_model_available, run_demo

        why_not_live = asyncio.run(live_model_available(self.llm_config, self.paths_config))
        self.exit(run_demo(Path(self.notebook), Path(self.output), why_not_live, self.llm_config.host))


class SessionsApp(LLMAgentApp):
    name = "llm-agent sessions"
    description = "List conversations; rename, delete or export one as markdown."
    examples = """
    llm-agent sessions                                  # list, most recent first
    llm-agent sessions export analysis.ipynb > chat.md
    llm-agent sessions rename analysis.ipynb "Sales Q3"
    llm-agent sessions delete analysis.ipynb
    """

    def start(self) -> None:
        from ..agents.history import Conversations
        from ..exceptions import StoreError

        action, *rest = self.extra_args or ["list"]
        usage = "usage: llm-agent sessions [list | export ID | rename ID TITLE | delete ID]"
        wanted = {"list": 0, "export": 1, "rename": 2, "delete": 1}
        if wanted.get(action) != len(rest):
            print(usage, file=sys.stderr)
            self.exit(2)
        records = Conversations(lambda: self.paths_config)
        try:
            # A corrupt store shows as its message (StoreError says what to do), not a traceback.
            if action == "list":
                sessions = records.sessions()
                if not sessions:
                    print(f"No sessions yet in {self.paths_config.store_path}.")
                for s in sessions:
                    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.updated_at))
                    print(f"{s.id}\t{when}\t{s.message_count} messages\t{s.title}")
            elif action == "export":
                print(records.export(rest[0]))
            elif action == "rename":
                records.rename(rest[0], rest[1])
            else:
                records.delete(rest[0])
        except StoreError as exc:
            print(f"llm-agent sessions: {exc}", file=sys.stderr)
            self.exit(1)


SUBCOMMANDS: dict[str, type[LLMAgentApp]] = {
    "config": ConfigApp,
    "doctor": DoctorApp,
    "fake-ollama": FakeOllamaApp,
    "fake-tavily": FakeTavilyApp,
    "demo": DemoApp,
    "sessions": SessionsApp,
    "run": RunApp,
    "eval": EvalApp,
    "learn": LearnApp,
    "forget": ForgetApp,
    "collections": CollectionsApp,
}


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print("usage: llm-agent COMMAND [options]   (llm-agent COMMAND --help for options)\n\ncommands:")
        for name, app in SUBCOMMANDS.items():
            print(f"  {name:<12} {app.description}")
        sys.exit(0 if args else 2)
    app_cls = SUBCOMMANDS.get(args[0])
    if app_cls is None:
        print(f"llm-agent: unknown command {args[0]!r}; choose one of: {', '.join(SUBCOMMANDS)}", file=sys.stderr)
        sys.exit(2)
    app_cls.launch_instance(args[1:])
