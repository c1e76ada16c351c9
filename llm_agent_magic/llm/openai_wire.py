"""The OpenAI chat-completions wire format, built from an answer's parts, and Ollama's answers re-shaped into it.

Two users: the scripted server (``testing.fake_ollama``) answers ``/v1/...`` requests with these shapes, and a
cassette recorded with the Ollama protocol replays to the ``openai`` provider through ``from_ollama`` (so the
example notebooks' cassettes serve both protocols; ``cassette.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

CHAT_PATH, EMBED_PATH, MODELS_PATH = "/chat/completions", "/embeddings", "/models"
SSE_DONE = "data: [DONE]\n\n"


def kind_of(path: str) -> str:
    """``chat``, ``embed``, ``models`` or "" for a request path of either protocol."""
    if path.endswith(CHAT_PATH) or path == "/api/chat":
        return "chat"
    if path.endswith(EMBED_PATH) or path in ("/api/embed", "/api/embeddings"):
        return "embed"
    if path.endswith(MODELS_PATH) or path == "/api/tags":
        return "models"
    return ""


def is_openai(path: str) -> bool:
    return not path.startswith("/api/")


def usage(prompt_tokens: int | None, completion_tokens: int | None) -> dict[str, int]:
    p, c = prompt_tokens or 0, completion_tokens or 0
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def completion(
    model: str, content: str, thinking: str, prompt_tokens: int | None, completion_tokens: int | None, created: int = 0
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        message["reasoning_content"] = thinking
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def chunk(model: str, delta: dict[str, Any], finish_reason: str | None = None, created: int = 0) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
    }


def chunks(
    model: str,
    pieces: Iterable[tuple[str, str]],
    prompt_tokens: int | None,
    completion_tokens: int | None,
    *,
    include_usage: bool,
    created: int = 0,
) -> list[dict[str, Any]]:
    """The chunks of a streamed answer from its ``(content, thinking)`` pieces: a role chunk, the pieces, the
    finish chunk and, when asked for, the usage chunk."""
    out = [chunk(model, {"role": "assistant", "content": ""}, created=created)]
    for content, thinking in pieces:
        out.append(chunk(model, {"reasoning_content": thinking} if thinking else {"content": content}, created=created))
    out.append(chunk(model, {}, "stop", created=created))
    if include_usage:
        out.append({**chunk(model, {}, created=created), "choices": [], "usage": usage(prompt_tokens, completion_tokens)})
    return out


def sse(events: Iterable[Mapping[str, Any]]) -> list[str]:
    return [f"data: {json.dumps(e)}\n\n" for e in events] + [SSE_DONE]


def embeddings(model: str, vectors: list[list[float]], prompt_tokens: int | None) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens or 0, "total_tokens": prompt_tokens or 0},
    }


def models(names: Iterable[str]) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "scripted"} for n in names]}


def error(status: int, message: str) -> dict[str, Any]:
    kind = {400: "BadRequestError", 401: "AuthenticationError", 404: "NotFoundError"}.get(status, "InternalServerError")
    return {"error": {"message": message, "type": kind, "param": None, "code": status}}


def from_ollama(
    kind: str, status: int, body_chunks: list[str], *, stream: bool, include_usage: bool
) -> tuple[dict[str, str], list[str]]:
    """An answer recorded from Ollama (its body as the chunks that arrived) as an OpenAI-compatible server would
    have sent it: ``(headers, chunks)``. Streams stay streams (NDJSON parts become server-sent events)."""
    text = "".join(body_chunks)
    if status >= 400:
        try:
            said = str(json.loads(text).get("error", text))
        except (json.JSONDecodeError, AttributeError):
            said = text
        return {"content-type": "application/json"}, [json.dumps(error(status, said))]
    if kind == "embed":
        body = json.loads(text)
        return {"content-type": "application/json"}, [
            json.dumps(embeddings(body.get("model", ""), body.get("embeddings", []), body.get("prompt_eval_count")))
        ]
    if kind == "models":
        names = [m.get("model") or m.get("name", "") for m in json.loads(text).get("models", [])]
        return {"content-type": "application/json"}, [json.dumps(models(names))]
    parts = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not stream:
        part = parts[0] if parts else {}
        message = part.get("message") or {}
        whole = completion(
            part.get("model", ""),
            message.get("content", ""),
            message.get("thinking", ""),
            part.get("prompt_eval_count"),
            part.get("eval_count"),
        )
        return {"content-type": "application/json"}, [json.dumps(whole)]
    pieces = []
    model, last = "", {}
    for part in parts:
        message = part.get("message") or {}
        model, last = part.get("model", model), part
        if message.get("thinking"):
            pieces.append(("", message["thinking"]))
        if message.get("content"):
            pieces.append((message["content"], ""))
    events = chunks(model, pieces, last.get("prompt_eval_count"), last.get("eval_count"), include_usage=include_usage)
    if not last.get("done"):
        events = events[:-2] if include_usage else events[:-1]  # a stream cut off when recorded stays cut off
        return {"content-type": "text/event-stream"}, [f"data: {json.dumps(e)}\n\n" for e in events]
    return {"content-type": "text/event-stream"}, sse(events)


def _openai_events(text: str) -> list[dict[str, Any]]:
    """The JSON events of a recorded server-sent-events body (``[DONE]`` and blank lines left out)."""
    events = []
    for line in text.splitlines():
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            events.append(json.loads(line[5:]))
    return events


def to_ollama(kind: str, status: int, body_chunks: list[str], *, stream: bool) -> tuple[dict[str, str], list[str]]:
    """An answer recorded from an OpenAI-compatible server as Ollama would have sent it: ``(headers, chunks)``."""
    text = "".join(body_chunks)
    if status >= 400:
        try:
            found = json.loads(text).get("error", text)
            said = str(found.get("message", found) if isinstance(found, dict) else found)
        except (json.JSONDecodeError, AttributeError):
            said = text
        return {"content-type": "application/json"}, [json.dumps({"error": said})]
    if kind == "models":
        listed = [{"name": m.get("id", ""), "model": m.get("id", "")} for m in json.loads(text).get("data", [])]
        return {"content-type": "application/json"}, [json.dumps({"models": listed})]
    if kind == "embed":
        body = json.loads(text)
        vectors = [item["embedding"] for item in sorted(body.get("data", []), key=lambda item: item.get("index", 0))]
        prompt = (body.get("usage") or {}).get("prompt_tokens")
        return {"content-type": "application/json"}, [
            json.dumps({"model": body.get("model", ""), "embeddings": vectors, "prompt_eval_count": prompt})
        ]
    if not stream:
        body = json.loads(text)
        message = (body.get("choices") or [{}])[0].get("message") or {}
        used = body.get("usage") or {}
        whole = _ollama_part(
            body.get("model", ""), message.get("content") or "", message.get("reasoning_content") or "", done=True, usage=used
        )
        return {"content-type": "application/json"}, [json.dumps(whole)]
    parts, model, used, finished = [], "", {}, False
    for event in _openai_events(text):
        model = event.get("model", model)
        used = event.get("usage") or used
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content") or delta.get("reasoning_content"):
                parts.append(_ollama_part(model, delta.get("content") or "", delta.get("reasoning_content") or ""))
            finished = finished or choice.get("finish_reason") is not None
    if finished:
        parts.append(_ollama_part(model, "", "", done=True, usage=used))
    return {"content-type": "application/x-ndjson"}, [json.dumps(p) + "\n" for p in parts]


def _ollama_part(
    model: str, content: str, thinking: str, *, done: bool = False, usage: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    part: dict[str, Any] = {"model": model, "created_at": "1970-01-01T00:00:00Z", "message": message, "done": done}
    if done:
        part.update(
            done_reason="stop",
            prompt_eval_count=(usage or {}).get("prompt_tokens"),
            eval_count=(usage or {}).get("completion_tokens"),
        )
    return part


def neutral_request(path: str, body: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """An OpenAI request as the Ollama request that asks the same (path and the body's deciding fields), so that
    one cassette fingerprint serves both protocols; an Ollama request as it is."""
    if not is_openai(path):
        return path, dict(body)
    kind = kind_of(path)
    if kind == "embed":
        return "/api/embed", {"model": body.get("model"), "input": body.get("input")}
    if kind == "models":
        return "/api/tags", {}
    if kind != "chat":
        return path, dict(body)
    # The ollama client leaves out empty fields of each message.
    messages = [{k: v for k, v in m.items() if v} for m in body.get("messages") or [] if isinstance(m, Mapping)]
    # The ollama client always sends ``tools``, empty when there are none.
    neutral: dict[str, Any] = {
        "model": body.get("model"),
        "messages": messages,
        "stream": body.get("stream") is True,
        "tools": body.get("tools") or [],
    }
    wanted = body.get("response_format")
    if isinstance(wanted, Mapping):
        if wanted.get("type") == "json_schema":
            neutral["format"] = (wanted.get("json_schema") or {}).get("schema")
        elif wanted.get("type") == "json_object":
            neutral["format"] = "json"
    return "/api/chat", neutral
