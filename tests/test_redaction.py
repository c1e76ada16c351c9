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
        store.append_events(run, [RunStarted(run_id=run, request=secrets),
                                  CellOutput(run_id=run, cell_id="c", outputs=[printed])])
        assert_hidden(store.recent_messages("s")[0].content)
        assert_hidden(json.dumps(store.run_events(run)))
    with sqlite3.connect(path) as conn:  # what is on disk, not what the API shows
        dump = "\n".join(conn.iterdump())
    assert_hidden(dump)


def test_redaction_keeps_what_only_looks_like_a_secret() -> None:
    code = ("conn = connect(user=u, password=password)\npwd = os.getcwd()\nurl = f'postgres://{user}:{pw}@{host}'\n"
            "# task-specific-instructions-follow, shelf_life_in_days_for_each_product_line")
    assert redact(code, []) == code
    assert redact("see https://example.com:8080/a@b and mail ann@example.com", []).count(REDACTED) == 0
    assert redact("Server=db;User Id=sa;Password=Sup3r;", []) == f"Server=db;User Id=sa;Password={REDACTED};"
