"""``SearchCache``: Tavily's answer to a query, kept for ``ToolsConfig.web_cache_minutes``.

A ReAct run often asks the same query twice (a re-plan, a retried step, the next question in the
conversation); each ask costs Tavily credits and seconds. One JSON file per query (with its depth
and result count) under ``<data_root>/web_cache/``, stamped with the time it was fetched by the
clock prompts read (``volatile.now``: ``LLM_AGENT_NOW`` moves it in tests, no sleeping). Only
successful answers are kept; a file that cannot be read is a miss, never an error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from ... import atomic, volatile


class SearchCache:
    def __init__(self, folder: Path, minutes: float):
        self.folder = folder
        self.lifetime = dt.timedelta(minutes=minutes)

    @staticmethod
    def key(query: str, **options: Any) -> str:
        text = json.dumps({"query": " ".join(query.split()), **options}, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def get(self, key: str) -> tuple[dict[str, Any], float] | None:
        """The cached response and its age in minutes, while younger than the lifetime."""
        try:
            record = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
            fetched = dt.datetime.fromisoformat(record["fetched_at"])
            response = record["response"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        age = volatile.now() - fetched
        if not isinstance(response, dict) or not dt.timedelta(0) <= age < self.lifetime:
            return None
        return response, age.total_seconds() / 60

    def put(self, key: str, response: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {"fetched_at": volatile.now().isoformat(), "response": response}
        atomic.write_bytes(self.folder / f"{key}.json", json.dumps(record, ensure_ascii=False).encode("utf-8"))
