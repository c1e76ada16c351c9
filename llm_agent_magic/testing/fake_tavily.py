"""A scripted stand-in for the Tavily search API, for tests and offline demos.

`FakeTavily` is a real HTTP server on 127.0.0.1 that answers ``POST /search`` the way
Tavily does, as the official ``tavily-python`` client calls it (JSON body with
``query``, ``search_depth``, ``max_results``, ``include_answer``...; the key in an
``Authorization: Bearer`` header). Instead of searching it follows a script::

    with FakeTavily({"rules": [{"match": "pandas", "results": [
            {"title": "pandas docs", "url": "https://pandas.pydata.org", "content": "pandas is ..."}]}]}) as server:
        client = tavily.AsyncTavilyClient(api_key="tvly-test", api_base_url=server.url)
        response = await client.search("what is pandas")
        assert server.requests[0].query == "what is pandas"

With the agent, point ``ToolsConfig.tavily_base_url`` (or ``$TAVILY_BASE_URL``) at
``server.url`` and set any key. In pytest, the ``fake_tavily`` fixture does that for you
(``pytest_plugins = ["llm_agent_magic.testing.tavily_plugin"]``). Without pytest or the
agent, run one in a notebook or script exactly as above: start it, use its ``url``.

Script keys (a dict, or a path to a JSON file holding one):

- ``results``: the results for a query no rule matches (absent: one made-up result
  naming the query). Each result: ``title``, ``url``, ``content``, optional ``score``.
- ``answer``: Tavily's short answer, sent when the request asks for one.
- ``rules``: tried in order; the first that applies answers. Rule keys: ``match``
  (regex, ``re.search``, case-insensitive, over the query; absent: any query),
  ``results``, ``answer``, ``fault`` (one of `FAULTS`), ``times`` (how often the rule
  may fire; absent: always), ``delay_ms``.
- ``api_key``: the only key accepted (others get HTTP 401). Absent: any non-empty key.
- ``description``: free text for the humans reading the script.

Faults, as tavily-python reports them: ``http_401`` -> ``InvalidAPIKeyError``,
``http_429`` -> ``UsageLimitExceededError``, ``http_500`` -> ``httpx.HTTPStatusError``,
``timeout`` never answers (until the server stops, at most `MAX_HANG_SECONDS`), so the
client's own timeout fires (``tavily.errors.TimeoutError``).

Recorded requests (`requests`) keep the body and headers with the key replaced by
``<redacted>``: a test log may be printed without leaking even a test key.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from ._background import BackgroundServer, QuietHTTPServer
from ._script import Scripted, ScriptReader, ScriptSource

__all__ = ["FAULTS", "FakeTavily", "RecordedSearch", "load_tavily_script"]

FAULTS = ("http_401", "http_429", "http_500", "timeout")
MAX_HANG_SECONDS = 30.0
REDACTED = "<redacted>"
_RULE_KEYS = frozenset({"match", "results", "answer", "fault", "times", "delay_ms"})
_SCRIPT_KEYS = frozenset({"results", "answer", "rules", "api_key", "description"})
_RESULT_KEYS = ("title", "url", "content")


@dataclass
class _Rule:
    index: int
    match: re.Pattern[str] | None = None
    results: list[dict[str, Any]] | None = None
    answer: str | None = None
    fault: str | None = None
    times: int | None = None
    delay_ms: float = 0
    fired: int = 0

    def applies(self, query: str) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        return self.match is None or self.match.search(query) is not None


@dataclass
class _Script:
    rules: list[_Rule] = field(default_factory=list)
    results: list[dict[str, Any]] | None = None
    answer: str | None = None
    api_key: str | None = None


_READER = ScriptReader("fake-tavily")


def _parse_results(where: str, raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise _READER.problem(where, "'results' must be a list")
    results = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or not all(isinstance(item.get(k), str) for k in _RESULT_KEYS):
            raise _READER.problem(where, f"result {i} needs string title, url and content")
        results.append({"score": round(0.9 - 0.1 * i, 3), **item})
    return results


def _parse_rule(index: int, raw: Any) -> _Rule:
    where = f"rule {index}"
    raw = _READER.object(where, raw, _RULE_KEYS)
    rule = _Rule(index=index, answer=raw.get("answer"), delay_ms=_READER.number(where, raw, "delay_ms"))
    rule.match = _READER.regex(where, raw, "match", re.IGNORECASE | re.DOTALL)
    if "results" in raw:
        rule.results = _parse_results(where, raw["results"])
    rule.fault = _READER.choice(where, raw, "fault", FAULTS)
    rule.times = _READER.times(where, raw)
    return rule


def _parse_script(raw: Mapping[str, Any]) -> _Script:
    raw = _READER.object("", raw, _SCRIPT_KEYS)
    script = _Script(rules=[_parse_rule(i, r) for i, r in enumerate(_READER.rules(raw))], answer=raw.get("answer"))
    if "results" in raw:
        script.results = _parse_results("script", raw["results"])
    if raw.get("api_key") is not None:
        script.api_key = str(raw["api_key"])
    return script


def load_tavily_script(source: ScriptSource) -> dict[str, Any]:
    """The script from a dict or a JSON file; ValueError if it is invalid."""
    raw = _READER.load(source)
    _parse_script(raw)
    return raw


@dataclass(frozen=True)
class RecordedSearch:
    """One request the stand-in received; the key itself is never kept."""

    method: str
    path: str
    headers: dict[str, str]  # lowercased names; authorization redacted
    body: Any
    authorized: bool
    rule_index: int | None
    timestamp: float

    @property
    def query(self) -> str:
        return str(self.body.get("query", "")) if isinstance(self.body, Mapping) else ""


@dataclass
class _Reply:
    status: int = 200
    body: Any = None
    hang: bool = False
    delay_ms: float = 0


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read `requests`, not stderr

    def do_GET(self) -> None:
        self._send(_Reply(404, {"detail": {"error": "Not found"}}))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.fake._answer(self.path, headers, raw)
        if reply.delay_ms:
            self.server.stopping.wait(reply.delay_ms / 1000)
        if reply.hang:
            self.server.stopping.wait(MAX_HANG_SECONDS)
            self.close_connection = True
            return
        self._send(reply)

    def _send(self, reply: _Reply) -> None:
        data = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(QuietHTTPServer):
    def __init__(self, address: tuple[str, int], fake: FakeTavily) -> None:
        super().__init__(address, fake, _Handler)


class FakeTavily(Scripted, BackgroundServer):
    """A scripted Tavily-compatible server in a background thread (context manager, sync or async)."""

    label = "fake-tavily"

    def __init__(self, script: ScriptSource = None, *, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self._lock = threading.Lock()
        self._script = _Script()
        self._requests: list[RecordedSearch] = []
        self.load(script)

    def _make_server(self) -> _Server:
        return _Server((self.host, self._requested_port), self)

    reader = _READER

    def parse_script(self, raw: Mapping[str, Any]) -> _Script:
        return _parse_script(raw)

    def parse_rule(self, index: int, raw: Any) -> _Rule:
        return _parse_rule(index, raw)

    @property
    def requests(self) -> list[RecordedSearch]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # --- answering (handler threads) -----------------------------------------------------
    def _answer(self, path: str, headers: dict[str, str], raw: bytes) -> _Reply:
        started = time.perf_counter()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        auth = headers.get("authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if "authorization" in headers:
            headers["authorization"] = f"Bearer {REDACTED}"
        with self._lock:
            script = self._script
            authorized = bool(key) and (script.api_key is None or key == script.api_key)
            reply, rule = self._route(path, body, authorized, started)
            self._requests.append(
                RecordedSearch("POST", path, headers, body, authorized, rule.index if rule else None, time.time())
            )
        return reply

    def _route(self, path: str, body: Any, authorized: bool, started: float) -> tuple[_Reply, _Rule | None]:
        if path.rstrip("/") != "/search":
            return _Reply(404, {"detail": {"error": "Not found"}}), None
        if not isinstance(body, Mapping) or not isinstance(body.get("query"), str):
            return _Reply(400, {"detail": {"error": "A 'query' string is required."}}), None
        if not authorized:
            return _Reply(401, {"detail": {"error": "Unauthorized: missing or invalid API key."}}), None
        query = body["query"]
        rule = next((r for r in self._script.rules if r.applies(query)), None)
        if rule is None:
            return self._results(query, body, self._script.results, self._script.answer, started), None
        rule.fired += 1
        if rule.fault == "timeout":
            return _Reply(hang=True), rule
        if rule.fault:
            status = int(rule.fault.split("_")[1])
            return _Reply(status, {"detail": {"error": f"fake-tavily: scripted {rule.fault}"}}), rule
        reply = self._results(
            query,
            body,
            rule.results if rule.results is not None else self._script.results,
            rule.answer if rule.answer is not None else self._script.answer,
            started,
        )
        reply.delay_ms = rule.delay_ms
        return reply, rule

    @staticmethod
    def _results(
        query: str, body: Mapping[str, Any], results: list[dict[str, Any]] | None, answer: str | None, started: float
    ) -> _Reply:
        if results is None:
            results = [
                {
                    "title": f"About {query}",
                    "url": "https://example.com/search?q=" + re.sub(r"\W+", "+", query).strip("+"),
                    "content": f"A made-up page about {query}, served by fake-tavily.",
                    "score": 0.5,
                }
            ]
        limit = body.get("max_results")
        if isinstance(limit, int) and limit > 0:
            results = results[:limit]
        return _Reply(
            200,
            {
                "query": query,
                "follow_up_questions": None,
                "answer": (answer or f"fake-tavily has no answer for: {query}") if body.get("include_answer") else None,
                "images": [],
                "results": [{**r, "raw_content": None} for r in results],
                "response_time": round(time.perf_counter() - started, 4),
                "request_id": uuid.uuid4().hex,
            },
        )
