"""``%%agent`` and ``%agent ...``: parse what the user typed, hand it to the session, render what comes back.

No agent logic here: requests go to ``AgentSession.run``; everything the user sees is rendered
from its events (``render.py``) by ``stream.RunStream``.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import time
import traceback
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display

from ..agents.context import cells_from_history, describe_variables, read_notebook
from ..agents.fix import explain_request, fix_diff, fix_request, names_used, proposed_fix
from ..cells import bundle_problem
from ..exceptions import AgentRunFailed, BadRequest, LLMAgentError, SetupError
from ..notebook_context import MAX_CELLS, NotebookContext
from ..run_requests import RunRequest
from ..run_summary import RunSummary
from ..safe_text import markdown_data, render_markdown
from ..text import code_fence
from .approve import kernel_takes_input
from .namespace import user_variables
from .render import table_data
from .sandbox_cell import SKIP_FLAG, SKIPPED_NOTE, raise_if_failed, show_outputs
from .sessions import ShellSessions, default_session_id, env_cassette, notebook_known
from .stream import RunStream, show_stored

LINE_COMMANDS = {
    "status": "session id, model, cassette mode, sandbox and its isolation; then the checks of `llm-agent doctor`",
    "history [N]": "the session's last N messages (default 20)",
    "reset": "a new conversation and a fresh sandbox (variables and snapshots cleared)",
    "vars": "the sandbox's variables and their snapshots",
    "pull NAME [as LOCAL]": "a sandbox variable's snapshot into this notebook",
    "push NAME": "a DataFrame of this notebook into the sandbox",
    "models": "the models the Ollama server has",
    "sessions": "every stored session",
    "learn PATH... [--collection NAME] [--reembed]": "add documents to a retrieval collection rag_search searches",
    "forget PATH... | --all [--collection NAME]": "remove documents from a collection, or delete it",
    "collections": "the retrieval collections: files, chunks, embedding model, size on disk, last update",
    "record PATH": "record model answers to a cassette (sessions from now on; $LLM_AGENT_CASSETTE_MODE wins)",
    "replay PATH": "answer from a cassette instead of the model ($LLM_AGENT_CASSETTE_MODE wins)",
    "live": "talk to the model again, no cassette ($LLM_AGENT_CASSETTE_MODE wins)",
    "fix [--apply]": "ask for a fix of the last cell that failed; shown as a diff, --apply puts it into the next cell",
    "explain [N]": "ask what cell N (default: the last that failed, else the previous one) does, or why it failed",
}
_FIELD = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_VALUE_CHARS = 2000
#: What copying a DataFrame into the sandbox raises for a reason the user can fix: the sandbox's own errors,
#: a disk problem, or columns parquet cannot hold (pyarrow's errors are ValueError and TypeError).
PUSH_ERRORS = (LLMAgentError, OSError, ValueError, TypeError)
MAX_LISTED_COLUMNS = 20
#: Errors that mean the model could not be asked at all.
MODEL_MISSING = ("OllamaUnavailable",)
STORED_NOTE = (
    "llm-agent: this request was answered before (same text, options and files): its stored answer "
    "is shown and the model was not asked; %%agent --rerun asks again."
)


@magic_arguments(name="%%agent")
@argument(
    "--mode",
    choices=["auto", "chat", "react", "plan"],
    default="auto",
    help="How to answer: auto (the agent chooses), chat, react (tools step by step), plan (plan, then execute).",
)
@argument("--model", default=None, help="Model for this run only.")
@argument("--session", default=None, help="Session id (default: $LLM_AGENT_SESSION, else the notebook's path).")
@argument("--files", nargs="+", default=[], metavar="PATH", help="Files to copy into the sandbox's workspace.")
@argument("--dry-run", action="store_true", help="Show the code the agent would run first; run nothing.")
@argument(
    "--approve",
    action="store_true",
    help="Ask Run / edit / skip before each generated cell runs (default: AgentConfig.approval).",
)
@argument("--quiet", action="store_true", help="No live display; only the final result.")
@argument(
    "--rerun",
    action="store_true",
    help="Ask the model again, even when this same request was answered before (its stored answer is shown otherwise).",
)
def _cell_options(line: str, cell: str | None = None) -> None:
    """The options of %%agent (the parser is built from the decorators)."""


# IPython's help formatter writes usage as a reST literal block; messages and help want plain text.
_PLAIN = argparse.ArgumentParser(
    prog="%%agent",
    parents=[_cell_options.parser],
    add_help=False,
    description="Ask the agent: the cell body is the request. {name} inserts a variable of this notebook "
    "(a DataFrame is copied into the sandbox under that name); {{ and }} are literal braces.",
)
CELL_USAGE = " ".join(_PLAIN.format_usage().split())


@magic_arguments(name="%%sandbox")
@argument("--session", default=None, help="Session id (default: the one %%agent uses in this notebook).")
@argument(SKIP_FLAG, action="store_true", help="Run nothing: a cell kept for the record (skipped or failed).")
def _sandbox_options(line: str, cell: str | None = None) -> None:
    """The options of %%sandbox (the parser is built from the decorators)."""


_SANDBOX_PLAIN = argparse.ArgumentParser(
    prog="%%sandbox",
    parents=[_sandbox_options.parser],
    add_help=False,
    description="Run the cell in the sandbox kernel of this notebook's agent session (where the agent's code "
    "runs): its variables are there for the next %%agent and for %agent pull. The model is not asked.",
)
SANDBOX_USAGE = " ".join(_SANDBOX_PLAIN.format_usage().split())
LINE_USAGE = "usage: %agent COMMAND [--session ID]   commands: " + ", ".join(c.split()[0] for c in LINE_COMMANDS)


def _usage_error(message: str, usage: str = CELL_USAGE) -> UsageError:
    return UsageError(f"{message}\n{usage}")


def split_words(line: str, usage: str) -> list[str]:
    """The words of a magic's line as a POSIX shell reads them: quotes and backslashes group, then go."""
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise _usage_error(
            f"Cannot read the options ({exc}): close the quote, or escape the character with a backslash.", usage
        ) from None


def parse_cell_options(line: str) -> argparse.Namespace:
    """The ``%%agent`` options; ``--files "a b.csv"`` is the file ``a b.csv`` (IPython's own parser keeps
    the quotes)."""
    words = split_words(line, CELL_USAGE)
    try:
        options: argparse.Namespace = _cell_options.parser.parse_args(words)
        return options
    except UsageError as exc:
        raise _usage_error(str(exc)) from None


def _describe_frame(name: str, df: Any) -> str:
    columns = [str(c) for c in df.columns]
    listed = ", ".join(columns[:MAX_LISTED_COLUMNS]) + (
        f", ... {len(columns) - MAX_LISTED_COLUMNS} more" if len(columns) > MAX_LISTED_COLUMNS else ""
    )
    rows, cols = df.shape
    return f"The DataFrame `{name}` ({rows} rows x {cols} columns: {listed}) is available in the sandbox under that name."


def _is_dataframe(value: Any) -> bool:
    import sys

    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, pd.DataFrame)


def interpolate(request: str, namespace: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Fill ``{name}`` from the namespace; returns the request and the DataFrames to push."""
    frames: dict[str, Any] = {}

    def fill(match: re.Match[str]) -> str:
        token, name = match.group(0), match.group(1)
        if name is None:
            return token[0]
        if name not in namespace:
            raise _usage_error(
                f"{{{name}}} in the request: this notebook has no variable named {name!r}. "
                f"Define it first, or write {{{{{name}}}}} for literal braces."
            )
        value = namespace[name]
        if _is_dataframe(value):
            frames[name] = value
            return f"`{name}`"
        text = str(value)
        return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + " ..."

    text = _FIELD.sub(fill, request)
    if frames:
        text += "\n\n" + "\n".join(_describe_frame(n, df) for n, df in frames.items())
    return text, frames


@magics_class
class AgentMagics(Magics):
    """The ``agent`` magic: ``%%agent`` asks, ``%agent COMMAND`` manages the session."""

    shell: InteractiveShell  # always given: load_ipython_extension passes the running shell

    def __init__(self, shell: Any, agent: ShellSessions) -> None:
        super().__init__(shell)
        # Not `self.agent`: that would hide the magic method of the same name.
        self.sessions = agent
        #: The last cell of this kernel that raised (not an agent command): what %agent fix fixes.
        self.last_failure: FailedCell | None = None
        shell.events.register("post_run_cell", self.remember_failure)

    def remember_failure(self, result: Any) -> None:
        error = result.error_in_exec or result.error_before_exec
        source = getattr(result.info, "raw_cell", "") or ""
        if error is None or source.lstrip().startswith(("%agent", "%%agent")):
            return
        frames = [f for f in traceback.extract_tb(error.__traceback__) if "IPython" + os.sep + "core" not in f.filename]
        text = "".join(
            [
                "Traceback (most recent call last):\n",
                *traceback.format_list(frames),
                *traceback.format_exception_only(type(error), error),
            ]
        )
        self.last_failure = FailedCell(int(getattr(result, "execution_count", 0) or 0), source, text)

    @line_cell_magic
    def agent(self, line: str, cell: str | None = None) -> None:
        if cell is None:
            self._line(line)
        else:
            self._cell(line, cell)

    @cell_magic
    def sandbox(self, line: str, cell: str) -> None:
        """Run the cell in the sandbox kernel of this notebook's agent session (``%%sandbox?`` for the options)."""
        words = split_words(line, SANDBOX_USAGE)
        try:
            args = _sandbox_options.parser.parse_args(words)
        except UsageError as exc:
            raise _usage_error(str(exc), SANDBOX_USAGE) from None
        if args.skip:
            print(SKIPPED_NOTE)
            return
        session_id = args.session or default_session_id(self.shell.user_ns)
        self._session(session_id)
        self._say_if_busy(session_id)
        try:
            result = self.sessions.loop.call(self.sessions.manager.execute_cell(session_id, cell))
        except LLMAgentError as exc:  # SessionBusy (a run kept the session past the wait), or a run of this session
            raise UsageError(str(exc)) from None
        show_outputs(result.outputs)
        raise_if_failed(result)

    # --- %%agent ---------------------------------------------------------------------------------------

    def _cell(self, line: str, cell: str) -> None:  # noqa: C901  # the options of %%agent, each checked where it is read
        args = parse_cell_options(line)
        request = cell.strip()
        if not request:
            raise _usage_error("The cell is empty: write the request below the %%agent line.")
        ns = self.shell.user_ns
        request, frames = interpolate(request, ns)
        files = []
        for path in args.files:
            full = os.path.abspath(os.path.expanduser(path))
            if not os.path.lexists(full):  # a link, a folder or a pipe is refused when attached, with why
                raise _usage_error(f"--files: {path} does not exist (looked in {os.path.dirname(full)}).")
            files.append(full)
        session_id = args.session or default_session_id(ns)
        if self.sessions.resets_on_open(session_id):
            self._say_if_busy(session_id)
        session = self._session(session_id)
        approval = True if args.approve else None  # None: the session's AgentConfig.approval
        if (args.approve or session.config.approval) and not args.dry_run and not kernel_takes_input(self.shell):
            raise UsageError(
                "Approval (--approve or AgentConfig.approval) asks Run / edit / skip through an input request, and "
                "this front end cannot answer one (llm-agent run and nbclient cannot). Remove --approve, or set "
                "AgentConfig.approval = False for this run (llm-agent run --AgentConfig.approval=False)."
            )
        if frames:
            self._say_if_busy(session_id)
        for name, df in frames.items():
            try:
                self.sessions.loop.call(self.sessions.manager.push(session_id, name, df))
            except PUSH_ERRORS as exc:
                raise UsageError(f"Could not copy the DataFrame {name!r} into the sandbox: {exc}") from None
        try:
            context = None if session.config.context == "none" else self._notebook_context(cell)
            run = RunRequest(
                request,
                mode=args.mode,
                model=args.model,
                files=files,
                dry_run=args.dry_run,
                approval=approval,
                origin=self.sessions.manager.front_end,
                folder=os.getcwd(),
                context=context,
            )
        except BadRequest as exc:
            raise _usage_error(str(exc)) from None
        model = args.model or session.llm.config.model
        if not args.rerun and not frames:  # a DataFrame's values are not part of the request: always ask
            any_session = args.session is None and not notebook_known(ns)
            try:
                stored = self.sessions.loop.call(self.sessions.manager.stored_answer(session_id, run, any_session=any_session))
            except LLMAgentError as exc:
                raise UsageError(str(exc)) from None
            if stored is not None:
                print(STORED_NOTE)
                show_stored(stored, session_id=session_id, model=model, include_failed=session.config.include_failed_cells)
                return
        stream = RunStream(self.sessions.loop, self.sessions.manager.runs, session_id, quiet=args.quiet, dry_run=args.dry_run)
        stream.run(run)
        bundle = stream.finish(session_id=session_id, model=model, include_failed=session.config.include_failed_cells)
        problem = bundle_problem(bundle)
        if problem is not None:
            unreachable = any(e.get("kind") in MODEL_MISSING for e in bundle.get("errors", []))
            raise AgentRunFailed(problem, model_needed=unreachable)

    def _notebook_context(self, cell: str) -> NotebookContext:
        """What this kernel sees of its notebook: the file on disk when the notebook is known (cells, outputs and
        errors as last saved), else the shell's history; the user's variables (names, types, columns only)."""
        ns = self.shell.user_ns
        path = next(
            (
                p
                for p in (os.environ.get("JPY_SESSION_NAME"), ns.get("__vsc_ipynb_file__"))
                if isinstance(p, str) and p.endswith(".ipynb") and os.path.isfile(p)
            ),
            "",
        )
        cells = read_notebook(path) if path else []
        if not cells:
            cells = cells_from_history(list(ns.get("In", [])), dict(ns.get("Out", {})))
        request = cell.strip()
        active = next((i for i in range(len(cells) - 1, -1, -1) if request and request in cells[i].source), -1)
        variables = user_variables(self.shell)
        return NotebookContext(
            cells=cells[-MAX_CELLS:],
            active=active - max(0, len(cells) - MAX_CELLS) if active >= max(0, len(cells) - MAX_CELLS) else -1,
            variables=variables,
        )

    def _session(self, session_id: str) -> Any:
        try:
            return self.sessions.session(session_id)
        except SetupError as exc:
            raise UsageError(str(exc)) from None

    def _say_if_busy(self, session_id: str) -> None:
        """Before a command that waits for the session's run lock: whom it waits for (a run shows it live)."""
        holder = self.sessions.manager.busy(session_id)
        if holder is not None:
            _, sandbox, _, _ = self._effective()
            print(f"Waiting for {holder} to finish (at most {sandbox.session_wait_timeout:g} s)...")

    # --- %agent COMMAND ----------------------------------------------------------------------------------

    def _line(self, line: str) -> None:
        words = split_words(line, LINE_USAGE)
        session_id = None
        if "--session" in words:
            at = words.index("--session")
            if at + 1 >= len(words):
                raise _usage_error("--session needs an id.", LINE_USAGE)
            session_id = words[at + 1]
            del words[at : at + 2]
        if not words or words[0] in ("help", "-h", "--help"):
            print(self._help())
            return
        command, rest = words[0], words[1:]
        handler = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            raise _usage_error(f"Unknown command {command!r}.", LINE_USAGE)
        handler(rest, session_id or default_session_id(self.shell.user_ns))

    def _help(self) -> str:
        return HELP

    @staticmethod
    def _expect(rest: list[str], count: int, usage: str) -> None:
        if len(rest) != count:
            raise _usage_error(f"Expected: %agent {usage}", LINE_USAGE)

    def _cmd_status(self, rest: list[str], session_id: str) -> None:
        self._expect(rest, 0, "status")
        from .status import gather_status, status_data

        display(status_data(*gather_status(self.sessions, session_id)), raw=True)

    def _cmd_history(self, rest: list[str], session_id: str) -> None:
        if len(rest) > 1 or (rest and not rest[0].isdigit()):
            raise _usage_error("Expected: %agent history [N]", LINE_USAGE)
        try:
            messages = self.sessions.manager.history(session_id, int(rest[0]) if rest else 20)
        except SetupError as exc:
            raise UsageError(str(exc)) from None
        if not messages:
            text = f"No messages yet in session {session_id}."
            display({"text/plain": text}, raw=True)
            return
        # Each message read alone: a fence one leaves open cannot take the next ones in.
        rendered = "".join(render_markdown(f"**{m['role']}**: {m['content']}") for m in messages)
        plain = "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)
        display({"text/html": rendered, "text/plain": plain}, raw=True)

    def _cmd_reset(self, rest: list[str], session_id: str) -> None:
        self._expect(rest, 0, "reset")
        self._say_if_busy(session_id)
        try:
            self.sessions.reset(session_id)
        except LLMAgentError as exc:  # SetupError, or SessionBusy: another run kept the session past the wait
            raise UsageError(str(exc)) from None
        print(f"Session {session_id}: new conversation; fresh sandbox, no variables or snapshots.")

    def _cmd_vars(self, rest: list[str], session_id: str) -> None:
        self._expect(rest, 0, "vars")
        self._session(session_id)
        self._say_if_busy(session_id)
        try:
            variables = self.sessions.loop.call(self.sessions.manager.variables(session_id))
        except LLMAgentError as exc:  # SessionBusy: another run kept the session past the wait
            raise UsageError(f"%agent vars: {exc}") from None
        rows = [[r.name, r.type, r.size, r.snapshot] for r in variables]
        display(table_data(["name", "type", "size", "snapshot"], rows, "The sandbox has no variables yet."), raw=True)

    def _cmd_pull(self, rest: list[str], session_id: str) -> None:
        if len(rest) == 1:
            name, local = rest[0], rest[0]
        elif len(rest) == 3 and rest[1] == "as":
            name, local = rest[0], rest[2]
        else:
            raise _usage_error("Expected: %agent pull NAME [as LOCAL]", LINE_USAGE)
        if not local.isidentifier():
            raise _usage_error(f"{local!r} is not a valid Python name.", LINE_USAGE)
        self._say_if_busy(session_id)
        try:
            value = self.sessions.loop.call(self.sessions.manager.pull(session_id, name))
        except KeyError as exc:
            message = exc.args[0] if exc.args else str(exc)
            raise UsageError(f"%agent pull: {message}") from None
        self.shell.user_ns[local] = value
        print(f"{local} = {name} from the sandbox ({type(value).__name__}{_shape(value)})")

    def _cmd_push(self, rest: list[str], session_id: str) -> None:
        self._expect(rest, 1, "push NAME")
        name = rest[0]
        if name not in self.shell.user_ns:
            raise _usage_error(f"%agent push: this notebook has no variable named {name!r}.", LINE_USAGE)
        value = self.shell.user_ns[name]
        if not _is_dataframe(value):
            raise _usage_error(f"%agent push takes a pandas DataFrame; {name} is of type {type(value).__name__}.", LINE_USAGE)
        self._session(session_id)
        self._say_if_busy(session_id)
        try:
            self.sessions.loop.call(self.sessions.manager.push(session_id, name, value))
        except PUSH_ERRORS as exc:
            raise UsageError(f"%agent push: could not copy {name!r} into the sandbox: {exc}") from None
        print(f"{name} is in the sandbox ({type(value).__name__}{_shape(value)})")

    def _cmd_models(self, rest: list[str], session_id: str) -> None:
        self._expect(rest, 0, "models")
        from .status import list_models

        llm, _, _, _ = self._effective()
        try:
            models = list_models(self.sessions, llm)
        except LLMAgentError as exc:
            raise UsageError(str(exc)) from None
        in_use = {llm.model, llm.coder_model, llm.classifier_model, llm.embedding_model} - {""}
        rows = [[m, "configured" if m in in_use or m.removesuffix(":latest") in in_use else ""] for m in models]
        where = llm.base_url if llm.provider == "openai" else llm.host
        display(table_data(["model", ""], rows, f"The server at {where} has no models."), raw=True)

    def _cmd_sessions(self, rest: list[str], session_id: str) -> None:
        self._expect(rest, 0, "sessions")
        sessions = self.sessions.manager.conversations.sessions()
        rows = [
            [
                ("* " if s.id == session_id else "") + s.id,
                time.strftime("%Y-%m-%d %H:%M", time.localtime(s.updated_at)),
                s.message_count,
                s.title,
            ]
            for s in sessions
        ]
        display(table_data(["session", "updated", "messages", "title"], rows, "No sessions yet."), raw=True)

    def _cmd_learn(self, rest: list[str], session_id: str) -> None:
        from .library_magics import library_command

        print("\n".join(library_command(self.sessions, "learn", rest)))

    def _cmd_forget(self, rest: list[str], session_id: str) -> None:
        from .library_magics import library_command

        print("\n".join(library_command(self.sessions, "forget", rest)))

    def _cmd_collections(self, rest: list[str], session_id: str) -> None:
        self._expect(rest, 0, "collections")
        from .library_magics import collections_table

        display(collections_table(self.sessions), raw=True)

    def _cmd_record(self, rest: list[str], session_id: str) -> None:
        self._expect(rest, 1, "record PATH")
        self._cassette("record", os.path.expanduser(rest[0]))

    def _cmd_replay(self, rest: list[str], session_id: str) -> None:
        self._expect(rest, 1, "replay PATH")
        path = os.path.expanduser(rest[0])
        if env_cassette() is None and not os.path.isfile(path):
            raise _usage_error(f"%agent replay: cassette {rest[0]} does not exist (looked in {os.getcwd()}).", LINE_USAGE)
        self._cassette("replay", path)

    def _cmd_live(self, rest: list[str], session_id: str) -> None:
        self._expect(rest, 0, "live")
        self._cassette("live", "")

    def _cmd_fix(self, rest: list[str], session_id: str) -> None:
        if rest not in ([], ["--apply"]):
            raise _usage_error("Usage: %agent fix [--apply]", LINE_USAGE)
        failed = self.last_failure
        if failed is None:
            raise UsageError("No cell of this kernel has failed yet: run the cell, then %agent fix.")
        answer = self._ask_about(session_id, fix_request(failed.number, failed.source, failed.traceback), failed.source)
        fixed = proposed_fix(answer)
        if fixed is None:
            print("llm-agent: the answer holds no corrected cell (no python block); nothing to apply.")
            return
        display(
            markdown_data(
                f"**Proposed fix of cell [{failed.number}]**\n\n"
                + code_fence(fix_diff(failed.source, fixed, failed.number).rstrip(), "diff")
            ),
            raw=True,
        )
        if rest == ["--apply"]:
            self.shell.set_next_input(fixed, replace=False)
            print("llm-agent: the fix is in the next cell; run it to use it.")
        else:
            print("llm-agent: %agent fix --apply puts it into the next cell.")

    def _cmd_explain(self, rest: list[str], session_id: str) -> None:
        ns, failed = self.shell.user_ns, self.last_failure
        if len(rest) > 1 or (rest and not rest[0].isdigit()):
            raise _usage_error("Usage: %agent explain [N] (N: the cell's execution number)", LINE_USAGE)
        inputs = list(ns.get("In", []))
        if rest:
            number = int(rest[0])
        else:
            number = failed.number if failed is not None else len(inputs) - 2
        if failed is not None and number == failed.number:
            source, error = failed.source, failed.traceback
        elif 0 < number < len(inputs):
            source, error = inputs[number], ""
        else:
            raise UsageError(f"There is no cell [{number}] in this kernel's history; give a number from In.")
        output = repr(ns.get("Out", {}).get(number, "")) if number in ns.get("Out", {}) else ""
        self._ask_about(session_id, explain_request(number, source, error, output), source)

    def _ask_about(self, session_id: str, request: str, source: str) -> str:
        """Ask the model once (a chat run, shown live) about a cell; the answer's markdown."""
        session = self._session(session_id)
        hidden = getattr(self.shell, "user_ns_hidden", {})
        used = {n: self.shell.user_ns[n] for n in names_used(source) if n in self.shell.user_ns and n not in hidden}
        context = None if session.config.context == "none" else NotebookContext(variables=describe_variables(used))
        run = RunRequest(request, mode="chat", origin=self.sessions.manager.front_end, folder=os.getcwd(), context=context)
        self._say_if_busy(session_id)
        stream = RunStream(self.sessions.loop, self.sessions.manager.runs, session_id)
        events = stream.run(run)
        stream.finish(session_id=session_id, model=session.llm.config.model, include_failed=session.config.include_failed_cells)
        return RunSummary.of(events).answer or ""

    def _cassette(self, mode: str, path: str) -> None:
        # Silent, like %config: the cell's output must not depend on whether the environment overrides it
        # (notebooks are checked with nbval under `make test`, which does).
        try:
            self.sessions.set_cassette(mode, path)
        except SetupError as exc:
            raise UsageError(str(exc)) from None

    def _effective(self) -> Any:
        try:
            return self.sessions.effective()
        except SetupError as exc:
            raise UsageError(str(exc)) from None


HELP = "\n".join(
    [
        _PLAIN.format_help(),
        LINE_USAGE,
        "",
        *(f"  %agent {c:<22} {h}" if len(c) <= 22 else f"  %agent {c}\n  {'':<29} {h}" for c, h in LINE_COMMANDS.items()),
    ]
)
AgentMagics.agent.__doc__ = HELP  # what %agent? shows


@dataclass
class FailedCell:
    """A cell that raised: its execution number, source and traceback (IPython's own frames left out)."""

    number: int
    source: str
    traceback: str


def _shape(value: Any) -> str:
    shape = getattr(value, "shape", None)
    return f", shape {tuple(shape)}" if isinstance(shape, tuple) else ""


__all__ = ["AgentMagics", "interpolate"]
