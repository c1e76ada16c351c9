"""Web search (Tavily): ``tool.py`` asks and renders numbered sources, ``cache.py`` keeps answers per query."""

from .cache import SearchCache
from .tool import NO_KEY, SNIPPET_CHARS, WebSearchTool

__all__ = ["NO_KEY", "SNIPPET_CHARS", "SearchCache", "WebSearchTool"]
