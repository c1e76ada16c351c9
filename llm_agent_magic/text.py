"""Small text rules used in every layer: clipping long text, code fences, token estimates, model names."""

from __future__ import annotations

from .linear_regex import linear

#: A deliberately generous reading of "characters per token": refuse only prompts that surely overflow.
CHARS_PER_TOKEN = 4.0
#: Share of the kept characters taken from the start of a clipped text (errors and results are at the end).
HEAD_SHARE = 0.6

# RE2: model text (``` followed by a long run of spaces made ``re`` quadratic between the two ``[ \t]*``).
_FENCE = linear(r"(?s)```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```")
_BACKTICK_RUN = linear(r"`{3,}")


def estimate_tokens(text: str) -> int:
    """About how many tokens ``text`` is, plus a message's overhead."""
    return int(len(text) / CHARS_PER_TOKEN) + 4


def clip(text: str, limit: int, note: str = "", word: str = "cut") -> str:
    """``text`` cut to about ``limit`` characters, keeping its start and end and saying how much was cut
    (``[... N characters <word>; <note> ...]``)."""
    if len(text) <= limit:
        return text
    head = int(limit * HEAD_SHARE)
    tail = max(0, limit - head)
    cut = len(text) - head - tail
    marker = f"\n[... {cut} characters {word}{'; ' + note if note else ''} ...]\n"
    return text[:head] + marker + (text[-tail:] if tail else "")


def fenced_blocks(text: str, languages: tuple[str, ...] | None = None) -> list[str]:
    """The contents of ``text``'s code fences, in order; only those labelled with one of ``languages``
    (or unlabelled) when given."""
    wanted = None if languages is None else {lang.lower() for lang in languages} | {""}
    return [m.group(2) for m in _FENCE.finditer(text) if wanted is None or m.group(1).lower() in wanted]


def code_fence(text: str, lang: str = "") -> str:
    """``text`` as one fenced code block, its trailing newlines dropped. The fence is longer than any run of
    backticks inside (at least three), so code or output holding ``` stays one block; found in one pass."""
    longest = max((len(run) for run in _BACKTICK_RUN.findall(text)), default=2)
    ticks = "`" * (longest + 1)
    return f"{ticks}{lang}\n{text.rstrip(chr(10))}\n{ticks}"


def full_model_name(name: str) -> str:
    """A model name with its tag, as Ollama lists it: ``qwen3`` is ``qwen3:latest``."""
    return name if ":" in name else f"{name}:latest"


#: Parts of the names of the embedding models Ollama's library has (nomic-embed-text, mxbai-embed-large,
#: snowflake-arctic-embed, granite-embedding, bge-m3, all-minilm): they cannot chat.
_EMBEDDING_NAMES = ("embed", "bge-", "minilm")


def is_embedding_model(name: str, configured: str = "") -> bool:
    """Whether ``name`` is an embedding model: the one configured for embeddings, or named like one."""
    base = name.lower().split("/")[-1]
    return (bool(configured) and full_model_name(name) == full_model_name(configured)) or any(
        part in base for part in _EMBEDDING_NAMES
    )
