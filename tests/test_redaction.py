"""Secrets never leave in a request to the model (any purpose) and are never kept by the store."""

from __future__ import annotations

import json
import sqlite3

import pytest

from llm_agent_magic.config import LLMConfig, PathsConfig
from llm_agent_magic.events import CellOutput, RunStarted
from llm_agent_magic.llm import LLMClient
from llm_agent_magic.redaction import REDACTED, redact
from llm_agent_magic.store import ConversationStore
from llm_agent_magic.testing.fake_ollama import FakeOllama

SECRETS = {
    "SENTRY_DSN": "https://4f5e6d7c@o1.ingest.example.io/42",
    "MYSQL_PWD": "hunter22",
    "SERVICE_AUTH": "auth-0123456789",
    "GITHUB_PAT": "pat-abcdefghij",
    "MY_API_KEY": "key-zyxwvutsrq",
    "DATABASE_URL": "postgres://app:pa55word-x@db.internal:5432/prod",
    "AZURE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0a2V5==;",
}
SHAPES = ["tvly-abcdefgh12345678", "sk-abcdefghijklmnop1234", "Bearer eyJhbGciOi.payload", "ghp_" + "a1" * 18]
HIDDEN = [*SECRETS.values(), "pa55word-x", "c2VjcmV0a2V5==", *SHAPES, "mysql://root:toor-pw@localhost/db"]


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> str:
    """The environment holds secrets; returns a text that mentions every one of them."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PWD", "/home/ann/project-folder")  # the working folder, not a password
    return " | ".join(HIDDEN + ["pwd is /home/ann/project-folder"])


def assert_hidden(text: str) -> None:
    for secret in HIDDEN:
        assert secret not in text, secret
    assert REDACTED in text and "/home/ann/project-folder" in text


async def test_no_request_to_the_model_carries_a_secret(secrets: str, tmp_path) -> None:
    script = {"rules": [{"purpose": "classify", "reply": {"mode": "chat", "reason": "r"}}], "default": "fine"}
    with FakeOllama(script) as server:
        config = LLMConfig(host=server.url, max_retries=0)
        async with LLMClient(config, paths=PathsConfig(data_root=str(tmp_path))) as client:
            asked = [{"role": "system", "content": "Help."}, {"role": "user", "content": secrets}]
            await client.chat(asked, purpose="code")
            await client.stream_chat(asked, purpose="answer").text()
            await client.structured(asked, purpose="classify", schema={"type": "object"})
            await client.embed([secrets, "plain text"])
        bodies = [r.body for r in server.requests if r.path in ("/api/chat", "/api/embed")]
    assert [b.get("stream") for b in bodies if "messages" in b] == [False, True, False]
    assert len(bodies) == 4
    for body in bodies:
        assert_hidden(json.dumps(body))


def test_the_store_keeps_no_secret(secrets: str, tmp_path) -> None:
    path = tmp_path / "store.sqlite"
    with ConversationStore(path) as store:
        store.create_session("s", title=secrets, metadata={"notebook": secrets})
        run = store.start_run("s", secrets)
        store.add_message("s", "user", secrets, run_id=run)
        printed = {"output_type": "stream", "name": "stdout", "text": secrets}
        store.append_events(
            run, [RunStarted(run_id=run, request=secrets), CellOutput(run_id=run, cell_id="c", outputs=[printed])]
        )
        assert_hidden(store.recent_messages("s")[0].content)
        assert_hidden(json.dumps(store.run_events(run)))
    with sqlite3.connect(path) as conn:  # what is on disk, not what the API shows
        dump = "\n".join(conn.iterdump())
    assert_hidden(dump)


def test_redaction_keeps_what_only_looks_like_a_secret() -> None:
    code = (
        "conn = connect(user=u, password=password)\npwd = os.getcwd()\nurl = f'postgres://{user}:{pw}@{host}'\n"
        "# task-specific-instructions-follow, shelf_life_in_days_for_each_product_line"
    )
    assert redact(code, []) == code
    assert redact("see https://example.com:8080/a@b and mail ann@example.com", []).count(REDACTED) == 0
    assert redact("Server=db;User Id=sa;Password=Sup3r;", []) == f"Server=db;User Id=sa;Password={REDACTED};"


# --- crafted input, and the work per step -----------------------------------------------------------------


def test_crafted_texts_come_out_right() -> None:
    """Inputs that made the backtracking patterns quadratic (54 s for the first) are read in one pass, and
    what they hide is still found."""
    dashes = "a-" * 60000
    assert redact(dashes + " ://@", []) == dashes + " ://@"
    assert redact(dashes + "x://user:s3cret-pw@host", []) == dashes + f"x://user:{REDACTED}@host"
    headers = "-----BEGIN RSA PRIVATE KEY-----\n" * 5000
    assert redact("kept\n" + headers, []) == "kept\n" + REDACTED
    assert redact("-----BEGIN " * 20000, []) == "-----BEGIN " * 20000
    fields = ";password=" * 20000
    assert redact(fields + "x", []) == ";password=" * 19999 + f";password={REDACTED}"
    assert redact("`" * 100000, []) == "`" * 100000


def test_private_key_blocks_whole_cut_or_several() -> None:
    block = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"
    assert redact(f"before\n{block}\nmiddle\n{block}\nafter", []) == f"before\n{REDACTED}\nmiddle\n{REDACTED}\nafter"
    # An output cut in the middle of a key (the cell keeps head and tail) loses the key's end: the rest goes.
    assert redact("key:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqh\n[... 9000 characters cut ...]", []) == (
        f"key:\n{REDACTED}"
    )


def test_unicode_spaces_end_a_password_as_before() -> None:
    """RE2's ``\\s`` is ASCII; the patterns spell out the spaces ``re`` knew, so a no-break space still ends a
    value (and a field after one is still found)."""
    assert redact("\u00a0Pwd=hunter22\u00a0and more", []) == f"\u00a0Pwd={REDACTED}\u00a0and more"
    assert redact("Bearer\u2003abcdefghijkl", []) == REDACTED


def test_the_patterns_are_re2() -> None:
    from llm_agent_magic import redaction
    from llm_agent_magic.linear_regex import is_linear

    patterns = [value for name, value in vars(redaction).items() if name.isupper() and hasattr(value, "finditer")]
    assert len(patterns) == 6 and all(is_linear(p) for p in patterns)


async def _steps(monkeypatch: pytest.MonkeyPatch, server: FakeOllama, tmp_path, steps: int, secret_at: int = -1):
    """``steps`` ReAct-like steps through the conversation the agents use (an observation joins, a call goes
    out); per step, how many texts the redactor scanned and how often it read the environment's secrets."""
    import threading

    from llm_agent_magic import redaction
    from llm_agent_magic.config import AgentConfig
    from llm_agent_magic.tools.base import ToolContext, ask

    main = threading.get_ident()  # the call log's writer thread redacts too, at times of its own
    counts = {"scans": 0, "environment": 0}
    scan, secret_values = redaction._scan, redaction.secret_values

    def counted_scan(text, secrets):
        counts["scans"] += threading.get_ident() == main
        return scan(text, secrets)

    def counted_secret_values(environ):
        counts["environment"] += 1
        return secret_values(environ)

    monkeypatch.setattr(redaction, "_scan", counted_scan)
    monkeypatch.setattr(redaction, "secret_values", counted_secret_values)
    per_step = []
    config = LLMConfig(host=server.url, max_retries=0)
    async with LLMClient(config, paths=PathsConfig(data_root=str(tmp_path))) as client:
        ctx = ToolContext(llm=client, config=AgentConfig(), emit=lambda event: None, request="count the rows")
        for step in range(steps):
            before = dict(counts)
            output = f"rows: {step}\n" + ("sk-leakedkey0123456789abc\n" if step == secret_at else "") + "x" * 500
            ctx.conversation.add(f"Observation: {output}")
            await ask(ctx, "[react] go on", purpose="react")
            per_step.append({k: counts[k] - before[k] for k in counts})
    return per_step


async def test_redaction_work_per_step_does_not_grow_with_the_conversation(
    secrets: str, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    with FakeOllama({"rules": [], "default": "A reply of some length. " * 20}) as server:
        per_step = await _steps(monkeypatch, server, tmp_path, 12)
        sent = [len(r.body["messages"]) for r in server.requests if r.path == "/api/chat"]
    assert sent[-1] > sent[1] + 15  # the conversation grew ...
    assert per_step[2:] == [per_step[2]] * 10  # ... and each step's redaction stayed the same work
    # One scan a step: its new message (the scripted reply is the same text each time, already seen); the
    # environment was read once, before the first step.
    assert per_step[2]["scans"] == 1 and all(step["environment"] == 0 for step in per_step[1:])


async def test_a_secret_that_joins_mid_run_is_redacted_in_the_next_request(
    secrets: str, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """A sandbox output with a key shape joins the conversation at step 3; later a key that was already in the
    conversation (an output of step 1) becomes a secret of the environment: the next request hides both."""
    with FakeOllama({"rules": [], "default": "ok"}) as server:
        await _steps(monkeypatch, server, tmp_path, 5, secret_at=3)
        bodies = [json.dumps(r.body) for r in server.requests if r.path == "/api/chat"]
        assert "rows: 3" in bodies[3] and "sk-leakedkey" not in "".join(bodies) and REDACTED in bodies[3]

        monkeypatch.setenv("LATE_API_TOKEN", "rows: 1\nx")  # what step 1 printed is now a secret's value
        await _steps(monkeypatch, server, tmp_path, 1)
        last = json.dumps(server.requests[-1].body)
    assert "rows: 0" in last and "rows: 1\\nx" not in last


async def test_long_new_text_is_redacted_off_the_event_loop(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """A 1 MB output or answer is redacted in a worker thread (the loop may be the Jupyter server's); short
    text stays on the loop, where a thread would cost more than the scan."""
    import threading

    from llm_agent_magic import redaction
    from llm_agent_magic.prompts import Transcript

    where: dict[str, str] = {}
    scan = redaction._scan

    def noted(text, secrets):
        where[text[:12]] = threading.current_thread().name
        return scan(text, secrets)

    monkeypatch.setattr(redaction, "_scan", noted)
    loop_thread = threading.current_thread().name
    transcript = Transcript("system", [], "Request: x", num_ctx=1 << 20)
    long_reply = "long reply " + "a-" * 500_000 + " ://u:sk-0123456789abcdefgh@db"
    await transcript.arecord("[code] first call", "a short reply")
    await transcript.arecord("[answer] second call", long_reply)
    assert where["a short repl"] == loop_thread and where["long reply a"] != loop_thread
    assert transcript.turns[3]["content"].endswith(f"://u:{REDACTED}@db")

    transcript.add("big output " + "x" * 100_000 + " password=;pwd=hunter2;")
    with FakeOllama({"rules": [], "default": "ok"}) as server:
        config = LLMConfig(host=server.url, max_retries=0, num_ctx=1 << 20)
        async with LLMClient(config, paths=PathsConfig(data_root=str(tmp_path))) as client:
            await client.chat(transcript.messages("[react] go on"), purpose="react")
        sent = json.dumps(server.requests[-1].body)
    assert where["big output x"] != loop_thread and f"pwd={REDACTED};" in sent and "hunter2" not in sent
