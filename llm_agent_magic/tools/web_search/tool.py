"""Web search through Tavily's official client: results as numbered sources the answer can cite.

The base URL goes to ``AsyncTavilyClient(api_base_url=...)`` (tavily-python >= 0.7.9),
which is how tests and offline demos point it at ``testing.fake_tavily``. The key is
passed explicitly, never read by the client from the environment behind our back, and
is scrubbed from anything the tool returns. Answers are reused for the same query for
``ToolsConfig.web_cache_minutes`` (``cache.py``), except while a cassette records or replays (the
cassette must hold every search). What Tavily or the network gets wrong
(bad key, quota, HTTP 5xx, timeout, no connection) becomes an observation, so the model
can answer without the web or tell the user what to fix.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from ...config import ToolsConfig
from ..base import Tool, ToolContext, ToolInput, ToolResult
from .cache import SearchCache

NO_KEY = "web search needs TAVILY_API_KEY; set it or ask without web search."
SNIPPET_CHARS = 500
#: Where Tavily's client sends a search (how a cassette's recorded searches are recognised).
SEARCH_PATH = "/search"


class WebSearchTool(Tool):
    name = "web_search"
    description = (
        "Searches the web (Tavily) and returns the top pages as numbered sources [1], [2], ... with title, URL and "
        "an excerpt. Use it for facts that are not in the data or documents; cite the sources you use as [n] with their URL."
    )
    input = ToolInput("query", "a short search query")

    def __init__(self, config: ToolsConfig | None = None):
        self.config = config or ToolsConfig()

    def offered(self, ctx: ToolContext) -> bool:
        """Offered with a key, or while a cassette that recorded searches replays (they come from it; a
        cassette recorded without a key, and so without the tool, replays without it)."""
        if str(self.config.tavily_api_key):
            return True
        cassette = ctx.llm.cassette if ctx.llm is not None and ctx.llm.config.cassette_mode == "replay" else None
        return cassette is not None and cassette.holds(SEARCH_PATH)

    async def run(self, action_input: str, ctx: ToolContext) -> ToolResult:
        query = action_input.strip().strip('"') or ctx.request
        key = str(self.config.tavily_api_key)
        if not key and ctx.llm is not None and ctx.llm.config.cassette_mode == "replay":
            key = "replayed-from-cassette"  # the answer comes from the cassette; Tavily is never asked
        if not key:
            return ToolResult(NO_KEY, success=False, data={"error": "no_key"})
        cache = self._cache(ctx)
        cache_key = SearchCache.key(
            query, depth=self.config.web_search_depth, results=self.config.web_max_results, url=self.config.tavily_base_url
        )
        cached = cache.get(cache_key) if cache is not None else None
        if cached is not None:
            result = self._observation(query, cached[0], key)
            result.data.update(cached=True, age_minutes=round(cached[1], 1))
            return result
        # While the session records or replays a cassette, searches go through it too: a replayed
        # notebook then needs neither the model nor the web.
        transport = ctx.llm.cassette_transport() if ctx.llm is not None else None
        http = httpx.AsyncClient(base_url=self.config.tavily_base_url, transport=transport) if transport else None
        from tavily import AsyncTavilyClient  # imported on first use: it pulls in requests

        client = AsyncTavilyClient(api_key=key, api_base_url=self.config.tavily_base_url, client=http)
        try:
            response = await client.search(
                query,
                search_depth=self.config.web_search_depth,
                max_results=self.config.web_max_results,
                timeout=self.config.web_timeout,
            )
        except Exception as exc:
            problem = self._problem(exc)
            if problem is None:
                raise
            return ToolResult(self._scrub(problem, key), success=False, data={"error": type(exc).__name__})
        finally:
            await client.close()
            if http is not None:
                await http.aclose()
        if cache is not None and isinstance(response, dict):
            cache.put(cache_key, response)
        return self._observation(query, response, key)

    def _cache(self, ctx: ToolContext) -> SearchCache | None:
        """The data root's cache, when there is one to use: a live session (an agent's LLM client) and a lifetime."""
        if ctx.llm is None or self.config.web_cache_minutes <= 0 or ctx.llm.config.cassette_mode != "live":
            return None
        return SearchCache(ctx.llm.paths.root / "web_cache", self.config.web_cache_minutes)

    # --- results ------------------------------------------------------------------------
    def _observation(self, query: str, response: dict[str, Any], key: str) -> ToolResult:
        results = [r for r in response.get("results") or [] if isinstance(r, dict) and r.get("url")]
        results = results[: self.config.web_max_results]
        if not results:
            note = f'The web search for "{query}" found nothing. Try other words, or answer without it.'
            return ToolResult(note, data={"sources": []})
        lines = [f'Web results for "{query}". Cite a source as [n] with its URL.']
        sources = []
        for n, result in enumerate(results, 1):
            title = " ".join(str(result.get("title") or "(untitled)").split())
            url = str(result["url"])
            snippet = " ".join(str(result.get("content") or "").split())
            if len(snippet) > SNIPPET_CHARS:
                snippet = snippet[: SNIPPET_CHARS - 3].rsplit(" ", 1)[0] + "..."
            lines += [f"[{n}] {title}", f"    {url}", f"    {snippet}"]
            sources.append({"n": n, "title": title, "url": url, "score": result.get("score")})
        if response.get("answer"):
            lines.append(f"Tavily's summary: {response['answer']}")
        return ToolResult(self._scrub("\n".join(lines), key), data={"query": query, "sources": sources})

    # --- failures -----------------------------------------------------------------------
    def _problem(self, exc: Exception) -> str | None:
        """What to tell the model about a failed search; None for errors that are bugs."""
        where = self.config.tavily_base_url
        from tavily import errors as tavily_errors

        if isinstance(exc, tavily_errors.InvalidAPIKeyError):
            return (
                "Web search failed: Tavily rejected the API key (HTTP 401). Check TAVILY_API_KEY, or answer without web search."
            )
        if isinstance(exc, tavily_errors.UsageLimitExceededError):
            return "Web search failed: the Tavily usage limit is reached (HTTP 429). Answer without web search for now."
        if isinstance(exc, tavily_errors.ForbiddenError):
            return "Web search failed: Tavily refused the request (HTTP 403). Answer without web search."
        if isinstance(exc, tavily_errors.BadRequestError):
            return f"Web search failed: Tavily did not accept the query ({exc}). Try a shorter, plainer query."
        if isinstance(exc, tavily_errors.TimeoutError):
            return f"Web search timed out after {self.config.web_timeout:g} s. Try again once, or answer without web search."
        if isinstance(exc, httpx.HTTPStatusError):
            return (
                f"Web search failed: Tavily answered HTTP {exc.response.status_code}. "
                "Try again later, or answer without web search."
            )
        if isinstance(exc, httpx.TimeoutException):
            return f"Web search timed out after {self.config.web_timeout:g} s. Try again once, or answer without web search."
        if isinstance(exc, json.JSONDecodeError):
            return f"Web search failed: the reply from {where} was not JSON. Answer without web search."
        if isinstance(exc, httpx.TransportError):
            return f"Web search failed: could not reach Tavily at {where} ({type(exc).__name__}). Answer without web search."
        return None

    @staticmethod
    def _scrub(text: str, key: str) -> str:
        return text.replace(key, "<redacted>") if key else text
