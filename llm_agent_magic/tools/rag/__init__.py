"""Retrieval over documents: loaders, chunking, a faiss index per collection, and the ``rag_search`` tool.

``DocumentIndex`` works on its own, e.g. in a notebook::

    from llm_agent_magic.llm import LLMClient
    from llm_agent_magic.tools.rag import DocumentIndex

    async with LLMClient() as llm:
        index = DocumentIndex.for_collection("papers", llm)   # <data_root>/rag/papers/
        report = await index.update(["notes.md", "paper.pdf"])  # embeds only new or changed files
        for hit in await index.search("what did the survey find?", top_k=3):
            print(hit.name, round(hit.score, 2), hit.text[:80])
"""

from ...exceptions import DocumentError
from .chunking import TextChunk, chunk_text
from .index import DocumentIndex, IndexReport, SearchHit, collection_folder
from .loaders import SUPPORTED_SUFFIXES, LoadedDocument, is_document, load_document
from .tool import RagSearchTool

__all__ = [
    "SUPPORTED_SUFFIXES",
    "DocumentError",
    "DocumentIndex",
    "IndexReport",
    "LoadedDocument",
    "RagSearchTool",
    "SearchHit",
    "TextChunk",
    "chunk_text",
    "collection_folder",
    "is_document",
    "load_document",
]
