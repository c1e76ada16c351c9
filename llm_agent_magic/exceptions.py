"""The errors users see. Each message says what happened and what to do next.

A shallow hierarchy: errors the model caused become observations fed back to it
(handled inside the agents); the ones here stop a call or a run.
"""

from __future__ import annotations

from pathlib import Path


class LLMAgentError(Exception):
    """Base class for every error this package raises on purpose."""


class ConfigurationError(LLMAgentError):
    """A setting is wrong or missing."""


class SetupError(ConfigurationError):
    """A session cannot be opened as configured (the magic shows it as a UsageError, without a traceback)."""


class UsageProblem(LLMAgentError):
    """A command line that does not make sense (``llm-agent`` exits with code 2)."""


class JSONReplyError(LLMAgentError, ValueError):
    """A model's reply holds no JSON of the expected shape; the message says why."""


class DocumentError(LLMAgentError):
    """A file that is not a readable document of its type (the message says why)."""


class AttachmentRefused(LLMAgentError):
    """A file attached to a request (``--files``, ``RunRequest.files``, an eval's table) that is not read:
    a link, not a regular file, or too large. The message names the file, says why and what to do."""

    recoverable = True

    def __init__(self, name: str, reason: str, remedy: str):
        self.name, self.reason = name, reason
        super().__init__(f"Refused to attach {name}: {reason}. {remedy}")


# --- LLM layer ------------------------------------------------------------------


class LLMError(LLMAgentError):
    """A call to the model failed."""

    #: Whether the same call may work if tried again later (the run can go on).
    recoverable = True


class ModelServerUnavailable(LLMError):
    """Nothing answers at the address of a model server (any provider)."""

    def __init__(self, provider: str, where: str, message: str = ""):
        self.provider = provider
        self.host = where
        super().__init__(
            message
            or f"Could not reach the {provider} server at {where}. Check LLMConfig.base_url (an OpenAI-compatible "
            f"API usually ends in /v1, e.g. http://HOST:8000/v1) and that the server runs."
        )


class OllamaUnavailable(ModelServerUnavailable):
    def __init__(self, host: str):
        super().__init__(
            "ollama",
            host,
            f"Could not reach Ollama at {host}. Start it with `ollama serve` (or open the Ollama app), "
            f"or point the agent elsewhere with OLLAMA_HOST=http://HOST:PORT or `%config LLMConfig.host = '...'`.",
        )


class ModelNotFound(LLMError):
    recoverable = False

    def __init__(self, model: str, host: str, provider: str = "ollama"):
        self.model = model
        self.provider = provider
        if provider == "ollama":
            fix = f"Pull it with `ollama pull {model}`"
            where = f"the Ollama server at {host}"
        else:
            fix = "Load it on that server, or use a name the server lists"
            where = f"the {provider} server at {host}"
        super().__init__(
            f"Model {model!r} is not available on {where}. {fix}, "
            f"or choose a model you have (`llm-agent doctor` or `%agent models` lists them)."
        )


class ModelServerAuthError(LLMError):
    """The model server refused the API key (or its absence)."""

    recoverable = False

    def __init__(self, provider: str, where: str, status: int, key_env: str, key_set: bool):
        self.provider = provider
        have = f"the key in ${key_env}" if key_set else f"no key (${key_env} is not set)"
        super().__init__(
            f"The {provider} server at {where} refused the request (HTTP {status}) with {have}. "
            f"Export the API key in ${key_env} before starting Jupyter, or name the variable that holds it in "
            f"LLMConfig.api_key_env; the key is read from the environment only, never from configuration files."
        )


class LLMTimeout(LLMError):
    def __init__(self, seconds: float, purpose: str):
        super().__init__(
            f"The model did not answer the {purpose!r} call within {seconds:g} s. A large model on a CPU can be slow: "
            f"raise LLMConfig.request_timeout, or use a smaller model."
        )


class LLMServerError(LLMError):
    def __init__(self, status: int, detail: str, attempts: int, server: str = "Ollama"):
        self.status = status
        super().__init__(
            f"{server} answered HTTP {status} ({detail.strip()[:300]}) on {attempts} attempt(s). "
            f"Check the {server} server's log; it may be out of memory for this model."
        )


class LLMProtocolError(LLMError):
    """The server's reply was not what its API promises (garbled JSON, cut-off stream)."""


class ContextOverflow(LLMError):
    recoverable = False

    def __init__(self, estimated_tokens: int, num_ctx: int, purpose: str):
        self.estimated_tokens = estimated_tokens
        self.num_ctx = num_ctx
        super().__init__(
            f"The {purpose!r} prompt needs about {estimated_tokens} tokens but the context window is {num_ctx}. "
            f"Raise LLMConfig.num_ctx (if the model allows it), or shorten the conversation (`%agent reset`)."
        )


class StructuredOutputError(LLMError):
    """The model's answer could not be read as the JSON asked for, even after one repair round trip."""

    def __init__(self, purpose: str, raw: str, reason: str):
        self.purpose = purpose
        self.raw = raw
        super().__init__(
            f"The model's {purpose!r} answer was not valid JSON of the expected shape ({reason}), even after asking it "
            f"to repair it. Its answer began: {raw[:200]!r}. A larger or instruction-tuned model usually fixes this."
        )


class CassetteMiss(LLMError):
    recoverable = False

    def __init__(self, cassette: str, description: str):
        super().__init__(
            f"Replay cassette {cassette} has no recorded answer for this request: {description}. "
            f"The prompt changed since it was recorded: record it again with a live model "
            f"(`--record {cassette}` or `%agent record {cassette}`)."
        )


class CassetteError(LLMError):
    recoverable = False


# --- Agents -----------------------------------------------------------------------


class AgentError(LLMAgentError):
    """An agent loop cannot go on."""

    recoverable = True


class MalformedSteps(AgentError):
    def __init__(self, count: int, last: str):
        super().__init__(
            f"The model returned {count} malformed ReAct steps in a row (the last began {last[:120]!r}), so the run "
            f"stopped. A larger or instruction-tuned model usually follows the step format; or ask again in "
            f"`--mode chat` if no tools are needed."
        )


class ApprovalTimeout(AgentError):
    """A generated cell waited longer than ``AgentConfig.approval_timeout`` for Run / Edit / Skip."""

    recoverable = False

    def __init__(self, attempt: int, seconds: float):
        super().__init__(
            f"Generated cell (attempt {attempt}) waited {seconds:g} s for Run / Edit / Skip and got no answer, so it "
            f"did not run and the run stopped. Ask again and answer sooner, or raise AgentConfig.approval_timeout "
            f"(0 waits until you stop the run)."
        )


class AgentRunFailed(AgentError):
    """A ``%%agent`` run that did not end "ok" (its last code attempt failed, it stopped, or it could not start):
    the cell fails, so Run All and ``llm-agent run`` stop there as at any failing cell. Its outputs (the answer,
    the errors) are shown before it is raised."""

    recoverable = False

    def __init__(self, problem: str, model_needed: bool = False):
        self.problem = problem
        hint = (
            (
                " This request has no stored answer here (it is new or changed, or the notebook comes from another "
                "machine or data root), so running it needs the model: start Ollama (or set OLLAMA_HOST), or answer "
                "from a recorded cassette with `%agent replay PATH`."
            )
            if model_needed
            else ""
        )
        super().__init__(f"{problem[:1].upper()}{problem[1:]}.{hint}")

    def _render_traceback_(self) -> list[str]:  # what the run said is in the outputs above: no Python traceback
        return [f"{type(self).__name__}: {self}"]


class NotWaitingForApproval(AgentError, ValueError):
    """An ``ApprovalReply`` for a run or cell that is not waiting for one."""


# --- Runs: what the session service refuses (``agents/runs.py``) ------------------


class RunRefused(LLMAgentError):
    """A run that could not start (the session could not be opened, a cassette is missing, ...)."""


class SessionBusy(LLMAgentError):
    """The session is busy with another run: one of this process (``run_id``), refused at once, or one whose
    holder (another process or front end, ``holder``) kept the session's run lock past the wait allowed."""

    def __init__(self, session_id: str, holder: str = "", waited: float = 0.0, *, run_id: str = ""):
        self.session_id = session_id
        self.holder = holder
        self.run_id = run_id
        if run_id:
            message = (
                f"Session {session_id!r} is already running {run_id}; stop it (a stop request) or wait for it "
                f"to finish, then send this again."
            )
        else:
            waited_text = f" after waiting {waited:g} s" if waited > 0 else ""
            message = (
                f"Session {session_id!r} is busy: {holder or 'another run'} is using its sandbox, and this gave "
                f"up{waited_text}. Wait until that finishes (or stop it), then try again, or use another session "
                f"(`%%agent --session NAME`, `llm-agent run --session NAME`); SandboxConfig.session_wait_timeout "
                f"sets how long to wait."
            )
        super().__init__(message)


class RunOfAnotherSession(LLMAgentError):
    """A stop, approval or resume that names a run of another session than the one it was sent for."""

    def __init__(self, run_id: str, action: str):
        self.run_id = run_id
        self.action = action
        super().__init__(f"Run {run_id!r} belongs to another session; {action} it from that session.")


class RunNotRunning(LLMAgentError):
    """A stop for a run that is not running (it ended, or it never ran in this process)."""

    def __init__(self, run_id: str, where: str):
        self.run_id = run_id
        super().__init__(f"No run {run_id or 'of this session'} is running {where}; nothing to stop.")


# --- Sandbox ---------------------------------------------------------------------


class SandboxError(LLMAgentError):
    """The sandbox kernel could not do what was asked (not an error in the generated code)."""


class SandboxUnavailable(SandboxError, ConfigurationError):
    """The isolation level asked for cannot be provided on this machine."""

    def __init__(self, level: str, detail: str, fix: str):
        self.level = level
        super().__init__(
            f"Sandbox isolation {level!r} is not available here: {detail}. {fix} "
            f"Or let the agent choose with `SandboxConfig.isolation = 'auto'` (`llm-agent doctor` shows what works)."
        )


class SandboxStartError(SandboxError):
    """The sandbox kernel did not start."""

    def __init__(self, session_id: str, reason: str, log_tail: str = ""):
        self.session_id = session_id
        self.log_tail = log_tail
        tail = f"\nLast lines of the kernel log:\n{log_tail}" if log_tail.strip() else ""
        super().__init__(
            f"The sandbox kernel for session {session_id!r} did not start: {reason}. Check that the sandbox's Python "
            f"has ipykernel (`SandboxConfig.python` / `kernel_name`), raise SandboxConfig.startup_timeout on a slow "
            f"machine, and run `llm-agent doctor`.{tail}"
        )


class KernelsBusy(SandboxError):
    """Every sandbox kernel this process may keep is in use by a run, past the wait allowed."""

    def __init__(self, session_id: str, limit: int, waited: float):
        self.session_id = session_id
        self.limit = limit
        super().__init__(
            f"Session {session_id!r} needs a sandbox kernel, but all {limit} that this process may keep running "
            f"(SandboxConfig.max_live_kernels) are in use by runs, and none finished within {waited:g} s. Try again "
            f"when one of those runs finishes (or stop one), or raise SandboxConfig.max_live_kernels."
        )


class SandboxClosed(SandboxError):
    """The sandbox was shut down; it cannot run code any more."""

    def __init__(self, session_id: str):
        super().__init__(
            f"The sandbox of session {session_id!r} has been shut down. Create a new SandboxKernel for the session "
            f"(its variables come back from the snapshots)."
        )


class SnapshotNotFound(SandboxError, KeyError):
    """No snapshot of that variable exists in the session."""

    def __init__(self, name: str, session_id: str, known: list[str], reason: str = "", refused: str = ""):
        self.name = name
        self.refused = refused
        why = f" Its snapshot was refused: {refused}." if refused else f" It was not saved: {reason}." if reason else ""
        listing = ", ".join(known) if known else "none yet"
        super().__init__(
            f"No snapshot of {name!r} in session {session_id!r}.{why} Saved variables: {listing}. Variables are saved "
            f"after each successful execution in the sandbox."
        )

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0])


class UnsafePath(SandboxError, OSError):
    """A file in a folder the sandbox can change was refused: a link, a FIFO, a device, too large, or outside it.

    An ``OSError`` too, so code that already copes with unreadable files copes with refused ones.
    """

    def __init__(self, action: str, where: str, reason: str):
        self.action = action
        self.where = where
        self.reason = reason
        super().__init__(
            f"Refused to {action} {where}: {reason}. The sandbox can change that folder, so only regular files "
            f"inside it are read or written there (no links, pipes or devices, and within a size limit)."
        )

    def __str__(self) -> str:  # OSError would show the message as its tuple of arguments
        return str(self.args[0])


class SandboxCellFailed(SandboxError):
    """A ``%%sandbox`` cell's code raised, timed out, or ended its kernel: the cell fails, so Run All stops there.

    ``traceback`` is the sandbox's own (already cleaned and bounded): IPython shows it in place of this
    process's (``_render_traceback_``), so the user reads where their code failed, not where the magic is.
    """

    def __init__(self, status: str, ename: str, evalue: str, traceback: list[str] | None = None):
        self.status = status
        self.ename = ename
        self.evalue = evalue
        self.traceback = list(traceback or [])
        if status == "error":
            what = f"{ename}: {evalue}" if ename else "the code raised an error"
            message = f"The cell's code failed in the sandbox ({what}). Fix the code and run the cell again."
        elif status == "timeout":
            message = (
                "The cell ran longer than SandboxConfig.execution_timeout and was stopped. Make it faster, or raise the timeout."
            )
        else:
            message = (
                f"The sandbox kernel died while running the cell ({evalue or status}); it was restarted and "
                f"the saved variables restored. Run the cell again, or make it use less memory."
            )
        super().__init__(message)

    def _render_traceback_(self) -> list[str]:
        return [*self.traceback, f"{type(self).__name__}: {self}"]


# The conversation store (store/). Each message names the file or id and says what to do next.

_LIST_HINT = "List the sessions with `%agent sessions`, `llm-agent sessions` or `ConversationStore.list_sessions()`."


class StoreError(LLMAgentError):
    """The conversation store could not do what was asked."""


class _NotFound(StoreError, KeyError):
    # KeyError.__str__ quotes its argument; these messages are sentences.
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SessionNotFound(_NotFound):
    def __init__(self, session_id: str, path: str | Path):
        self.session_id = session_id
        super().__init__(f"No conversation session {session_id!r} in {path}. {_LIST_HINT}")


class SessionExists(StoreError):
    def __init__(self, session_id: str, path: str | Path):
        self.session_id = session_id
        super().__init__(
            f"A session {session_id!r} already exists in {path}. Use ensure_session() to reuse it, "
            f"or pick another id (create_session() without an id makes a fresh one)."
        )


class RunNotFound(_NotFound):
    def __init__(self, run_id: str, path: str | Path):
        self.run_id = run_id
        super().__init__(f"No run {run_id!r} in {path}. Runs are listed per session with `ConversationStore.runs(session_id)`.")


class StoreCorrupted(StoreError):
    """The file is not an SQLite database, or SQLite found it damaged. Never deleted for the user."""

    def __init__(self, path: str | Path, detail: str):
        self.path = str(path)
        super().__init__(
            f"The conversation store {path} is not a readable SQLite database ({detail}). Nothing was changed. "
            f"Move it aside (e.g. `mv {path} {path}.broken`) and a new, empty store is created on the next start; "
            f"the old file may still be recoverable with `sqlite3 {path}.broken .recover`."
        )


class StoreVersionError(StoreError):
    def __init__(self, path: str | Path, found: int, supported: int):
        super().__init__(
            f"The conversation store {path} has schema version {found}, but this llm-agent-magic understands up to "
            f"{supported}. It was written by a newer release: upgrade llm-agent-magic "
            f"(`pip install -U llm-agent-magic`), or point PathsConfig.data_root elsewhere."
        )


# Requests front ends send (run_requests.py).


class BadRequest(LLMAgentError, ValueError):
    """A request that cannot be carried out as written; the message says what to change."""


# The notebook context a front end sends with a run (notebook_context.py).


class BadContext(LLMAgentError, ValueError):
    """A run's context that is not what it should be; the message says what to send instead."""


# Files uploaded to a session's workspace (server/uploads.py).


class BadName(ValueError):
    """A file name refused; the message says why and what a good name looks like."""


# Files moved between this process and a gateway's kernel (sandbox/transport.py).


class TransferError(OSError):
    """A file that could not be moved between this process and the kernel (the reason says why)."""


class TooLargeToFetch(TransferError):
    """A file of the kernel's that is (or grew, or turned out) larger than the bytes one fetch may take."""


# Document collections: learn, forget, search (tools/rag/).


class CollectionError(LLMAgentError):
    """A learn or forget that cannot be done as asked (the message says what to do instead)."""


class CollectionNotFound(CollectionError):
    pass


class EmbeddingModelMismatch(ConfigurationError):
    """A collection embedded with one model, asked with another."""

    def __init__(self, collection: str, stored: str, current: str, detail: str = ""):
        self.collection, self.stored, self.current = collection, stored, current
        super().__init__(
            f"Collection {collection!r} was embedded with {stored!r}{detail}, but the embedding model now is "
            f"{current!r}: its vectors cannot be compared. Either set LLMConfig.embedding_model = {stored!r} "
            f"again, or re-embed the collection with {current!r}: `%agent learn --reembed --collection {collection}` "
            f"(or `llm-agent learn --reembed --collection {collection}`)."
        )
