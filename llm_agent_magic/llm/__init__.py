"""Layer 2: talking to model servers (Ollama, OpenAI-compatible APIs): chat, streaming, structured output,
embeddings, the call log, cassettes."""

from .calllog import CallLog, CallRecord
from .cassette import Cassette, CassetteTransport
from .client import PURPOSES, ChatResult, LLMClient, StructuredResult
from .stream import ChatStream

__all__ = [
    "PURPOSES",
    "CallLog",
    "CallRecord",
    "Cassette",
    "CassetteTransport",
    "ChatResult",
    "ChatStream",
    "LLMClient",
    "StructuredResult",
]
